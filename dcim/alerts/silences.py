"""Silences and maintenance windows: label matchers over a time span.

A maintenance window is a silence that starts in the future. Fire alarms are
never silenced (the engine checks `fire_alarm` before asking a silence).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from dcim.alerts.model import Incident

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
#: Labels a silence may match on, besides the rule id.
MATCHABLE = ("rule", "site", "room", "row", "rack", "device", "kind", "phase", "branch", "outlet")


def parse_duration(text: str) -> float:
    """`90s`, `15m`, `2h`, `1d` -> seconds."""
    match = _DURATION.match(text.strip())
    if match is None:
        msg = f"not a duration: {text!r} (use e.g. 90s, 15m, 2h, 1d)"
        raise ValueError(msg)
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_matchers(text: str) -> dict[str, str]:
    """`room=hall-a,rule=ashrae.*` -> {'room': 'hall-a', 'rule': 'ashrae.*'}."""
    matchers: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, pattern = part.partition("=")
        if not sep or not pattern or name not in MATCHABLE:
            msg = f"bad scope {part!r}: use NAME=GLOB with NAME one of {', '.join(MATCHABLE)}"
            raise ValueError(msg)
        matchers[name] = pattern
    if not matchers:
        msg = "a silence needs at least one NAME=GLOB matcher"
        raise ValueError(msg)
    return matchers


@dataclass(frozen=True, slots=True)
class Silence:
    id: str
    matchers: dict[str, str]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str = ""

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, incident: Incident) -> bool:
        for name, pattern in self.matchers.items():
            value = incident.rule if name == "rule" else incident.labels.get(name)
            if value is None or not fnmatchcase(value, pattern):
                return False
        return True

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "matchers": dict(self.matchers),
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "created_by": self.created_by,
            "comment": self.comment,
        }
