"""Admission of polls: how many may run at once, set by how well the event loop keeps up.

Every poll of every device runs in one event loop. When more polls are due than the
process can serve, starting them all only makes each one slower: the loop lags,
answers wait in socket buffers past their timeouts, retries add load, and polls
fail that the devices answered in time (a timeout storm). The gate lets polls start
while the loop keeps up and holds them back while it lags; a poll still waiting
when its device's next slot comes is skipped, counted and logged, and the device is
polled at that next slot (the self-metrics count and log it). Waiting on the network
costs the loop nothing, so slow devices and long round trips raise the limit, they do
not lower it: only the loop's own lag does.

The loop's lag is the lateness of a timer set every `probe_s` (how long a ready
callback waits behind the others). The limit follows it: cut to a fraction of the
polls in progress when the lag passes `lag_high_s`, raised by a step while it stays
under `lag_low_s` and polls are waiting. Alert decisions come before polling: when
the alert engine's queue (`backlog`, its fill fraction) is more than half full, the
limit is cut as for a lagging loop, so pages are not held behind readings.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable

#: How often the loop's lag is sampled, s.
PROBE_S = 0.05
#: Lag above which fewer polls may start; below the low mark more may (if some wait).
LAG_HIGH_S = 0.2
LAG_LOW_S = 0.05
#: The limit after a lagging sample: this fraction of the polls in progress.
DECREASE = 0.7
#: Least and most polls at once, and where the limit starts.
MINIMUM = 4
MAXIMUM = 100_000
INITIAL = 512
#: Fill fraction of the alert engine's queue above which fewer polls may start.
BACKLOG_HIGH = 0.5


class PollGate:
    """Admits polls while the event loop keeps up; counts what it had to skip."""

    def __init__(
        self,
        *,
        initial: int = INITIAL,
        minimum: int = MINIMUM,
        maximum: int = MAXIMUM,
        lag_high_s: float = LAG_HIGH_S,
        lag_low_s: float = LAG_LOW_S,
        probe_s: float = PROBE_S,
        backlog: Callable[[], float] | None = None,
    ) -> None:
        self._backlog = backlog
        self.minimum = max(1, minimum)
        self.maximum = max(self.minimum, maximum)
        self.limit = min(self.maximum, max(self.minimum, initial))
        self.lag_high_s = lag_high_s
        self.lag_low_s = lag_low_s
        self.probe_s = probe_s
        self.in_progress = 0
        #: Polls admitted, and skipped because their next slot came while they waited.
        self.admitted = 0
        self.skipped = 0
        #: The loop's lag at the last sample, and the largest since the self-metrics took it.
        self.loop_lag_s = 0.0
        self.max_loop_lag_s = 0.0
        self._waiters: collections.deque[asyncio.Future[bool]] = collections.deque()
        self._task: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    def start(self) -> None:
        """Start sampling the loop's lag (in the running loop); idempotent."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._watch(), name="poll-gate")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def admit(self, deadline: float) -> bool:
        """Wait for a turn until loop time `deadline`: True when admitted (call `release`
        after the poll), False when the deadline passed first (the poll is skipped)."""
        self._wake()  # waiters that expired leave the queue first: they hold no turn
        if self.in_progress < self.limit and not self._waiters:
            self.in_progress += 1
            self.admitted += 1
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_at(deadline, _expire, waiter)
        try:
            admitted = await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self.release()  # admitted and cancelled in the same instant: give it back
            raise
        finally:
            timer.cancel()
        if not admitted:
            self.skipped += 1
        return admitted

    def release(self) -> None:
        self.in_progress -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_progress < self.limit:
            waiter = self._waiters.popleft()
            if waiter.done():
                continue
            self.in_progress += 1
            self.admitted += 1
            waiter.set_result(True)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + self.probe_s
            await asyncio.sleep(self.probe_s)
            lag = max(0.0, loop.time() - expected)
            self.loop_lag_s = lag
            self.max_loop_lag_s = max(self.max_loop_lag_s, lag)
            self._adjust(lag)

    def _adjust(self, lag: float) -> None:
        behind = self._backlog is not None and self._backlog() > BACKLOG_HIGH
        if lag > self.lag_high_s or behind:
            self.limit = max(self.minimum, min(self.limit, int(self.in_progress * DECREASE)))
        elif lag < self.lag_low_s and self._waiters:
            self.limit = min(self.maximum, self.limit + max(1, self.limit // 8))
            self._wake()

    def take_max_loop_lag(self) -> float:
        """The largest loop lag since the last call (the self-metrics' period)."""
        lag, self.max_loop_lag_s = self.max_loop_lag_s, self.loop_lag_s
        return lag


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)
