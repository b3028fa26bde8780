"""Power: UPS (source, load, runtime, battery) and PDUs (per feed, phase, branch; 2N headroom)."""

from __future__ import annotations

from dcim.grafana import states
from dcim.grafana.influxql import alias, by_time, ident, select, series, stored, where
from dcim.grafana.model import Dashboard, Panel, Row, Target
from dcim.grafana.panels import state_timeline, table, timeseries, unit_of
from dcim.grafana.site import Site
from dcim.inventory import DeviceKind

DEVICE = ("device",)
DEVICE_LINE = ("device", "line")


def _line(metric: str, by: tuple[str, ...] = DEVICE, agg: str = "mean") -> Target:
    return Target(series(metric, agg, by), alias=alias(by))


def ups_panels() -> tuple[Panel, ...]:
    return (
        state_timeline(
            "UPS output source", [_line("ups.output_source", agg="last")], states.UPS_SOURCE
        ),
        state_timeline(
            "Battery status", [_line("ups.battery_status", agg="last")], states.BATTERY_STATUS
        ),
        timeseries(
            "UPS load",
            [_line("ups.load_pct", DEVICE_LINE)],
            unit_of("ups.load_pct"),
            thresholds=states.UPS_LOAD_PCT,
            threshold_style="line",
            min=0,
        ),
        timeseries(
            "Battery runtime",
            [_line("ups.battery_runtime_s", agg="min")],
            unit_of("ups.battery_runtime_s"),
            thresholds=states.RUNTIME_S,
            threshold_style="line",
            min=0,
        ),
        timeseries(
            "Battery charge",
            [_line("ups.battery_charge_pct", agg="min")],
            unit_of("ups.battery_charge_pct"),
            thresholds=states.CHARGE_PCT,
            threshold_style="line",
            min=0,
            max=100,
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
        timeseries(
            "Battery temperature", [_line("ups.battery_temp_c")], unit_of("ups.battery_temp_c")
        ),
    )


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


def headroom_query() -> str:
    """2N headroom per rack: what is left of one PDU's rating if the other feed fails.

    Both feeds' worst-phase currents are added (a conservative bound for the
    per-phase sum) and compared with the smaller PDU rating of the rack.
    """
    phase, rated = stored("pdu.phase_current_a"), stored("pdu.rated_current_a")
    fields = f'max({ident(phase.field)}) AS "worst", last({ident(rated.field)}) AS "rated"'
    inner = select(fields, ident(phase.measurement), where(), by_time("rack", "device"))
    outer = '100 - 100 * sum("worst") / min("rated") AS "headroom"'
    return select(outer, f"({inner})", "$timeFilter", by_time("rack"), "none")


def branches_now_query() -> str:
    """Latest current and rating of every branch, for the table."""
    current, rating = stored("pdu.branch_current_a"), stored("pdu.branch_rating_a")
    fields = f'last({ident(current.field)}) AS "current", last({ident(rating.field)}) AS "rating"'
    return select(fields, ident(current.measurement), where(), [ident("device"), ident("branch")])


def pdu_panels() -> tuple[Panel, ...]:
    return (
        timeseries(
            "PDU power per feed",
            [Target(feed_power_query(), alias="Feed $tag_feed")],
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
            [Target(branch_pct_query(), alias="$tag_device $tag_branch")],
            "percent",
            thresholds=states.BRANCH_PCT,
            threshold_style="line+area",
            min=0,
            description="Branch current / pdu.branch_rating_a. Above 80 % a breaker is past its continuous rating.",
        ),
        timeseries(
            "2N headroom per rack",
            [Target(headroom_query(), alias="$tag_rack")],
            "percent",
            thresholds=states.HEADROOM_PCT,
            threshold_style="line+area",
            description=(
                "Share of one PDU's rating left if the rack's other feed fails "
                "(worst phase of A plus worst phase of B). Below 0 a feed loss trips breakers."
            ),
        ),
        state_timeline(
            "Phase load state",
            [_line("pdu.phase_load_state", ("device", "phase"), agg="last")],
            states.LOAD_STATE,
        ),
        table(
            "Branches now",
            [
                Target(
                    branches_now_query(),
                    result_format="table",
                )
            ],
            unit=unit_of("pdu.branch_current_a"),
            width=12,
        ),
    )


def build(site: Site) -> Dashboard | None:
    from dcim.grafana.views import site_dashboard

    rows = [
        Row("UPS", ups_panels() if site.has(DeviceKind.UPS) else ()),
        Row("Rack PDUs", pdu_panels() if site.has(DeviceKind.PDU) else ()),
    ]
    return site_dashboard(site, "power", "Power", "UPS and rack PDU power paths.", rows)
