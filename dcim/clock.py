"""Time, one abstraction: a clock is a callable returning seconds since the epoch.

- `wall_clock`: production (the alert engine's now; `wall_clock_ns` stamps readings);
- `SimClock`: simulated time that may run faster than the wall (the simulators,
  the demo's alert engine), itself driven by a clock it reads (the wall's
  monotonic time, or a `ManualClock` in tests);
- `ManualClock`: moves only when told, so tests drive time by hand and never sleep.

Pollers and timers sleep on the event loop's monotonic time, which a clock
cannot replace; what they stamp and compare comes from a `Clock`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Seconds since the epoch (or since a simulation's start), as a float.
Clock = Callable[[], float]


def wall_clock() -> float:
    """Seconds since the epoch (the engine's notion of now in production)."""
    return time.time()


def wall_clock_ns() -> int:
    """Wall-clock time in nanoseconds since the epoch (UTC by definition)."""
    return time.time_ns()


class ManualClock:
    """A clock that moves only when told: tests drive time by hand, no sleeping."""

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


class SimClock:
    """Seconds of simulated time: `start_s` plus elapsed time of `now_fn` × `speed`.

    `now_fn` is the clock it reads (monotonic wall time by default; a
    `ManualClock` lets tests drive time by hand). Calling it is `now()`.
    """

    def __init__(
        self,
        speed: float = 1.0,
        start_s: float = 0.0,
        now_fn: Clock = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self.start_s = start_s
        self._now_fn = now_fn
        self._origin = now_fn()

    def now(self) -> float:
        """Current simulated time in seconds."""
        return self.start_s + (self._now_fn() - self._origin) * self.speed

    __call__ = now

    def elapsed(self) -> float:
        """Simulated seconds since the clock started."""
        return self.now() - self.start_s
