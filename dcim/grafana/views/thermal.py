"""Thermal: rack inlets per room (each room in its own ASHRAE class), cooling units.

The room rows repeat for each selected room. A room's colours are its thermal
class's rule: the queries are split by class (rooms that load the same
`ashrae.inlet_temp`) and each query's colours are an override matched by refId.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import common

from dcim.grafana import states
from dcim.grafana.influxql import (
    alias,
    ident,
    raw,
    rooms_are,
    select,
    series,
    stored,
    tag_is,
    where_now,
)
from dcim.grafana.model import Influx
from dcim.grafana.panels import (
    PanelBuilder,
    bar_gauge,
    state_timeline,
    timeseries,
    unit_of,
)
from dcim.grafana.thresholds import RoomClass
from dcim.grafana.views import Dashboard, Row, View
from dcim.inventory import DeviceKind

INLET = tag_is("position", "inlet")
ROW_RACK = ("row", "rack")
BANDS = common.GraphThresholdsStyleMode.LINE_AND_AREA


def _per_class(classes: list[RoomClass]) -> dict[str, tuple]:  # type: ignore[type-arg]
    return {chr(ord("A") + i): c.steps for i, c in enumerate(classes)}


def inlet_panels(view: View) -> list[PanelBuilder]:
    unit = unit_of("sensor.temp_c")
    classes = view.colours.classes("sensor.temp_c", "sensor", position="inlet")
    about = "; ".join(f"{', '.join(c.rooms)}: rule {c.rule}" for c in classes)
    queries = [
        Influx(
            series("sensor.temp_c", "max", ROW_RACK, [INLET, rooms_are(c.rooms)]),
            alias="$tag_row / $tag_rack",
        )
        for c in classes
    ]
    s = stored("sensor.temp_c")
    hottest = [
        Influx(
            select(
                f'max({ident(s.field)}) AS "value"',
                ident(s.measurement),
                where_now(view.lookback_s, INLET, rooms_are(c.rooms)),
                [ident("rack")],
            ),
            table=True,
        )
        for c in classes
    ]
    return [
        state_timeline(
            "Rack inlet temperature by row and rack",
            queries,
            (),
            steps=classes[0].steps,
            overrides=_per_class(classes),
            unit=unit,
            history=True,
            description="Hottest inlet probe per rack and interval, coloured by the room's "
            f"thermal class ({about}).",
            width=24,
            height=10,
        ),
        timeseries(
            "Rack inlet temperatures",
            queries,
            unit,
            steps=classes[0].steps,
            overrides=_per_class(classes),
            threshold_style=BANDS,
            description=f"Bands of the room's thermal class ({about}).",
            width=16,
        ),
        bar_gauge(
            "Hottest racks now",
            hottest,
            unit,
            steps=classes[0].steps,
            overrides=_per_class(classes),
            width=8,
        ),
    ]


def crac_panels(view: View) -> list[PanelBuilder]:
    unit = unit_of("crac.supply_air_temp_c")
    return [
        timeseries(
            "CRAC supply and return air",
            [
                Influx(series("crac.supply_air_temp_c"), alias="$tag_device supply"),
                Influx(series("crac.return_air_temp_c"), alias="$tag_device return"),
            ],
            unit,
        ),
        state_timeline(
            "CRAC mode",
            [Influx(raw("crac.operating_mode"), alias=alias(("device",)))],
            states.mappings(view.colours, "crac.operating_mode"),
        ),
        timeseries(
            "CRAC fan speed",
            [Influx(series("crac.fan_speed_pct"), alias="$tag_device")],
            unit_of("crac.fan_speed_pct"),
            min=0,
            max=100,
        ),
        timeseries(
            "CRAC cooling demand",
            [Influx(series("crac.cooling_demand_pct"), alias="$tag_device")],
            unit_of("crac.cooling_demand_pct"),
            min=0,
            max=100,
        ),
    ]


def build(view: View) -> Dashboard | None:
    from dcim.grafana.views import site_dashboard

    site = view.site
    rows = [
        Row("Rack inlets: $room", inlet_panels(view) if site.has_sensor("env") else [], "room"),
        Row("Cooling units", crac_panels(view) if site.has(DeviceKind.CRAC) else []),
    ]
    return site_dashboard(view, "thermal", "Thermal", "Rack inlet air and cooling units.", rows)
