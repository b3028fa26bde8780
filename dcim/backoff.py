"""Exponential backoff, the one every retry loop uses (sinks, alert channels, MQTT, streams).

`next_delay()` gives the wait before the next try and doubles what comes after,
up to `max_s`; `reset()` after a success. `jitter` spreads each delay by that
fraction either way, so many monitors do not reconnect in step. A loop that
waits only on some failures doubles with `grow()` and reads `delay`.
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, first_s: float, max_s: float, *, jitter: float = 0.0) -> None:
        if first_s <= 0:
            raise ValueError("the first delay must be positive")
        self.first_s = first_s
        self.max_s = max(max_s, first_s)
        self.jitter = jitter
        #: The wait before the next try (without jitter).
        self.delay = first_s

    @property
    def failing(self) -> bool:
        """True once a failure grew the delay (until `reset`)."""
        return self.delay > self.first_s

    def next_delay(self) -> float:
        """The wait before the next try; the one after doubles."""
        delay = self.delay
        self.grow()
        if self.jitter:
            return delay * random.uniform(1 - self.jitter, 1 + self.jitter)
        return delay

    def grow(self) -> float:
        """Double the delay (up to `max_s`); the new delay."""
        self.delay = min(self.delay * 2, self.max_s)
        return self.delay

    def reset(self) -> None:
        self.delay = self.first_s
