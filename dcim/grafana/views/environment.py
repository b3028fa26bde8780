"""Environment and fire: smoke/VESDA, leak, doors, humidity and dew point."""

from __future__ import annotations

from grafana_foundation_sdk.models import common

from dcim.grafana import states
from dcim.grafana.influxql import raw, rooms_are, series
from dcim.grafana.model import Influx, Threshold
from dcim.grafana.panels import PanelBuilder, state_timeline, timeseries, unit_of
from dcim.grafana.thresholds import GREEN, ORANGE, RED
from dcim.grafana.views import Dashboard, Row, View

LINE = common.GraphThresholdsStyleMode.LINE
#: Typical aspirating-detector factory levels (%/m): Alert (a warning in fire.smoke_alert),
#: Action, Fire 1, Fire 2 (critical in fire.risk). The device judges them; lines only.
VESDA_PCT_M = (Threshold(GREEN), Threshold(ORANGE, 0.08), Threshold(RED, 0.14))


def _by_device(metric: str, agg: str = "mean") -> Influx:
    return Influx(series(metric, agg), alias="$tag_device")


def _states(view: View, title: str, metric: str) -> PanelBuilder:
    return state_timeline(
        title,
        [Influx(raw(metric), alias="$tag_device")],
        states.mappings(view.colours, metric),
        description="Every reading, so a short alarm shows at any zoom.",
    )


def fire_panels(view: View) -> list[PanelBuilder]:
    site = view.site
    panels = [_states(view, "VESDA alarm level", "sensor.smoke_level")]
    if site.reports("sensor.smoke_obscuration_pct_m"):
        panels.append(obscuration_panel())
    if site.has_point_smoke_detector:
        panels.append(_states(view, "Smoke detectors", "sensor.smoke_detected"))
    return panels


def obscuration_panel() -> PanelBuilder:
    return timeseries(
        "Smoke obscuration",
        [_by_device("sensor.smoke_obscuration_pct_m", "max")],
        unit_of("sensor.smoke_obscuration_pct_m"),
        steps=VESDA_PCT_M,
        threshold_style=LINE,
        min=0,
        description="Aspirating detectors; lines at the usual Alert and Action levels.",
    )


def _climate(view: View, title: str, metric: str, **extra: float) -> PanelBuilder:
    classes = view.colours.classes(metric, "sensor", position="inlet")
    about = "; ".join(f"{', '.join(c.rooms)}: rule {c.rule or 'none'}" for c in classes)
    return timeseries(
        title,
        [
            Influx(series(metric, "mean", ("device",), [rooms_are(c.rooms)]), alias="$tag_device")
            for c in classes
        ],
        unit_of(metric),
        steps=classes[0].steps,
        overrides={chr(ord("A") + i): c.steps for i, c in enumerate(classes)},
        threshold_style=LINE,
        description=f"Lines of the room's thermal class ({about}).",
        **extra,  # type: ignore[arg-type]
    )


def room_panels(view: View) -> list[PanelBuilder]:
    site = view.site
    panels: list[PanelBuilder] = []
    if site.has_sensor("leak"):
        panels.append(_states(view, "Water leak", "sensor.leak_detected"))
    if site.has_sensor("door"):
        panels.append(_states(view, "Doors", "sensor.door_open"))
    if site.has_sensor("env"):
        panels += [
            _climate(view, "Relative humidity", "sensor.humidity_pct", min=0, max=100),
            _climate(view, "Dew point", "sensor.dew_point_c"),
        ]
    return panels


def build(view: View) -> Dashboard | None:
    from dcim.grafana.views import site_dashboard

    rows = [
        Row("Fire", fire_panels(view) if view.site.has_sensor("smoke") else []),
        Row("Water, doors, humidity", room_panels(view)),
    ]
    return site_dashboard(
        view, "environment", "Environment and fire", "Smoke, leak, door and humidity sensors.", rows
    )
