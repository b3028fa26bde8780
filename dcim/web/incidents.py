"""Open incidents as the board lists them: most urgent first, children under their parent.

Order: fire alarms, then critical, then warning (then info); within one level the
newest first, so a fresh problem is at the top of its group. An incident grouped
under another open one (a UPS on battery explains its PDUs' alerts) is shown inside
its parent, never on its own line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel

from dcim.alerts.model import Incident, Phase
from dcim.web.live import AlertTransition

_URGENCY = {"fire": 0, "critical": 1, "warning": 2, "info": 3}
#: Labels shown as an incident's place, widest first.
PLACE_LABELS = ("site", "room", "row", "rack", "device")


class IncidentView(BaseModel):
    id: str
    rule: str
    title: str
    summary: str
    scope: str
    #: "fire", "critical", "warning" or "info": what the board's shape and colour follow
    mark: str
    severity: str
    phase: str
    started_at: float
    fired_at: float | None
    place: dict[str, str]
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    silenced: bool = False
    stale: bool = False
    flapping: bool = False
    escalated: bool = False
    children: list[IncidentView] = []
    #: Which board it comes from: "" for this one, else the peer's name.
    source: str = ""


class ResolvedView(BaseModel):
    incident: str
    rule: str
    scope: str
    severity: str
    at: float
    place: dict[str, str]


def incident_view(
    incident: Incident, title: str, *, silenced: bool, source: str = ""
) -> IncidentView:
    mark = "fire" if incident.fire_alarm else incident.severity.value
    return IncidentView(
        id=incident.id,
        rule=incident.rule,
        title=title or incident.rule,
        summary=incident.summary,
        scope=incident.key,
        mark=mark,
        severity=incident.severity.value,
        phase=incident.phase.value,
        started_at=incident.started_at,
        fired_at=incident.fired_at,
        place={k: incident.labels[k] for k in PLACE_LABELS if incident.labels.get(k)},
        acknowledged_by=incident.ack_by,
        acknowledged_at=incident.ack_at,
        silenced=silenced,
        stale=incident.stale,
        flapping=incident.flapping,
        escalated=incident.escalated,
        source=source,
    )


def urgency(view: IncidentView) -> tuple[int, float]:
    return (_URGENCY.get(view.mark, 9), -(view.fired_at or view.started_at))


def arrange(
    incidents: Iterable[Incident],
    titles: dict[str, str],
    silenced: set[str],
    *,
    source: str = "",
) -> list[IncidentView]:
    """Firing incidents, most urgent first, each child inside its (open) parent."""
    open_ = [i for i in incidents if i.phase is Phase.FIRING]
    ids = {i.id for i in open_}
    views = {
        i.id: incident_view(i, titles.get(i.rule, ""), silenced=i.id in silenced, source=source)
        for i in open_
    }
    top: list[IncidentView] = []
    for incident in open_:
        view = views[incident.id]
        if incident.parent is not None and incident.parent in ids:
            views[incident.parent].children.append(view)
        else:
            top.append(view)
    for view in views.values():
        view.children.sort(key=urgency)
    return sorted(top, key=urgency)


def merge(groups: Sequence[list[IncidentView]]) -> list[IncidentView]:
    """Incidents of several boards (this one and its peers) in one urgency order."""
    return sorted((view for group in groups for view in group), key=urgency)


def recently_resolved(
    transitions: Iterable[AlertTransition], limit: int = 10
) -> list[ResolvedView]:
    """The newest resolves (one per incident), newest first."""
    seen: set[str] = set()
    out: list[ResolvedView] = []
    for t in transitions:
        if t.event != "resolved" or t.incident in seen:
            continue
        seen.add(t.incident)
        out.append(
            ResolvedView(
                incident=t.incident,
                rule=t.rule,
                scope=t.scope,
                severity=t.severity,
                at=t.at,
                place={k: t.labels[k] for k in PLACE_LABELS if t.labels.get(k)},
            )
        )
        if len(out) == limit:
            break
    return out


def count_marks(views: Iterable[IncidentView]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for view in views:
        counts[view.mark] = counts.get(view.mark, 0) + 1
    return counts
