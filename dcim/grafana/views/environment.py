"""Environment and fire: smoke/VESDA, leak, doors, humidity and dew point."""

from __future__ import annotations

from dcim.grafana import states
from dcim.grafana.influxql import series
from dcim.grafana.model import Dashboard, Panel, Row, Target
from dcim.grafana.panels import state_timeline, timeseries, unit_of
from dcim.grafana.site import Site


def _by_device(metric: str, agg: str = "mean") -> Target:
    return Target(series(metric, agg), alias="$tag_device")


def fire_panels() -> tuple[Panel, ...]:
    return (
        state_timeline(
            "VESDA alarm level", [_by_device("sensor.smoke_level", "last")], states.SMOKE_LEVEL
        ),
        timeseries(
            "Smoke obscuration",
            [_by_device("sensor.smoke_obscuration_pct_m", "max")],
            unit_of("sensor.smoke_obscuration_pct_m"),
            thresholds=states.VESDA_PCT_M,
            threshold_style="line",
            min=0,
            description="Aspirating detectors; lines at the usual Alert, Action, Fire 1 and Fire 2 levels.",
        ),
        state_timeline(
            "Smoke detectors", [_by_device("sensor.smoke_detected", "last")], states.SMOKE
        ),
    )


def room_panels(site: Site) -> tuple[Panel, ...]:
    panels: list[Panel] = []
    if site.has_sensor("leak"):
        panels.append(
            state_timeline("Water leak", [_by_device("sensor.leak_detected", "last")], states.LEAK)
        )
    if site.has_sensor("door"):
        panels.append(
            state_timeline("Doors", [_by_device("sensor.door_open", "last")], states.DOOR)
        )
    if site.has_sensor("env"):
        panels += [
            timeseries(
                "Relative humidity",
                [_by_device("sensor.humidity_pct")],
                unit_of("sensor.humidity_pct"),
                thresholds=states.ASHRAE_HUMIDITY_PCT,
                threshold_style="line",
                min=0,
                max=100,
                description="ASHRAE A1: up to 60 % recommended, 8-80 % allowable.",
            ),
            timeseries(
                "Dew point",
                [_by_device("sensor.dew_point_c")],
                unit_of("sensor.dew_point_c"),
                thresholds=states.ASHRAE_DEW_POINT_C,
                threshold_style="line",
                description="ASHRAE A1: -9..15 °C recommended, up to 17 °C allowable.",
            ),
        ]
    return tuple(panels)


def build(site: Site) -> Dashboard | None:
    from dcim.grafana.views import site_dashboard

    rows = [
        Row("Fire", fire_panels() if site.has_sensor("smoke") else ()),
        Row("Water, doors, humidity", room_panels(site)),
    ]
    return site_dashboard(
        site, "environment", "Environment and fire", "Smoke, leak, door and humidity sensors.", rows
    )
