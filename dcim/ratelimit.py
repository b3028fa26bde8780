"""At most one log line per key per interval, with the count of lines held back.

A device that sends a broken value every poll must not write a line every poll
(one broken device at 1 s polls made ~110,000 lines a day); the counters in the
self-metrics carry the exact numbers, the log says that and when it happens.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

#: Default: one line per key per 10 minutes.
DEFAULT_INTERVAL_S = 600.0
#: Keys remembered; beyond that, unseen keys share one budget (memory stays bounded).
MAX_KEYS = 10_000


class LogLimiter:
    """`allow(key)` is None while a key is held back, else how many were held back before."""

    def __init__(
        self,
        interval_s: float = DEFAULT_INTERVAL_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._max_keys = max_keys
        self._last: dict[Hashable, float] = {}
        self._held: dict[Hashable, int] = {}

    def allow(self, key: Hashable) -> int | None:
        if key not in self._last and len(self._last) >= self._max_keys:
            key = "(other keys)"
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._held.pop(key, 0)


def held_back(count: int, interval_s: float) -> str:
    """Suffix for a rate-limited line: what was held back, and the pace of lines."""
    minutes = interval_s / 60
    rate = f"at most one line per {minutes:g} min"
    return f" ({count} more since, not logged; {rate})" if count else f" ({rate})"
