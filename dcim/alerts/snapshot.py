"""The current state of every firing incident, written periodically (measurement `alert_open`).

Transitions (`alert.event`) say what changed; a dashboard that shows only what changed
inside its time range forgets an incident firing for longer than the range. This
module restates, every `period_s`, each firing incident as one `incident.urgency`
reading, so "what is open now" is the newest points within a few periods, whatever
the time picker says:

- urgency 30 critical, 20 warning, 10 info, minus 5 once acknowledged: a dashboard
  sorts by it and counts criticals with `>= 30`; 0 marks an incident no longer
  firing (written at once when it resolves, so it leaves the view without waiting);
- tags: incident, rule, scope, severity, state (firing or acknowledged), since (when
  it fired, UTC ISO 8601) and the place labels it has;
- one heartbeat per site (incident `-`, urgency 0) each period, so "no incident
  open" reads as 0 and a silent alert engine as no data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from types import MappingProxyType

from dcim.alerts.events import ENGINE_SOURCE
from dcim.alerts.model import Incident, Phase, Severity, Transition
from dcim.reading import Reading

METRIC = "incident.urgency"
#: Seconds between two statements of every firing incident (a dashboard looks back 2.5x).
DEFAULT_PERIOD_S = 30.0
HEARTBEAT_INCIDENT = "-"
URGENCY = {Severity.CRITICAL: 30, Severity.WARNING: 20, Severity.INFO: 10}
ACKNOWLEDGED_DISCOUNT = 5
_PLACE = ("site", "room", "row", "rack", "device")


def urgency(incident: Incident) -> int:
    """How urgent an open incident is; 0 once it no longer fires."""
    if incident.phase is not Phase.FIRING:
        return 0
    value = URGENCY[incident.severity]
    return value - ACKNOWLEDGED_DISCOUNT if incident.acknowledged else value


def _iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def incident_reading(incident: Incident, now: float) -> Reading:
    tags = {name: incident.labels[name] for name in _PLACE if name in incident.labels}
    state = incident.phase.value
    if incident.phase is Phase.FIRING and incident.acknowledged:
        state = "acknowledged"
    tags |= {
        "incident": incident.id,
        "rule": incident.rule,
        "scope": incident.key,
        "severity": incident.severity.value,
        "state": state,
    }
    since = _iso(incident.fired_at)
    if since:
        tags["since"] = since
    device = incident.labels.get("device", ENGINE_SOURCE)
    return Reading(device, METRIC, urgency(incident), None, int(now * 1e9), MappingProxyType(tags))


def heartbeat(site: str, now: float) -> Reading:
    tags = {"site": site, "incident": HEARTBEAT_INCIDENT, "state": "heartbeat"}
    return Reading(ENGINE_SOURCE, METRIC, 0, None, int(now * 1e9), MappingProxyType(tags))


class OpenIncidents:
    """Decides when to restate the open incidents, and what to write."""

    def __init__(self, sites: Sequence[str], period_s: float = DEFAULT_PERIOD_S) -> None:
        self.sites = tuple(sites)
        self.period_s = period_s
        self._next: float | None = None

    def readings(
        self,
        transitions: Iterable[Transition],
        incidents: Callable[[], Iterable[Incident]],
        now: float,
    ) -> list[Reading]:
        """Incidents that just changed (their new state) and, when due, every firing one
        (`incidents` is asked only then: sorting them on every flush cost the engine)."""
        out: dict[str, Reading] = {}
        for transition in transitions:
            incident = transition.incident
            if transition.event != "pending":
                out[incident.id] = incident_reading(incident, now)
        if self._next is None or now >= self._next:
            self._next = now + self.period_s
            for incident in incidents():
                if incident.phase is Phase.FIRING:
                    out[incident.id] = incident_reading(incident, now)
            out |= {f"site={site}": heartbeat(site, now) for site in self.sites}
        return list(out.values())
