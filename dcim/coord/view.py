"""What the board and /metrics show of a coordinated member (no etcd needed to read it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class HandoverView:
    at: float
    room: str
    direction: str  # "in": taken here; "out": given away
    peer: str
    reason: str
    incidents: int


@dataclass(frozen=True, slots=True)
class CoordinationView:
    member: str
    members: Sequence[str]
    rooms: Sequence[str]
    #: etcd answered at the last step.
    connected: bool
    #: "coordination lost" raised (etcd unreachable for lost_after_s).
    lost: bool
    lost_since: float | None
    error: str
    #: (direction, reason) -> count since start.
    handovers: dict[tuple[str, str], int] = field(default_factory=dict)
    recent: Sequence[HandoverView] = ()

    @property
    def handovers_total(self) -> int:
        return sum(self.handovers.values())
