"""Simulated time that can run faster than the wall clock."""

from __future__ import annotations

import time
from collections.abc import Callable


class SimClock:
    """Seconds of simulated time: `start_s` plus elapsed monotonic time × `speed`.

    `now_fn` is injectable so tests can drive time by hand.
    """

    def __init__(
        self,
        speed: float = 1.0,
        start_s: float = 0.0,
        now_fn: Callable[[], float] = time.monotonic,
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

    def elapsed(self) -> float:
        """Simulated seconds since the clock started."""
        return self.now() - self.start_s
