"""The board's pages: which fragments each has, and the data each fragment shows.

A page is a path (`/`, `/incidents`, `/rack/SITE/ROOM/RACK`, `/device/ID`) plus its
range; it renders as a frame with fragments, and the same fragments are what the
live updates replace (see `dcim.web.hub`).
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from dcim.web.detail import device_view, rack_view
from dcim.web.incidents import arrange, count_marks, merge, recently_resolved

if TYPE_CHECKING:
    from dcim.web.server import Board

#: Ranges the device page offers: memory ("" = the in-memory rings) or InfluxDB.
RANGES = {"": 0.0, "24h": 86400.0, "7d": 7 * 86400.0}
#: Seconds a range read from InfluxDB is reused before it is read again.
HISTORY_TTL_S = 60.0


@dataclass(frozen=True, slots=True)
class Page:
    kind: str  # overview | incidents | rack | device
    args: tuple[str, ...] = ()
    range: str = ""

    @property
    def path(self) -> str:
        base = {
            "overview": "/",
            "incidents": "/incidents",
            "rack": "/rack/" + "/".join(self.args),
            "device": "/device/" + "/".join(self.args),
        }[self.kind]
        return base + (f"?range={self.range}" if self.range else "")

    @classmethod
    def parse(cls, target: str) -> Page | None:
        """The page at `target` (a path with its query), or None for anything else."""
        parts = urlsplit(target)
        pieces = [p for p in parts.path.split("/") if p]
        query = parse_qs(parts.query)
        wanted = (query.get("range") or [""])[0]
        if not pieces:
            return cls("overview")
        if pieces == ["incidents"]:
            return cls("incidents")
        if pieces[0] == "rack" and len(pieces) == 4:
            return cls("rack", tuple(pieces[1:]))
        if pieces[0] == "device" and len(pieces) == 2:
            return cls("device", (pieces[1],), wanted if wanted in RANGES else "")
        return None

    @property
    def fragments(self) -> tuple[str, ...]:
        return {
            "overview": ("banner", "sites"),
            "incidents": ("banner", "incidents", "resolved"),
            "rack": ("banner", "rack"),
            "device": ("banner", "device"),
        }[self.kind]


class PageData:
    """Builds each fragment's context; shared work (the overview) is done once per state."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self._sites_at: Hashable = None
        self._sites: list[Any] = []
        self._history: dict[tuple[str, str], tuple[float, Any, str | None]] = {}

    def fingerprint(self, page: Page) -> Hashable:
        board = self.board
        # ages and "since" text move with the clock even when no reading does
        tick = int(time.monotonic() // 30)
        common = (board.live.version, board.actions, board.peers.version, tick)
        if page.kind == "device":
            device = board.live.devices.get(page.args[0])
            version = device.version if device is not None else -1
            return (version, len(board.live.transitions), board.actions, tick)
        return common

    def sites(self) -> list[Any]:
        board = self.board
        mark = (board.live.version, board.actions)
        if mark != self._sites_at:
            self._sites = board.overview.sites(board.live, board.incidents())
            self._sites_at = mark
        return self._sites

    def local_incidents(self) -> list[Any]:
        board = self.board
        return arrange(board.incidents(), board.rule_titles(), board.silenced_ids())

    def all_incidents(self) -> list[Any]:
        groups = [self.local_incidents()]
        for status in self.board.peers.status.values():
            if status.state is not None:
                groups.append(
                    [i.model_copy(update={"source": status.name}) for i in status.state.incidents]
                )
        return merge(groups)

    def banner(self) -> dict[str, Any]:
        incidents = self.all_incidents()
        return {
            "counts": count_marks(incidents),
            "top": incidents[0] if incidents else None,
            "peers": list(self.board.peers.status.values()),
            "now": self.board.clock(),
            "zone": self.board.zone,
            "note": self.board.note,
            "coordination": self.board.coordination(),
        }

    async def context(self, page: Page, fragment: str) -> dict[str, Any]:
        board = self.board
        if fragment == "banner":
            return self.banner()
        if fragment == "sites":
            peers = list(board.peers.status.values())
            return {
                "sites": self.sites(),
                "peers": peers,
                "now": board.clock(),
            }
        if fragment == "incidents":
            return {"incidents": self.all_incidents(), "now": board.clock(), "zone": board.zone}
        if fragment == "resolved":
            return {
                "resolved": recently_resolved(board.live.transitions),
                "now": board.clock(),
                "zone": board.zone,
            }
        if fragment == "rack":
            site, room, rack = page.args
            view = rack_view(board.live, site, room, rack, board.bands_of(site, room))
            incidents = [
                i
                for i in self.local_incidents()
                if i.place.get("rack") == rack
                or (view is not None and i.place.get("device") in view.devices)
            ]
            return {
                "rack": view,
                "incidents": incidents,
                "zone": board.zone_of(site),
                "now": board.clock(),
            }
        if fragment == "device":
            device_id = page.args[0]
            history, error = await self._long_history(device_id, page.range)
            device = device_view(board.live, device_id, history)
            incidents = [i for i in self.local_incidents() if i.place.get("device") == device_id]
            site = device.place.get("site", "") if device is not None else ""
            return {
                "device": device,
                "incidents": incidents,
                "range": page.range,
                "ranges": list(RANGES),
                "history_error": error,
                "history_sink": board.history_sink.name if board.history_sink else None,
                "zone": board.zone_of(site),
                "now": board.clock(),
            }
        raise KeyError(fragment)

    async def _long_history(self, device_id: str, range_name: str) -> tuple[Any, str | None]:
        """(history from InfluxDB or None for the in-memory rings, error text)."""
        board = self.board
        range_s = RANGES.get(range_name, 0.0)
        if not range_s:
            return None, None
        sink = board.history_sink
        if sink is None:
            return None, "no InfluxDB sink is configured: only the history in memory is shown"
        key = (device_id, range_name)
        cached = self._history.get(key)
        if cached is not None and time.monotonic() - cached[0] < HISTORY_TTL_S:
            return cached[1], cached[2]
        from dcim.web.influx import HistoryError, read_history

        device = board.live.devices.get(device_id)
        if device is None:
            return None, None
        metrics = {metric for metric, _ in device.latest}
        try:
            history: Any = await read_history(sink, device_id, metrics, device.placed.tags, range_s)
            error = None
        except HistoryError as exc:
            history, error = None, str(exc)
        self._history[key] = (time.monotonic(), history, error)
        if len(self._history) > 100:
            self._history.clear()
        return history, error
