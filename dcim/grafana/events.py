"""Alerts on the dashboards: annotations of transitions, and what is open now.

Transitions: the engine writes each as `alert.event` (measurement `alert`, field
`event`, tags rule, scope, severity, state, incident and the place,
`dcim/alerts/events.py`). The NOC marks only critical firing and resolve
transitions (fire alarms are critical); the other views mark warnings too. Device
notifications (SNMP traps, `event.trap`, tag `trap`) are an opt-in annotation: a
trap storm must not paint every panel.

Open now: the engine restates every firing incident every period
(`dcim/alerts/snapshot.py`, measurement `alert_open`, field `urgency`), so the
active-alerts table and the incident counts read the last few periods, whatever
the time picker says, and an incident firing for days stays in view.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as model

from dcim.alerts.model import Severity
from dcim.alerts.snapshot import DEFAULT_PERIOD_S, HEARTBEAT_INCIDENT, URGENCY
from dcim.alerts.snapshot import METRIC as OPEN_METRIC
from dcim.grafana.influxql import ident, literal, scope_filter, select, since, stored, where
from dcim.grafana.model import (
    AnnotationTargetBuilder,
    Influx,
    InfluxAnnotationTarget,
    Threshold,
    datasource_ref,
)
from dcim.grafana.panels import PanelBuilder, colour_cells, link, stat, table
from dcim.grafana.states import ALERT_SEVERITY
from dcim.grafana.thresholds import GREEN, ORANGE, RED

ALERT = stored("alert.event")
OPEN = stored(OPEN_METRIC)
#: Seconds an open-incident statement stays valid: two and a half periods.
OPEN_LOOKBACK_S = 2.5 * DEFAULT_PERIOD_S
#: Transitions worth a marker: an incident starts paging, or stops.
MARKED_EVENTS = ("firing", "resolved")
#: Columns of the active-alerts table, in this order; sorted by urgency, most urgent first.
ALERT_COLUMNS = ("severity", "rule", "scope", "since", "state", "room", "device", "incident")
#: Urgency of an acknowledged critical (still critical); of a warning.
CRITICAL_FROM = URGENCY[Severity.CRITICAL] - 5
WARNING_FROM = URGENCY[Severity.WARNING] - 5


def alert_annotation(*, critical_only: bool) -> dashboard_builder.AnnotationQuery:
    """Firing and resolve markers: title the event, text the scope, tags rule/severity/device."""
    columns = ", ".join(ident(c) for c in (ALERT.field, "rule", "scope", "severity", "device"))
    events = " OR ".join(f"{ident(ALERT.field)} = {literal(e)}" for e in MARKED_EVENTS)
    conditions = [f"({events})"]
    if critical_only:
        conditions.append(f'"severity" = {literal("critical")}')
    query = select(columns, ident(ALERT.measurement), where(*conditions))
    target = InfluxAnnotationTarget(
        query, title=ALERT.field, text="scope", tags=("rule", "severity", "device")
    )
    return (
        dashboard_builder.AnnotationQuery()
        .name("Critical alerts" if critical_only else "Alerts")
        .datasource(datasource_ref())
        .enable(True)
        .hide(False)
        .icon_color("red")
        .target(AnnotationTargetBuilder(target))
    )


def trap_annotation() -> dashboard_builder.AnnotationQuery:
    """Device notifications (traps): on battery, power restored, overload... Off by default."""
    s = stored("event.trap")
    query = select(f'{ident(s.field)}::field, "device"', ident(s.measurement), where())
    target = InfluxAnnotationTarget(query, text=s.field, tags=("device",))
    return (
        dashboard_builder.AnnotationQuery()
        .name("Device events")
        .datasource(datasource_ref())
        .enable(False)
        .hide(False)
        .icon_color("orange")
        .target(AnnotationTargetBuilder(target))
    )


def event_annotations(*, critical_only: bool) -> list[cogbuilder.Builder[model.AnnotationQuery]]:
    return [alert_annotation(critical_only=critical_only), trap_annotation()]


def _last_per_incident(fields: str) -> str:
    """The newest statement of every incident within the lookback (heartbeats left out)."""
    not_heartbeat = f'"incident" != {literal(HEARTBEAT_INCIDENT)}'
    condition = " AND ".join((since(OPEN_LOOKBACK_S), scope_filter(), not_heartbeat))
    return select(fields, ident(OPEN.measurement), condition, [ident("incident")])


def active_alerts_query() -> str:
    """Every incident firing now with its severity, rule, place; one series per incident.

    `last()` is a selector: the tags selected beside it come from that same point,
    and every series has the same columns (one table shape).
    """
    tags = [c for c in ALERT_COLUMNS if c != "incident"]
    inner = _last_per_incident(
        f"last({ident(OPEN.field)}) AS {ident(OPEN.field)}, " + ", ".join(map(ident, tags))
    )
    outer = ", ".join(ident(c) for c in (OPEN.field, *tags))
    return select(outer, f"({inner})", f"{ident(OPEN.field)} > 0", [ident("incident")])


def open_counts_query() -> str:
    """Critical and warning incidents open now; `engine` is the alert engine's heartbeat.

    No row at all means the engine wrote nothing within the lookback (NO DATA);
    a null count means none open.
    """
    inner = _last_per_incident(f'last({ident(OPEN.field)}) AS "u"')
    heartbeat = select(
        f'last({ident(OPEN.field)}) AS "h"',
        ident(OPEN.measurement),
        " AND ".join(
            (
                since(OPEN_LOOKBACK_S),
                scope_filter(("site",)),
                f'"incident" = {literal(HEARTBEAT_INCIDENT)}',
            )
        ),
    )
    critical = f'SELECT "u" AS "c" FROM ({inner}) WHERE "u" >= {CRITICAL_FROM}'  # noqa: S608 - InfluxQL of vocabulary names
    warning = (
        f'SELECT "u" AS "w" FROM ({inner}) WHERE "u" >= {WARNING_FROM} AND "u" < {CRITICAL_FROM}'  # noqa: S608 - InfluxQL of vocabulary names
    )
    return (
        'SELECT count("c") AS "critical", count("w") AS "warning", count("h") AS "engine" '  # noqa: S608 - InfluxQL of vocabulary names
        f"FROM ({critical}), ({warning}), ({heartbeat})"
    )


def open_count_tiles() -> list[PanelBuilder]:
    query = Influx(open_counts_query())
    about = (
        "Incidents firing now (the alert engine restates them every "
        f"{DEFAULT_PERIOD_S:g} s); NO DATA when the engine wrote nothing for "
        f"{OPEN_LOOKBACK_S:g} s."
    )
    return [
        stat(
            "Critical incidents",
            [query],
            steps=(Threshold(GREEN), Threshold(RED, 1)),
            fields="/^critical$/",
            null_is_zero=True,
            description=about,
        ),
        stat(
            "Warnings",
            [query],
            steps=(Threshold(GREEN), Threshold(ORANGE, 1)),
            fields="/^warning$/",
            null_is_zero=True,
            description=about,
        ),
    ]


def active_alerts_panel(device_dashboard_uid: str) -> PanelBuilder:
    """Incidents firing now, most urgent first; only the severity column is coloured."""
    sort = model.DataTransformerConfig(
        id_val="sortBy", options={"sort": [{"field": OPEN.field, "desc": True}]}
    )
    device_link = link(
        "Device detail",
        f"/d/{device_dashboard_uid}?var-device=${{__value.raw}}&${{__url_time_range}}",
    )
    return table(
        "Active alerts",
        [Influx(active_alerts_query(), table=True)],
        columns=ALERT_COLUMNS,
        transformations=[sort],
        column_props={
            "severity": colour_cells(ALERT_SEVERITY),
            "device": [model.DynamicConfigValue(id_val="links", value=[device_link.build()])],
        },
        description=(
            "Every incident firing now, whatever the time range: the alert engine restates "
            f"each one every {DEFAULT_PERIOD_S:g} s (measurement `{OPEN.measurement}`). "
            "Most urgent first (critical, then acknowledged critical, then warnings)."
        ),
        width=24,
        height=8,
    )
