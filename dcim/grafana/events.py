"""Alert and device events: annotations on every dashboard, the active-alerts table.

The alert engine writes every incident transition as the vocabulary's
`alert.event` (`dcim/alerts/events.py`): measurement `alert`, one string field
`event` (pending, firing, updated, resolved, cancelled, stale, fresh,
acknowledged, escalated, grouped, ungrouped) and tags `rule`, `scope` (the
incident's key, e.g. `device=ups-a`), `severity`, `state` (= the event),
`incident` (its id) plus the place labels it has (site, room, row, rack,
device). There is no free-text field: rule and scope say what it is about.
Device notifications (SNMP traps) are the vocabulary's `event.trap`; their
points also carry a tag named `trap` (the trap's MIB name), so the field is
selected as `"trap"::field`.
"""

from __future__ import annotations

from dcim.grafana.influxql import ident, select, stored, where
from dcim.grafana.model import Annotation, Panel, Target
from dcim.grafana.panels import table
from dcim.grafana.states import ALERT_SEVERITY

ALERT = stored("alert.event")
ALERT_MEASUREMENT = ALERT.measurement
ALERT_EVENT_FIELD = ALERT.field
#: Tags that stay the same for the whole life of an incident.
INCIDENT_TAGS = ("incident", "rule", "scope")
#: Events after which an incident is no longer active (pending has not fired yet).
INACTIVE_EVENTS = ("pending", "resolved", "cancelled")


def alert_annotation() -> Annotation:
    """Every alert transition as a marker: title the event, text the scope, tags rule/severity."""
    columns = ", ".join(
        ident(c) for c in (ALERT_EVENT_FIELD, "rule", "scope", "severity", "device")
    )
    query = select(columns, ident(ALERT_MEASUREMENT), where())
    return Annotation(
        name="Alert events",
        query=query,
        icon_color="red",
        title_column=ALERT_EVENT_FIELD,
        text_column="scope",
        tags_column="rule,severity,device",
    )


def trap_annotation() -> Annotation:
    """Device notifications (traps): on battery, power restored, overload..."""
    s = stored("event.trap")
    query = select(f'{ident(s.field)}::field, "device"', ident(s.measurement), where())
    return Annotation(
        name="Device events",
        query=query,
        icon_color="orange",
        text_column=s.field,
        tags_column="device",
    )


def event_annotations() -> tuple[Annotation, ...]:
    return (alert_annotation(), trap_annotation())


def active_alerts_query() -> str:
    """Last transition of every incident in range, with the severity and device it had then.

    `last()` is a selector, so the tags selected beside it come from that same
    point: an incident whose severity changed shows its latest one.
    """
    fields = f"last({ident(ALERT_EVENT_FIELD)}) AS {ident(ALERT_EVENT_FIELD)}, " + ", ".join(
        ident(tag) for tag in ("severity", "device")
    )
    return select(fields, ident(ALERT_MEASUREMENT), where(), [ident(tag) for tag in INCIDENT_TAGS])


def active_alerts_panel() -> Panel:
    """Incidents whose last transition in range leaves them active (firing, updated, ...)."""
    not_active = {
        "id": "filterByValue",
        "options": {
            "filters": [
                {
                    "config": {"id": "equal", "options": {"value": event}},
                    "fieldName": ALERT_EVENT_FIELD,
                }
                for event in INACTIVE_EVENTS
            ],
            "match": "any",
            "type": "exclude",
        },
    }
    return table(
        "Active alerts",
        [Target(active_alerts_query(), result_format="table")],
        mappings=ALERT_SEVERITY,
        transformations=[not_active],
        description=(
            "Incidents whose last transition in the time range is neither "
            f"{', '.join(INACTIVE_EVENTS)}: firing, updated, acknowledged, escalated, "
            "stale, grouped... (measurement `alert`, written by the alert engine)."
        ),
        width=24,
        height=7,
    )
