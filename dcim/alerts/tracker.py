"""Time logic of one (rule, scope): assertion delay, minimum clear time, flap hold, grace.

Evaluators say *what* the condition is now (a level, or clear); the tracker decides
*when* that becomes pending, firing, a severity change or a resolve.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from dcim.alerts.kinds.base import Explains, RuleBase, SameFact
from dcim.alerts.model import Incident, Level, Phase


@dataclass(frozen=True, slots=True)
class RuleInfo:
    """What the engine needs of a rule once compiled."""

    id: str
    title: str
    kind: str
    fire_alarm: bool = False
    explains: tuple[Explains, ...] = ()
    clear_for_s: float = 0.0
    same_as: tuple[SameFact, ...] = ()
    #: The rule's runbook as the pack gives it (an URL or a docs path; links resolve it).
    runbook: str = ""

    @classmethod
    def of(cls, rule: RuleBase) -> RuleInfo:
        kind = str(getattr(rule, "kind", "rule"))
        return cls(
            rule.id,
            rule.title,
            kind,
            rule.fire_alarm,
            tuple(rule.explains),
            rule.clear_for_s,
            tuple(rule.same_as),
            rule.runbook_url,
        )


@dataclass(frozen=True, slots=True)
class FlapPolicy:
    """`count` firings within `window_s` mark an incident flapping; it then resolves only
    after the condition stayed clear for `hold_s`."""

    count: int = 4
    window_s: float = 1800.0
    hold_s: float = 600.0


@dataclass(slots=True)
class Entry:
    rule: RuleInfo
    key: str
    raw: Level | None = None
    raw_since: float = 0.0
    active_since: float = 0.0
    incident: Incident | None = None
    firings: deque[float] = field(default_factory=deque)


NewIncident = Callable[[Entry, float], Incident]
Emit = Callable[[str, Incident], None]


def set_raw(entry: Entry, level: Level | None, now: float) -> None:
    """Record the evaluator's verdict; the clock of a level starts when it changes."""
    old = entry.raw
    if (old is None) != (level is None) or (
        old is not None and level is not None and old.severity != level.severity
    ):
        entry.raw_since = now
        if old is None:
            entry.active_since = now
    entry.raw = level


def advance(
    entry: Entry,
    now: float,
    *,
    grace_end: float,
    flap: FlapPolicy,
    new_incident: NewIncident,
    emit: Emit,
    held: bool = False,
) -> None:
    """Move the entry's incident as far as time and the current verdict allow.

    `held`: a firing incident does not resolve (a same-fact child still fires)."""
    incident = entry.incident
    raw = entry.raw
    if incident is None or incident.phase is Phase.RESOLVED:
        if raw is None:
            return
        incident = entry.incident = new_incident(entry, now)
        emit("pending", incident)
    if incident.phase is Phase.PENDING:
        if raw is None:
            entry.incident = None
            emit("cancelled", incident)
            return
        incident.severity, incident.level = raw.severity, raw.name
        # no alert before the first full poll round: the start-up grace
        if now - entry.active_since >= raw.for_s and now >= grace_end:
            incident.phase = Phase.FIRING
            incident.fired_at = now
            _count_firing(entry, incident, now, flap)
            emit("firing", incident)
        return
    if incident.phase is not Phase.FIRING:
        return
    if raw is None:
        if held:
            return
        hold = entry.rule.clear_for_s
        if incident.flapping:
            hold = max(hold, flap.hold_s)
        if now - entry.raw_since >= hold:
            incident.phase = Phase.RESOLVED
            incident.resolved_at = now
            incident.flapping = False
            emit("resolved", incident)
        return
    rank, current = raw.severity.rank, incident.severity.rank
    if (rank > current and now - entry.raw_since >= raw.for_s) or (
        rank < current and now - entry.raw_since >= raw.clear_for_s
    ):
        incident.severity, incident.level = raw.severity, raw.name
        emit("updated", incident)
    elif rank == current:
        incident.level = raw.name


def _count_firing(entry: Entry, incident: Incident, now: float, flap: FlapPolicy) -> None:
    entry.firings.append(now)
    while entry.firings and entry.firings[0] < now - flap.window_s:
        entry.firings.popleft()
    if len(entry.firings) >= flap.count:
        incident.flapping = True
