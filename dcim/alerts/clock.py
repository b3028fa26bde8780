"""Clocks for the engine: wall time in production, a hand-driven one for tests and replays."""

from __future__ import annotations

import time


def wall_clock() -> float:
    """Seconds since the epoch (the engine's notion of now in production)."""
    return time.time()


class ManualClock:
    """A clock that moves only when told: rule tests drive time by hand, no sleeping."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now

    def set(self, when: float) -> None:
        if when < self.now:
            msg = f"time cannot go back ({when} < {self.now})"
            raise ValueError(msg)
        self.now = when
