"""Power: UPS (source, load, runtime, battery) and PDUs (per feed, phase, branch; 2N load)."""

from __future__ import annotations

from grafana_foundation_sdk.models import common

from dcim.grafana import states
from dcim.grafana.influxql import (
    alias,
    by_time,
    ident,
    raw,
    select,
    series,
    stored,
    where,
    where_now,
)
from dcim.grafana.model import Influx
from dcim.grafana.panels import PanelBuilder, state_timeline, table, timeseries, unit_of
from dcim.grafana.views import Dashboard, Row, View
from dcim.inventory import DeviceKind

DEVICE = ("device",)
DEVICE_LINE = ("device", "line")
LINE = common.GraphThresholdsStyleMode.LINE
BANDS = common.GraphThresholdsStyleMode.LINE_AND_AREA


def _line(metric: str, by: tuple[str, ...] = DEVICE, agg: str = "mean") -> Influx:
    return Influx(series(metric, agg, by), alias=alias(by))


def ups_panels(view: View) -> list[PanelBuilder]:
    colours = view.colours
    return [
        state_timeline(
            "UPS output source",
            [Influx(raw("ups.output_source"), alias="$tag_device")],
            states.mappings(colours, "ups.output_source"),
            description="Every reading, so a short transfer to battery shows at any zoom.",
        ),
        state_timeline(
            "Battery status",
            [Influx(raw("ups.battery_status"), alias="$tag_device")],
            states.mappings(colours, "ups.battery_status"),
        ),
        timeseries(
            "UPS load",
            [_line("ups.load_pct", DEVICE_LINE)],
            unit_of("ups.load_pct"),
            steps=colours.steps("ups.load_pct", "ups"),
            threshold_style=LINE,
            min=0,
        ),
        timeseries(
            "Battery runtime",
            [_line("ups.battery_runtime_s", agg="min")],
            unit_of("ups.battery_runtime_s"),
            steps=colours.runtime_steps(),
            threshold_style=LINE,
            min=0,
            description="Line at the generator's start and transfer time plus margin "
            "(rule ups.runtime_vs_generator).",
        ),
        timeseries(
            "Battery charge",
            [_line("ups.battery_charge_pct", agg="min")],
            unit_of("ups.battery_charge_pct"),
            steps=colours.steps("ups.battery_charge_pct", "ups"),
            threshold_style=LINE,
            min=0,
            max=100,
        ),
        timeseries(
            "Battery temperature",
            [_line("ups.battery_temp_c", agg="max")],
            unit_of("ups.battery_temp_c"),
            steps=colours.steps("ups.battery_temp_c", "ups"),
            threshold_style=LINE,
        ),
        timeseries(
            "Input voltage",
            [_line("ups.input_voltage_v", DEVICE_LINE)],
            unit_of("ups.input_voltage_v"),
        ),
        timeseries(
            "Output power",
            [_line("ups.output_power_w", DEVICE_LINE)],
            unit_of("ups.output_power_w"),
        ),
    ]


def feed_power_query() -> str:
    """Power per feed (PDU tag `feed`): each PDU's mean per interval, summed per feed."""
    s = stored("pdu.power_w")
    fields = f'mean({ident(s.field)}) AS "w"'
    inner = select(fields, ident(s.measurement), where(), by_time("device", "feed"))
    return select('sum("w") AS "power"', f"({inner})", "$timeFilter", by_time("feed"), "none")


def branch_pct_query() -> str:
    """Branch current as a percentage of that branch's breaker rating."""
    current, rating = stored("pdu.branch_current_a"), stored("pdu.branch_rating_a")
    fields = f'100 * mean({ident(current.field)}) / mean({ident(rating.field)}) AS "load"'
    return select(fields, ident(current.measurement), where(), by_time("device", "branch"), "none")


def feeds_load_query() -> str:
    """2N: both feeds' worst-phase currents of a rack as a percentage of one PDU's rating.

    What the redundancy rule judges (A+B over one feed's capacity), per interval;
    the worst phases are added, a conservative bound for the per-phase sum.
    """
    phase, rated = stored("pdu.phase_current_a"), stored("pdu.rated_current_a")
    fields = f'max({ident(phase.field)}) AS "worst", last({ident(rated.field)}) AS "rated"'
    inner = select(fields, ident(phase.measurement), where(), by_time("rack", "device"))
    outer = '100 * sum("worst") / min("rated") AS "load"'
    return select(outer, f"({inner})", "$timeFilter", by_time("rack"), "none")


def pdu_panels(view: View) -> list[PanelBuilder]:
    colours = view.colours
    current, rating = stored("pdu.branch_current_a"), stored("pdu.branch_rating_a")
    branches_now = select(
        f'last({ident(current.field)}) AS "current", last({ident(rating.field)}) AS "rating"',
        ident(current.measurement),
        where_now(view.lookback_s),
        [ident("device"), ident("branch")],
    )
    return [
        timeseries(
            "PDU power per feed",
            [Influx(feed_power_query(), alias="Feed $tag_feed")],
            unit_of("pdu.power_w"),
            min=0,
        ),
        timeseries(
            "Phase current",
            [_line("pdu.phase_current_a", ("device", "phase"))],
            unit_of("pdu.phase_current_a"),
            min=0,
        ),
        timeseries(
            "Branch load vs breaker rating",
            [Influx(branch_pct_query(), alias="$tag_device $tag_branch")],
            "percent",
            steps=colours.ratio_steps("pdu.branch_current_a", "pdu.branch_rating_a"),
            threshold_style=BANDS,
            min=0,
            description="Branch current / pdu.branch_rating_a; bands from rule pdu.branch_load.",
        ),
        timeseries(
            "A+B load per rack (% of one feed)",
            [Influx(feeds_load_query(), alias="$tag_rack")],
            "percent",
            steps=colours.redundancy_steps(),
            threshold_style=BANDS,
            min=0,
            description="Worst phase of feed A plus worst phase of feed B over one PDU's "
            "rating: above 100 % a feed loss overloads the other (rule pdu.redundancy_2n).",
        ),
        state_timeline(
            "Phase load state",
            [
                Influx(
                    raw("pdu.phase_load_state", ("device", "phase")), alias="$tag_device $tag_phase"
                )
            ],
            states.mappings(colours, "pdu.phase_load_state"),
        ),
        table(
            "Branches now",
            [Influx(branches_now, table=True)],
            columns=("device", "branch", "current", "rating"),
            sort="current",
            unit=unit_of("pdu.branch_current_a"),
            width=12,
        ),
    ]


def build(view: View) -> Dashboard | None:
    from dcim.grafana.views import site_dashboard

    site = view.site
    rows = [
        Row("UPS", ups_panels(view) if site.has(DeviceKind.UPS) else []),
        Row("Rack PDUs", pdu_panels(view) if site.has(DeviceKind.PDU) else []),
    ]
    return site_dashboard(view, "power", "Power", "UPS and rack PDU power paths.", rows)
