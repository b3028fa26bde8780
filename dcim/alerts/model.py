"""Incidents and what happens to them: the engine's vocabulary."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from dcim.reading import Value

#: ASHRAE TC 9.9 thermal class of a room's IT equipment [H1] (inventory `ashrae_class`).
AshraeClass = Literal["A1", "A2", "A3", "A4"]
#: The class of a room whose inventory entry names none, unless `alerts.ashrae_class` says.
DEFAULT_ASHRAE_CLASS: AshraeClass = "A1"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 1, Severity.WARNING: 2, Severity.CRITICAL: 3}


class Phase(StrEnum):
    """Where an incident is in its life."""

    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Level:
    """One asserted condition level of a rule (e.g. high_critical) and its timing."""

    name: str
    severity: Severity
    for_s: float = 0.0
    clear_for_s: float = 0.0


@dataclass(slots=True)
class Incident:
    """One cause: a rule firing for one scope. Deduplicated on (rule, key)."""

    id: str
    rule: str
    key: str
    severity: Severity
    level: str
    phase: Phase
    labels: dict[str, str]
    summary: str
    started_at: float
    value: Value | None = None
    fired_at: float | None = None
    resolved_at: float | None = None
    last_seen: float = 0.0
    stale: bool = False
    flapping: bool = False
    parent: str | None = None
    ack_by: str | None = None
    ack_at: float | None = None
    ack_comment: str | None = None
    escalated: bool = False
    #: Severity last announced as firing; None when nothing (or the resolve) was sent.
    notified: Severity | None = None
    fire_alarm: bool = False
    children: set[str] = field(default_factory=set)

    @property
    def dedup_key(self) -> tuple[str, str]:
        return (self.rule, self.key)

    @property
    def acknowledged(self) -> bool:
        return self.ack_at is not None


@dataclass(frozen=True, slots=True)
class Transition:
    """Something that happened to an incident (becomes an `alert` reading)."""

    event: (
        str  # pending, firing, updated, resolved, cancelled, stale, fresh, acknowledged, grouped...
    )
    at: float
    incident: Incident


@dataclass(frozen=True, slots=True)
class Notification:
    """What a notifier sends: a snapshot of one incident and why it is sent."""

    event: str  # firing, updated, resolved, escalated, acknowledged
    at: float
    incident_id: str
    rule: str
    rule_name: str
    key: str
    severity: Severity
    phase: Phase
    summary: str
    labels: dict[str, str]
    started_at: float
    fired_at: float | None
    resolved_at: float | None
    acknowledged_by: str | None = None
    fire_alarm: bool = False
    flapping: bool = False
    stale: bool = False
    children: int = 0
    #: The rule's runbook as its pack gives it (an URL or a docs path); channels resolve it.
    runbook_url: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "event": self.event,
            "at": self.at,
            "id": self.incident_id,
            "rule": self.rule,
            "rule_name": self.rule_name,
            "scope": self.key,
            "severity": self.severity.value,
            "state": self.phase.value,
            "summary": self.summary,
            "labels": dict(self.labels),
            "started_at": self.started_at,
            "fired_at": self.fired_at,
            "resolved_at": self.resolved_at,
            "acknowledged_by": self.acknowledged_by,
            "fire_alarm": self.fire_alarm,
            "flapping": self.flapping,
            "stale": self.stale,
            "grouped_children": self.children,
            "runbook_url": self.runbook_url,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Notification:
        def opt_float(name: str) -> float | None:
            value = data.get(name)
            return float(value) if isinstance(value, int | float) else None

        labels = data.get("labels")
        return cls(
            event=str(data["event"]),
            at=float(data["at"]),  # type: ignore[arg-type]
            incident_id=str(data["id"]),
            rule=str(data["rule"]),
            rule_name=str(data.get("rule_name", "")),
            key=str(data["scope"]),
            severity=Severity(str(data["severity"])),
            phase=Phase(str(data["state"])),
            summary=str(data.get("summary", "")),
            labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
            started_at=float(data["started_at"]),  # type: ignore[arg-type]
            fired_at=opt_float("fired_at"),
            resolved_at=opt_float("resolved_at"),
            acknowledged_by=str(data["acknowledged_by"]) if data.get("acknowledged_by") else None,
            fire_alarm=bool(data.get("fire_alarm", False)),
            flapping=bool(data.get("flapping", False)),
            stale=bool(data.get("stale", False)),
            children=int(data.get("grouped_children", 0)),  # type: ignore[call-overload]
            runbook_url=str(data.get("runbook_url") or ""),
        )
