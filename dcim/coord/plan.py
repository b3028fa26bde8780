"""Which live member polls which room: rendezvous hashing with a load bound.

Every member computes the plan from the same two inputs, the inventory's rooms
(with their device counts) and the sorted list of live members, so they agree
without talking. Rooms stay whole (rules that span a room need all its readings
in one process).

Each room ranks the members by a hash of (room, member): the highest-ranked
member that still has room under the load bound takes it. Rooms are placed
largest first, and the bound is the fair share of devices plus a slack (never
less than the largest room), so members end up within the slack of an equal
device count. The ranking is what keeps churn low: when a member goes, its rooms
go to their next-ranked member and most other rooms stay where they are; when
it comes back, the plan is the one before it went (the same inputs), so exactly
its rooms move back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

#: (site id, room id)
RoomKey = tuple[str, str]
#: Members may carry this much more than an equal share of the devices.
SLACK = 0.25


def room_name(room: RoomKey) -> str:
    return f"{room[0]}/{room[1]}"


def _score(room: RoomKey, member: str) -> int:
    digest = hashlib.sha256(f"{room[0]}/{room[1]}\0{member}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def assign(
    rooms: Mapping[RoomKey, int], members: Sequence[str], *, slack: float = SLACK
) -> dict[RoomKey, str]:
    """room -> member, for `rooms` weighted by device count; empty without members."""
    live = sorted(set(members))
    if not live:
        return {}
    weights = {room: max(0, size) for room, size in rooms.items()}
    total = sum(weights.values())
    cap = max(max(weights.values(), default=0), total * (1 + slack) / len(live))
    load = dict.fromkeys(live, 0)
    plan: dict[RoomKey, str] = {}
    for room in sorted(weights, key=lambda r: (-weights[r], r)):
        size = weights[room]
        ranked = sorted(live, key=lambda m: (-_score(room, m), m))
        chosen = next((m for m in ranked if load[m] + size <= cap), None)
        if chosen is None:  # big rooms left over: the least loaded member takes it
            chosen = min(live, key=lambda m: (load[m], m))
        load[chosen] += size
        plan[room] = chosen
    return plan


def rooms_of(plan: Mapping[RoomKey, str], member: str) -> set[RoomKey]:
    return {room for room, owner in plan.items() if owner == member}
