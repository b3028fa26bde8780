"""`dcim demo --view terminal`: the board's overview as text, redrawn every few seconds.

Same data as the board (the live state and the overview model), so both always
agree: per room the racks by inlet band, the UPS, CRACs, fire/leak/door sensors
needing attention, PUE and the open incidents.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Sequence

from dcim.alerts.model import Incident
from dcim.web.incidents import arrange
from dcim.web.live import LiveState
from dcim.web.overview import OverviewBuilder, SiteView

SHAPES = {"normal": "o", "warning": "^", "critical": "#", "unknown": ".", "fire": "X"}


def _n(value: float | None, digits: int = 0, unit: str = "") -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def render_site(site: SiteView) -> list[str]:
    lines = [f"== {site.name} ({site.timezone}) =="]
    for room in site.rooms:
        counts = ", ".join(f"{n} {band}" for band, n in sorted(room.counts.items()))
        lines.append(f"room {room.id} (ASHRAE {room.ashrae_class}): racks {counts}")
        for row in room.rows:
            cells = " ".join(
                f"{SHAPES[str(r.band)]}{_n(r.inlet_c, 1)}" + ("!" if r.incident else "")
                for r in row.racks
            )
            lines.append(f"  {row.id:>12}  {cells}")
    power = site.power
    lines.append(
        f"utility/generator: {power.utility} ({power.ups_on_input}/{power.ups_known} UPS on input)"
    )
    for ups in power.ups:
        lines.append(
            f"  {ups.id:>12}  {SHAPES[str(ups.band)]} {ups.source or '-':8} load {_n(ups.load_pct, 0, '%'):>5}"
            f"  battery {_n(ups.charge_pct, 0, '%'):>5}  runtime {_n(ups.runtime_s, 0, ' s'):>7}"
        )
    for feed in power.feeds:
        watts = "-" if feed.load_w is None else f"{feed.load_w / 1000:.1f} kW"
        lines.append(
            f"  feed {feed.name}: {watts}, {feed.pdus_live}/{feed.pdus} PDUs carrying load"
        )
    if power.headroom_w is not None and power.capacity_w is not None:
        lines.append(
            f"  2N headroom {power.headroom_w / 1000:.1f} kW of {power.capacity_w / 1000:.1f} kW"
        )
    for crac in site.cooling:
        lines.append(
            f"  {crac.id:>12}  {SHAPES[str(crac.band)]} {crac.mode or '-':8} supply {_n(crac.supply_c, 1)}"
            f"  return {_n(crac.return_c, 1)}  alarm {'YES' if crac.alarm else 'no'}"
        )
    attention = (
        ", ".join(f"{i.what} {i.state} {i.id}" for i in site.safety.attention) or "all normal"
    )
    lines.append(f"fire/leak/door: {attention}")
    lines.append(f"PUE {_n(site.pue, 2)}")
    return lines


class TerminalView:
    def __init__(
        self,
        live: LiveState,
        overview: OverviewBuilder,
        incidents: Callable[[], Sequence[Incident]],
    ) -> None:
        self.live = live
        self.overview = overview
        self.incidents = incidents
        self.status = ""

    def render(self) -> str:
        incidents = list(self.incidents())
        lines: list[str] = []
        for site in self.overview.sites(self.live, incidents):
            lines += render_site(site)
        open_ = arrange(incidents, {}, set())
        lines.append(f"alerts firing: {len(open_) or 'none'}")
        lines += [f"  {SHAPES.get(i.mark, '?')} {i.mark:8} {i.summary}" for i in open_[:12]]
        if self.status:
            lines.append(f"demo: {self.status}")
        return "\n".join(lines)

    async def print_every(self, interval_s: float) -> None:
        tty = sys.stdout.isatty() and os.environ.get("TERM") not in (None, "dumb")
        while True:
            await asyncio.sleep(interval_s)
            text = self.render()
            print(("\x1b[2J\x1b[H" + text) if tty else (text + "\n"), flush=True)
