"""Transitions as readings (measurement `alert`) so dashboards can annotate them."""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType

from dcim.alerts.model import Transition
from dcim.reading import Reading

#: Where transitions not tied to a device (a row aggregate, a site) are filed.
ENGINE_SOURCE = "dcim-alerts"
_PLACE = ("site", "room", "row", "rack", "device")


def transition_readings(transitions: Iterable[Transition]) -> list[Reading]:
    readings = []
    for transition in transitions:
        incident = transition.incident
        tags = {name: incident.labels[name] for name in _PLACE if name in incident.labels}
        tags |= {
            "rule": incident.rule,
            "scope": incident.key,
            "severity": incident.severity.value,
            "state": transition.event,
            "incident": incident.id,
        }
        readings.append(
            Reading(
                incident.labels.get("device", ENGINE_SOURCE),
                "alert.event",
                transition.event,
                None,
                int(transition.at * 1e9),
                MappingProxyType(tags),
            )
        )
    return readings
