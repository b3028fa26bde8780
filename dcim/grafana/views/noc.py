"""NOC overview of one site: what is wrong now, counted, coloured by the rules that page.

Every tile reads the newest values within the view's lookback (the alert engine's
stale intervals x the longest poll interval), whatever the time picker says, and
shows NO DATA when nothing reported within it. Tiles count what matters (UPS on
battery, devices down, racks over their class) and link to the view or device
dashboard behind them; the active-alerts table lists every incident firing now.
"""

from __future__ import annotations

import itertools

from dcim.grafana.events import active_alerts_panel, open_count_tiles
from dcim.grafana.influxql import (
    by_time,
    count_matching,
    count_now,
    ident,
    literal,
    now_value,
    rooms_are,
    select,
    stored,
    tag_is,
    where,
    where_now,
)
from dcim.grafana.model import Influx, Threshold
from dcim.grafana.panels import PanelBuilder, bar_gauge, link, stat, timeseries, unit_of
from dcim.grafana.thresholds import GREEN, ORANGE, RED, RoomClass
from dcim.grafana.views import Dashboard, Row, View
from dcim.inventory import DeviceKind

INLET = tag_is("position", "inlet")
#: A count tile: green at 0, then the severity of what it counts.
RED_FROM_ONE = (Threshold(GREEN), Threshold(RED, 1))
ORANGE_FROM_ONE = (Threshold(GREEN), Threshold(ORANGE, 1))
MATCHING = "/^matching$/"


def _count_tile(  # noqa: PLR0917 - one call shape for every count tile
    view: View,
    title: str,
    query: str,
    steps: tuple[Threshold, ...],
    target: str,
    description: str,
) -> PanelBuilder:
    return stat(
        title,
        [Influx(query)],
        steps=steps,
        fields=MATCHING,
        null_is_zero=True,
        links=[link(f"Open {target}", view.url(target))],
        description=f"{description} Within the last {view.lookback_s:g} s; NO DATA when "
        "nothing reported that recently.",
    )


def pue_query(lookback_s: float) -> str:
    """Facility power over IT power, each the sum of its meters' newest readings."""
    s = stored("meter.power_w")

    def side(scope: str) -> str:
        return select(
            f"last({ident(s.field)}) AS {ident(scope)}",
            ident(s.measurement),
            where_now(lookback_s, tag_is("scope", scope)),
            [ident("device")],
        )

    return f'SELECT sum("facility") / sum("it") AS "pue" FROM ({side("facility")}), ({side("it")})'  # noqa: S608 - InfluxQL of vocabulary names


def inlet_classes(view: View) -> list[RoomClass]:
    return view.colours.classes("sensor.temp_c", "sensor", position="inlet")


def racks_over_class_query(view: View) -> str:
    """Racks whose hottest inlet reading now is above the warning of their room's class."""
    s = stored("sensor.temp_c")

    def racks(rooms: tuple[str, ...] | None) -> str:
        conditions = [INLET, rooms_are(rooms)] if rooms else [INLET]
        return select(
            f'max({ident(s.field)}) AS "v"',
            ident(s.measurement),
            where_now(view.lookback_s, *conditions),
            [ident("rack")],
        )

    hits = []
    for room_class in inlet_classes(view):
        warning = high_warning(room_class.steps)
        if warning is not None:
            hits.append((racks(room_class.rooms), f'"v" > {warning:g}'))
    return count_matching(hits or [(racks(None), '"v" > 1e9')], racks(None))


def high_warning(steps: tuple[Threshold, ...]) -> float | None:
    """Where the steps turn from green to orange going up: the rule's high warning."""
    for below, step in itertools.pairwise(steps):
        if below.color == GREEN and step.color == ORANGE:
            return step.value
    return None


def power_tiles(view: View) -> list[PanelBuilder]:
    site, lookback = view.site, view.lookback_s
    tiles: list[PanelBuilder] = []
    if site.has(DeviceKind.UPS):
        tiles.append(
            _count_tile(
                view,
                "UPS on battery",
                count_now("ups.output_source", lookback, f'"v" = {literal("battery")}'),
                RED_FROM_ONE,
                "power",
                "UPS units whose newest output source is battery (rule ups.output_source: critical).",
            )
        )
        tiles.append(
            stat(
                "UPS runtime",
                [
                    Influx(
                        now_value("ups.battery_runtime_s", lookback, agg="min"), alias="$tag_device"
                    )
                ],
                unit_of("ups.battery_runtime_s"),
                steps=view.colours.runtime_steps(),
                links=[link("Device detail", _device_url(view))],
                description="Lowest runtime of each UPS now; orange below the generator's "
                "start and transfer time plus margin (rule ups.runtime_vs_generator).",
            )
        )
    if site.has(DeviceKind.PDU):
        tiles.append(
            _count_tile(
                view,
                "Tripped breakers",
                count_now("pdu.branch_tripped", lookback, '"v" = true', by=("device", "branch")),
                RED_FROM_ONE,
                "power",
                "PDU branches whose breaker reads tripped (rule pdu.branch_tripped: critical).",
            )
        )
    if site.has_pue:
        tiles.append(
            stat(
                "PUE",
                [Influx(pue_query(lookback), alias="PUE")],
                steps=view.colours.pue_steps(),
                description="Facility power over IT power from the newest meter readings "
                "(meter.power_w, scope facility / it); colours from rule site.pue.",
            )
        )
    return tiles


def _device_url(view: View) -> str:
    return view.url("device", device="${__field.labels.device}")


def cooling_tiles(view: View) -> list[PanelBuilder]:
    site, lookback = view.site, view.lookback_s
    tiles: list[PanelBuilder] = []
    if site.has(DeviceKind.CRAC):
        tiles.append(
            _count_tile(
                view,
                "CRAC units in fault",
                count_now("crac.operating_mode", lookback, f'"v" = {literal("fault")}'),
                RED_FROM_ONE,
                "thermal",
                "Cooling units whose operating mode reads fault (rule crac.fault: critical).",
            )
        )
    if site.has_sensor("env"):
        tiles.append(
            _count_tile(
                view,
                "Racks over their class",
                racks_over_class_query(view),
                ORANGE_FROM_ONE,
                "thermal",
                "Racks whose hottest inlet is above the recommended maximum of their room's "
                "ASHRAE class (rule ashrae.inlet_temp).",
            )
        )
        classes = inlet_classes(view)
        queries = [
            Influx(
                now_value(
                    "sensor.temp_c",
                    lookback,
                    ("room",),
                    conditions=[INLET, rooms_are(c.rooms)],
                    agg="max",
                ),
                alias="$tag_room",
            )
            for c in classes
        ]
        tiles.append(
            stat(
                "Hottest rack inlet",
                queries,
                unit_of("sensor.temp_c"),
                steps=classes[0].steps,
                overrides={chr(ord("A") + i): c.steps for i, c in enumerate(classes)},
                links=[link("Thermal", view.url("thermal", room="${__field.labels.room}"))],
                description="Hottest inlet reading per room now, coloured by the room's "
                "thermal class (rule ashrae.inlet_temp of the pack that room loads).",
                width=6,
            )
        )
    return tiles


def fire_tiles(view: View) -> list[PanelBuilder]:
    site, lookback = view.site, view.lookback_s
    tiles: list[PanelBuilder] = []
    if site.has_sensor("smoke"):
        stages = " OR ".join(f'"v" = {literal(s)}' for s in ("action", "fire1", "fire2"))
        tiles += [
            _count_tile(
                view,
                "Smoke: Action or Fire",
                count_now("sensor.smoke_level", lookback, f"({stages})"),
                RED_FROM_ONE,
                "environment",
                "Aspirating detectors at Action, Fire 1 or Fire 2 (rule fire.risk: critical).",
            ),
        ]
        if site.has_point_smoke_detector:
            tiles.append(
                _count_tile(
                    view,
                    "Smoke detectors in alarm",
                    count_now("sensor.smoke_detected", lookback, '"v" = true'),
                    RED_FROM_ONE,
                    "environment",
                    "Point detectors and fire panel inputs in alarm (rule fire.smoke_detected).",
                )
            )
    if site.has_sensor("leak"):
        tiles.append(
            _count_tile(
                view,
                "Water leaks",
                count_now("sensor.leak_detected", lookback, '"v" = true'),
                RED_FROM_ONE,
                "environment",
                "Leak sensors detecting water (rule env.leak: critical).",
            )
        )
    return tiles


def monitoring_tiles(view: View) -> list[PanelBuilder]:
    return [
        _count_tile(
            view,
            "Devices down",
            count_now("device.up", view.lookback_s, '"v" = false'),
            RED_FROM_ONE,
            "device",
            "Devices whose newest poll failed (rule device.down: critical).",
        )
    ]


def top_panels(view: View) -> list[PanelBuilder]:
    site, lookback = view.site, view.lookback_s
    panels: list[PanelBuilder] = []
    if site.has_sensor("env"):
        classes = inlet_classes(view)
        s = stored("sensor.temp_c")
        queries = [
            Influx(
                select(
                    f'max({ident(s.field)}) AS "value"',
                    ident(s.measurement),
                    where_now(lookback, INLET, rooms_are(c.rooms)),
                    [ident("rack")],
                ),
                table=True,
            )
            for c in classes
        ]
        panels.append(
            bar_gauge(
                "Hottest racks now (top 10)",
                queries,
                unit_of("sensor.temp_c"),
                steps=classes[0].steps,
                overrides={chr(ord("A") + i): c.steps for i, c in enumerate(classes)},
                links=[link("Thermal", view.url("thermal"))],
                description="Hottest inlet reading of each rack now, the ten hottest; colours "
                "from the room's thermal class.",
            )
        )
    if site.has(DeviceKind.PDU):
        current, rating = stored("pdu.branch_current_a"), stored("pdu.branch_rating_a")
        query = select(
            f"100 * last({ident(current.field)}) / last({ident(rating.field)}) AS " + '"value"',
            ident(current.measurement),
            where_now(lookback),
            [ident("device"), ident("branch")],
        )
        panels.append(
            bar_gauge(
                "Most loaded branches now (top 10)",
                [Influx(query, table=True)],
                "percent",
                steps=view.colours.ratio_steps("pdu.branch_current_a", "pdu.branch_rating_a"),
                links=[link("Power", view.url("power"))],
                description="Branch current as a share of its breaker rating; colours from "
                "rule pdu.branch_load (80 % rule).",
            )
        )
    return panels


def polls_panel() -> PanelBuilder:
    up = stored("device.up")
    polls = select(
        f'count({ident(up.field)}) AS "polls"',
        ident(up.measurement),
        where(),
        by_time(),
        "none",
    )
    failed = select(
        f'count({ident(up.field)}) AS "failed"',
        ident(up.measurement),
        where(f"{ident(up.field)} = false"),
        by_time(),
        "none",
    )
    return timeseries(
        "Polls and failed polls",
        [Influx(polls, alias="polls"), Influx(failed, alias="failed")],
        "none",
        bars=True,
        min=0,
        description="Polls per interval over the time range, and how many failed: one "
        "series for the whole site, however many devices it has.",
        width=24,
        height=6,
    )


def build(view: View) -> Dashboard | None:
    from dcim.grafana.views import site_dashboard

    now = [
        *open_count_tiles(),
        *power_tiles(view),
        *cooling_tiles(view),
        *fire_tiles(view),
        *monitoring_tiles(view),
    ]
    rows = [
        Row("Now", now),
        Row("Active alerts", [active_alerts_panel(view.uid("device"))]),
        Row("Top 10 now", top_panels(view)),
        Row("Monitoring", [polls_panel()]),
    ]
    return site_dashboard(
        view,
        "noc",
        "NOC overview",
        "What is wrong now: power, cooling, fire and alerts of the site.",
        rows,
        critical_only=True,
    )
