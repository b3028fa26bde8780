"""Thermal: rack inlet heat map by row and rack, CRAC supply/return, ASHRAE bands."""

from __future__ import annotations

from dcim.grafana import states
from dcim.grafana.influxql import alias, series, tag_is
from dcim.grafana.model import Dashboard, Panel, Row, Target
from dcim.grafana.panels import heatmap, state_timeline, timeseries, unit_of
from dcim.grafana.site import Site
from dcim.inventory import DeviceKind

INLET = tag_is("position", "inlet")
ROW_RACK = ("row", "rack")
ASHRAE = (
    "ASHRAE A1: recommended 18-27 °C (green), allowable 15-32 °C (yellow/orange), "
    "outside allowable blue or red."
)


def inlet_panels() -> tuple[Panel, ...]:
    unit = unit_of("sensor.temp_c")
    return (
        heatmap(
            "Rack inlet temperature by row and rack",
            Target(series("sensor.temp_c", "max", ROW_RACK, [INLET]), alias="$tag_row / $tag_rack"),
            unit,
            low=15.0,
            high=32.0,
            thresholds=states.ASHRAE_INLET_C,
            description="Hottest inlet probe per rack; colours span the ASHRAE A1 allowable range. "
            + ASHRAE,
        ),
        timeseries(
            "Rack inlet temperatures",
            [
                Target(
                    series("sensor.temp_c", "max", ROW_RACK, [INLET]), alias="$tag_row / $tag_rack"
                )
            ],
            unit,
            thresholds=states.ASHRAE_INLET_C,
            threshold_style="line+area",
            description=ASHRAE,
            width=24,
        ),
    )


def crac_panels() -> tuple[Panel, ...]:
    unit = unit_of("crac.supply_air_temp_c")
    return (
        timeseries(
            "CRAC supply and return air",
            [
                Target(series("crac.supply_air_temp_c"), alias="$tag_device supply"),
                Target(series("crac.return_air_temp_c"), alias="$tag_device return"),
            ],
            unit,
            thresholds=states.ASHRAE_INLET_C,
            threshold_style="line",
        ),
        state_timeline(
            "CRAC mode",
            [Target(series("crac.operating_mode", "last"), alias=alias(("device",)))],
            states.CRAC_MODE,
        ),
        timeseries(
            "CRAC fan speed",
            [Target(series("crac.fan_speed_pct"), alias="$tag_device")],
            unit_of("crac.fan_speed_pct"),
            min=0,
            max=100,
        ),
        timeseries(
            "CRAC cooling demand",
            [Target(series("crac.cooling_demand_pct"), alias="$tag_device")],
            unit_of("crac.cooling_demand_pct"),
            min=0,
            max=100,
        ),
    )


def build(site: Site) -> Dashboard | None:
    from dcim.grafana.views import site_dashboard

    rows = [
        Row("Rack inlets", inlet_panels() if site.has_sensor("env") else ()),
        Row("Cooling units", crac_panels() if site.has(DeviceKind.CRAC) else ()),
    ]
    return site_dashboard(site, "thermal", "Thermal", "Rack inlet air and cooling units.", rows)
