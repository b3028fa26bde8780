"""Power flow, as pure functions: rack IT load -> outlets -> branches -> phases -> feeds.

Every server in a rack is dual-corded: power supply A on outlet i of the A-feed
PDU, supply B on outlet i of the B-feed PDU. With both supplies live each
carries half; when one side is dead (feed down, breaker tripped) the other
carries the whole server. Currents add because all outlets of a PDU share one
voltage and power factor, so sums hold exactly at every level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from simulators.hall.topology import Pdu

POWER_FACTOR = 0.95
DAY_S = 86_400.0


def daily_factor(t_s: float) -> float:
    """IT load relative to design: lowest around 04:00, highest around 16:00 (0.80..1.00)."""
    phase = 2.0 * math.pi * ((t_s % DAY_S) / DAY_S - 10.0 / 24.0)
    return 0.90 + 0.10 * math.sin(phase)


def server_shares(weights: Sequence[float]) -> tuple[float, ...]:
    """Normalise per-server weights so they sum to 1."""
    total = sum(weights)
    return tuple(w / total for w in weights)


@dataclass(frozen=True, slots=True)
class RackSplit:
    """Watts per outlet on the A and B PDU of one rack (index = outlet)."""

    a_w: tuple[float, ...]
    b_w: tuple[float, ...]
    unserved_w: float  # servers with neither supply live


def split_rack(
    rack_w: float,
    shares: Sequence[float],
    a_live: Sequence[bool],
    b_live: Sequence[bool],
) -> RackSplit:
    """Spread a rack's load over its servers' two supplies; `*_live[i]` says if outlet i has power."""
    a = [0.0] * len(a_live)
    b = [0.0] * len(b_live)
    unserved = 0.0
    for i, share in enumerate(shares):
        w = rack_w * share
        on_a = i < len(a) and a_live[i]
        on_b = i < len(b) and b_live[i]
        if on_a and on_b:
            a[i] = b[i] = w / 2.0
        elif on_a:
            a[i] = w
        elif on_b:
            b[i] = w
        else:
            unserved += w
    return RackSplit(tuple(a), tuple(b), unserved)


@dataclass(frozen=True, slots=True)
class PduFlow:
    """One PDU's electrical state: per outlet, branch and phase, and in total."""

    voltage_v: float
    outlet_w: tuple[float, ...]
    outlet_a: tuple[float, ...]
    branch_a: tuple[float, ...]
    branch_w: tuple[float, ...]
    phase_a: tuple[float, ...]
    phase_w: tuple[float, ...]
    total_w: float

    @property
    def apparent_va(self) -> float:
        return self.total_w / POWER_FACTOR if self.total_w else 0.0


def pdu_flow(pdu: Pdu, outlet_w: Sequence[float], voltage_v: float) -> PduFlow:
    """Sum outlet loads into branches and phases (line-to-neutral outlets)."""
    amps = [w / (voltage_v * POWER_FACTOR) if voltage_v > 0 else 0.0 for w in outlet_w]
    branch_a = [0.0] * pdu.branches
    branch_w = [0.0] * pdu.branches
    for i, (w, a) in enumerate(zip(outlet_w, amps, strict=True)):
        b = pdu.branch_of_outlet(i)
        branch_a[b] += a
        branch_w[b] += w
    phase_a = [0.0] * pdu.phases
    phase_w = [0.0] * pdu.phases
    for b in range(pdu.branches):
        p = pdu.phase_of_branch(b)
        phase_a[p] += branch_a[b]
        phase_w[p] += branch_w[b]
    return PduFlow(
        voltage_v,
        tuple(outlet_w),
        tuple(amps),
        tuple(branch_a),
        tuple(branch_w),
        tuple(phase_a),
        tuple(phase_w),
        sum(outlet_w),
    )


def load_state(current_a: float, rating_a: float) -> str:
    """The PDU's own judgement (vocabulary pdu.*_load_state): near overload at 80 % (NEC 80 % rule)."""
    if current_a >= rating_a:
        return "overload"
    if current_a >= 0.8 * rating_a:
        return "near_overload"
    if current_a < 0.1:
        return "low"
    return "normal"
