"""Jinja2 rendering of the board's pages and fragments, one environment per language.

Templates are autoescaped; every text goes through gettext (`_()` in templates),
numbers and times through Babel in the page's language, times in the site's zone.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.numbers import format_decimal
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from dcim.i18n import LANGUAGES, translations

#: Shapes that carry the severity besides colour (WCAG: never colour alone).
SHAPES = {
    "fire": "\u2716",  # heavy multiplication x
    "critical": "\u25c6",  # black diamond
    "warning": "\u25b2",  # black up-pointing triangle
    "normal": "\u25cf",  # black circle
    "info": "\u25cf",
    "unknown": "\u25cb",  # white circle
}


def _number(language: str) -> Callable[..., str]:
    # Babel's formatting costs tens of microseconds a call and a floor map of thousands
    # of racks shows few distinct values: remember them
    @lru_cache(maxsize=65536)
    def number(value: float | None, digits: int = 1, unit: str = "") -> str:
        if value is None:
            return "\u2013"
        text = format_decimal(
            round(value, digits),
            format=f"#,##0.{'0' * digits}" if digits else "#,##0",
            locale=language,
        )
        return f"{text}\u00a0{unit}" if unit else text

    return number


def _power(language: str) -> Callable[[float | None], str]:
    number = _number(language)

    def power(watts: float | None) -> str:
        if watts is None:
            return "\u2013"
        if abs(watts) >= 1_000_000:
            return number(watts / 1e6, 2, "MW")
        if abs(watts) >= 1000:
            return number(watts / 1000, 1, "kW")
        return number(watts, 0, "W")

    return power


def _duration(language: str) -> Callable[[float | None], str]:
    gettext = translations(language).gettext

    def duration(seconds: float | None) -> str:
        if seconds is None:
            return "\u2013"
        s = int(max(0, seconds))
        if s < 120:
            return gettext("%(n)d s") % {"n": s}
        if s < 7200:
            return gettext("%(n)d min") % {"n": s // 60}
        if s < 172800:
            return gettext("%(h)d h %(m)02d min") % {"h": s // 3600, "m": s % 3600 // 60}
        return gettext("%(n)d days") % {"n": s // 86400}

    return duration


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _when(language: str) -> Callable[[float | None, str], str]:
    def when(epoch: float | None, zone: str = "UTC") -> str:
        if epoch is None:
            return "\u2013"
        moment = datetime.fromtimestamp(epoch, tz=UTC)
        return format_datetime(
            moment, "yyyy-MM-dd HH:mm:ss zzz", tzinfo=_zone(zone), locale=language
        )

    return when


def _clock(language: str) -> Callable[[float | None, str], str]:
    def clock(epoch: float | None, zone: str = "UTC") -> str:
        if epoch is None:
            return "\u2013"
        moment = datetime.fromtimestamp(epoch, tz=UTC)
        return format_datetime(moment, "HH:mm", tzinfo=_zone(zone), locale=language)

    return clock


def _labels(language: str) -> Callable[[str | None], str]:
    """The word shown for a state, band or role (a Python table: a macro building it
    on every call cost more than the rest of a floor map's rendering)."""
    _ = translations(language).gettext
    words = {
        "normal": _("normal"),
        "warning": _("warning"),
        "critical": _("critical"),
        "unknown": _("no data"),
        "fire": _("FIRE ALARM"),
        "info": _("info"),
        "battery": _("ON BATTERY"),
        "bypass": _("on bypass"),
        "none": _("NO OUTPUT"),
        "other": _("other"),
        "booster": _("boost"),
        "reducer": _("buck"),
        "present": _("present"),
        "lost": _("LOST"),
        "partial": _("partly lost"),
        "open": _("open"),
        "closed": _("closed"),
        "wet": _("WATER"),
        "dry": _("dry"),
        "alert": _("Alert"),
        "action": _("Action"),
        "fire1": _("FIRE 1"),
        "fire2": _("FIRE 2"),
        "alarm": _("ALARM"),
        "smoke": _("smoke"),
        "leak": _("leak"),
        "door": _("door"),
        "cooling": _("cooling"),
        "standby": _("standby"),
        "off": _("off"),
        "fault": _("FAULT"),
        "viewer": _("viewer"),
        "operator": _("operator"),
        "heating": _("heating"),
        "dehumidifying": _("dehumidifying"),
        "humidifying": _("humidifying"),
        "idle": _("idle"),
    }

    def label(value: str | None) -> str:
        return words.get(value or "", str(value))

    return label


def shape(mark: str | None) -> Markup:
    """The shape of a band or severity, hidden from screen readers (the text says it)."""
    glyph = SHAPES.get(mark or "unknown", SHAPES["unknown"])
    return Markup('<span class="shape" aria-hidden="true">{}</span>').format(glyph)


#: While `render_cells` runs: the cells rendered so far (element id -> HTML).
_CELLS: ContextVar[dict[str, str] | None] = ContextVar("board_cells", default=None)
_PLACE = re.compile("\x00([^\x00]+)\x00")


def _cell(element_id: str, html: Markup) -> Markup:
    """`html` where it stands, or, while `render_cells` collects, a place-holder for it."""
    cells = _CELLS.get()
    if cells is None:
        return html
    cells[element_id] = str(html)
    return Markup(f"\x00{element_id}\x00")  # noqa: S704 - an id the board made


def render_cells(
    language: str, template: str, context: Mapping[str, Any]
) -> tuple[str, str, dict[str, str]]:
    """(whole HTML, frame, cells): the frame is the HTML with a place-holder for each cell
    (a local rack, a site's panels), so a browser can be sent only the cells that changed
    while the frame stays the same: a few racks instead of a 5,000-rack floor map."""
    cells: dict[str, str] = {}
    token = _CELLS.set(cells)
    try:
        frame = render(language, template, context)
    finally:
        _CELLS.reset(token)
    return _PLACE.sub(lambda m: cells[m.group(1)], frame), frame, cells


def _site_panels(env: Environment) -> Callable[[str, Any], Markup]:
    def site_panels(base: str, site: Any) -> Markup:
        # autoescaped template output
        html = Markup(env.get_template("site-panels.html").render(base=base, site=site))  # noqa: S704
        return _cell(f"panels:{site.id}", html) if not base else html

    return site_panels


#: Rendered rack cells kept per language; past this many the cache starts again
#: (racks gone from the inventory or a peer never pile up).
RACK_CELLS = 200_000


def _rack_cells(env: Environment) -> Callable[[str, str, str, Any], Markup]:
    """`rack_cell(base, site, room, rack)`: a floor map cell, rendered only when what it
    shows changed: a floor map of thousands of racks re-renders in a few milliseconds
    when a few of them moved."""
    cells: dict[tuple[str, str, str, str], tuple[Any, Markup]] = {}

    def rack_cell(base: str, site_id: str, room_id: str, rack: Any) -> Markup:
        key = (base, site_id, room_id, rack.id)
        inlet = None if rack.inlet_c is None else round(rack.inlet_c, 1)  # as shown
        shown = (rack.band, inlet, rack.incident, tuple(rack.cooling_lost))
        known = cells.get(key)
        if known is None or known[0] != shown:
            html = env.get_template("rack-cell.html").render(
                base=base, site_id=site_id, room_id=room_id, rack=rack
            )
            if len(cells) >= RACK_CELLS:
                cells.clear()
            # autoescaped template output
            known = cells[key] = (shown, Markup(html))  # noqa: S704
        return _cell(f"rack:{site_id}/{room_id}/{rack.id}", known[1]) if not base else known[1]

    return rack_cell


@cache
def environment(language: str) -> Environment:
    """The Jinja environment of one language (templates compiled once per language)."""
    if language not in LANGUAGES:
        language = "en"
    env = Environment(
        loader=PackageLoader("dcim.web", "templates"),
        autoescape=select_autoescape(["html"], default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters["num"] = _number(language)
    env.filters["power"] = _power(language)
    env.filters["duration"] = _duration(language)
    env.filters["when"] = _when(language)
    env.filters["clock"] = _clock(language)
    env.globals["shape"] = shape
    env.globals["label"] = _labels(language)
    env.globals["rack_cell"] = _rack_cells(env)
    env.globals["site_panels"] = _site_panels(env)
    env.globals["language"] = language
    return env


def render(language: str, template: str, context: Mapping[str, Any]) -> str:
    return environment(language).get_template(template).render(**context)


def now() -> float:
    return time.time()
