"""Alert and device events: annotations on every dashboard, the active-alerts table.

The alert engine (dcim/alerts, being built) writes its incident transitions to
the measurement `alert`. What this module assumes of those points, in one
place so it is adjusted in one place: field `event` (firing, resolved, ...)
and field `summary` (text), tags `rule` and `severity` plus the incident's
labels (site, room, row, rack, device). Device notifications (SNMP traps) are
the vocabulary's `event.trap`.
"""

from __future__ import annotations

from dcim.grafana.influxql import ident, select, stored, where
from dcim.grafana.model import Annotation, Panel, Target
from dcim.grafana.panels import table
from dcim.grafana.states import ALERT_SEVERITY

ALERT_MEASUREMENT = "alert"
ALERT_EVENT_FIELD = "event"
ALERT_SUMMARY_FIELD = "summary"
ALERT_TAGS = ("rule", "severity", "device")


def alert_annotation() -> Annotation:
    """Every alert transition as a marker: text is the summary, tags say rule and severity."""
    columns = ", ".join(ident(c) for c in (ALERT_EVENT_FIELD, ALERT_SUMMARY_FIELD, *ALERT_TAGS))
    query = select(columns, ident(ALERT_MEASUREMENT), where())
    return Annotation(
        name="Alert events",
        query=query,
        icon_color="red",
        title_column=ALERT_EVENT_FIELD,
        text_column=ALERT_SUMMARY_FIELD,
        tags_column=",".join(ALERT_TAGS),
    )


def trap_annotation() -> Annotation:
    """Device notifications (traps): on battery, power restored, overload..."""
    s = stored("event.trap")
    query = select(f'{ident(s.field)}, "device"', ident(s.measurement), where())
    return Annotation(
        name="Device events",
        query=query,
        icon_color="orange",
        text_column=s.field,
        tags_column="device",
    )


def event_annotations() -> tuple[Annotation, ...]:
    return (alert_annotation(), trap_annotation())


def active_alerts_panel() -> Panel:
    """Last transition of every incident in range; the filter keeps the firing ones."""
    fields = ", ".join(
        f"last({ident(f)}) AS {ident(f)}" for f in (ALERT_EVENT_FIELD, ALERT_SUMMARY_FIELD)
    )
    query = select(fields, ident(ALERT_MEASUREMENT), where(), [ident(t) for t in ALERT_TAGS])
    firing_only = {
        "id": "filterByValue",
        "options": {
            "filters": [
                {
                    "config": {"id": "equal", "options": {"value": "firing"}},
                    "fieldName": ALERT_EVENT_FIELD,
                }
            ],
            "match": "any",
            "type": "include",
        },
    }
    return table(
        "Active alerts",
        [Target(query, result_format="table")],
        mappings=ALERT_SEVERITY,
        transformations=[firing_only],
        description="Incidents whose last transition in the time range is `firing`.",
        width=24,
        height=7,
    )
