"""House-style panel factories: one look for every dcim dashboard.

Time series show a table legend with last and max; stats colour their
background; state timelines merge equal values. Units come from the
vocabulary (`unit_of`), so a panel's unit can never disagree with the data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dcim.grafana.influxql import stored
from dcim.grafana.model import Panel, Target, Threshold, ValueText

#: Vocabulary unit -> Grafana unit id (custom units are `suffix:<text>`).
UNITS: Mapping[str, str] = {
    "s": "s",
    "%": "percent",
    "V": "volt",
    "A": "amp",
    "W": "watt",
    "VA": "voltamp",
    "Hz": "hertz",
    "degC": "celsius",
    "kWh": "kwatth",
    "m3/h": "suffix:m³/h",
    "m/s": "velocityms",
    "B": "bytes",
    "%/m": "suffix:%/m",
}

GREEN, YELLOW, ORANGE, RED, BLUE = "green", "yellow", "orange", "red", "blue"
DARK_RED = "dark-red"
OK_ONLY: tuple[Threshold, ...] = (Threshold(GREEN),)


def unit_of(metric: str) -> str:
    """The Grafana unit of a vocabulary metric ('none' when it has none)."""
    unit = stored(metric).unit
    return UNITS[unit] if unit else "none"


def bool_states(
    true_text: str, true_color: str, false_text: str, false_color: str
) -> tuple[ValueText, ...]:
    return (ValueText("true", true_text, true_color), ValueText("false", false_text, false_color))


def _legend(calcs: Sequence[str]) -> dict[str, Any]:
    return {"calcs": list(calcs), "displayMode": "table", "placement": "right", "showLegend": True}


def timeseries(
    title: str,
    targets: Sequence[Target],
    unit: str,
    *,
    thresholds: tuple[Threshold, ...] = OK_ONLY,
    threshold_style: str = "off",
    min: float | None = None,
    max: float | None = None,
    description: str = "",
    width: int = 12,
    height: int = 8,
) -> Panel:
    """Lines per series; `threshold_style` 'line+area' paints bands such as ASHRAE's."""
    return Panel(
        type="timeseries",
        title=title,
        targets=tuple(targets),
        unit=unit,
        description=description,
        thresholds=thresholds,
        color_mode="palette-classic",
        min=min,
        max=max,
        custom={
            "drawStyle": "line",
            "fillOpacity": 0,
            "lineWidth": 1,
            "showPoints": "never",
            "spanNulls": True,
            "thresholdsStyle": {"mode": threshold_style},
        },
        options={
            "legend": _legend(["lastNotNull", "max"]),
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        width=width,
        height=height,
    )


def stat(
    title: str,
    targets: Sequence[Target],
    unit: str = "none",
    *,
    thresholds: tuple[Threshold, ...] = OK_ONLY,
    mappings: tuple[ValueText, ...] = (),
    reducer: str = "lastNotNull",
    text_fields: bool = False,
    description: str = "",
    width: int = 6,
    height: int = 5,
) -> Panel:
    """Big numbers (or enum states with `text_fields`), one per series, coloured."""
    return Panel(
        type="stat",
        title=title,
        targets=tuple(targets),
        unit=unit,
        description=description,
        thresholds=thresholds,
        mappings=mappings,
        options={
            "colorMode": "background",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            # enum values are strings: the default (numeric fields only) would show nothing
            "reduceOptions": {
                "calcs": [reducer],
                "fields": "/.*/" if text_fields else "",
                "values": False,
            },
            "showPercentChange": False,
            "textMode": "value_and_name",
            "wideLayout": True,
        },
        width=width,
        height=height,
    )


def state_timeline(
    title: str,
    targets: Sequence[Target],
    mappings: tuple[ValueText, ...],
    *,
    thresholds: tuple[Threshold, ...] = OK_ONLY,
    unit: str = "none",
    description: str = "",
    width: int = 12,
    height: int = 8,
) -> Panel:
    """One band per series, coloured by state: enum and boolean metrics over time."""
    return Panel(
        type="state-timeline",
        title=title,
        targets=tuple(targets),
        unit=unit,
        description=description,
        thresholds=thresholds,
        mappings=mappings,
        custom={"fillOpacity": 80, "lineWidth": 0},
        options={
            "alignValue": "left",
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "mergeValues": True,
            "rowHeight": 0.9,
            "showValue": "auto",
            "tooltip": {"mode": "single", "sort": "none"},
        },
        width=width,
        height=height,
    )


def heatmap(
    title: str,
    target: Target,
    unit: str,
    *,
    low: float,
    high: float,
    thresholds: tuple[Threshold, ...] = OK_ONLY,
    description: str = "",
    width: int = 24,
    height: int = 10,
) -> Panel:
    """Series as rows (one per rack), time across, colour from `low` (blue) to `high` (red)."""
    return Panel(
        type="heatmap",
        title=title,
        targets=(target,),
        unit=unit,
        description=description,
        thresholds=thresholds,
        options={
            # the series are the rows already: no bucketing by value
            "calculate": False,
            "cellGap": 1,
            "cellValues": {"unit": unit},
            "color": {
                "exponent": 0.5,
                "fill": "dark-orange",
                "max": high,
                "min": low,
                "mode": "scheme",
                "reverse": True,
                "scale": "linear",
                "scheme": "RdYlBu",
                "steps": 64,
            },
            "exemplars": {"color": "rgba(255,0,255,0.7)"},
            "legend": {"show": True},
            "rowsFrame": {"layout": "auto"},
            "showValue": "never",
            "tooltip": {"mode": "single", "showColorScale": True, "yHistogram": False},
            "yAxis": {"axisPlacement": "left", "reverse": True},
        },
        # one frame with a column per series, which is what a non-calculated heat map reads
        transformations=({"id": "joinByField", "options": {"byField": "Time", "mode": "outer"}},),
        width=width,
        height=height,
    )


def table(
    title: str,
    targets: Sequence[Target],
    *,
    mappings: tuple[ValueText, ...] = (),
    thresholds: tuple[Threshold, ...] = OK_ONLY,
    unit: str = "none",
    transformations: Sequence[Mapping[str, Any]] = (),
    description: str = "",
    width: int = 24,
    height: int = 8,
) -> Panel:
    """Rows of latest values (query with result format `table`)."""
    return Panel(
        type="table",
        title=title,
        targets=tuple(targets),
        unit=unit,
        description=description,
        thresholds=thresholds,
        mappings=mappings,
        custom={"align": "auto", "cellOptions": {"type": "color-text"}, "inspect": False},
        options={
            "cellHeight": "sm",
            "footer": {"countRows": False, "fields": [], "reducer": ["sum"], "show": False},
            "showHeader": True,
        },
        transformations=tuple(transformations),
        width=width,
        height=height,
    )
