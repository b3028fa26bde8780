"""The monitor measures itself: queue depths, drops, spool, points written, poll lag."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType

from dcim.admission import PollGate
from dcim.bus import Bus
from dcim.collector import Emit
from dcim.poller import DevicePoller
from dcim.reading import Reading, now_ns
from dcim.sinks.worker import SinkStats

SELF_DEVICE = "dcim"
#: At most one line about skipped polls per this many seconds.
SKIPPED_LOG_EVERY_S = 60.0

log = logging.getLogger(__name__)


def _tags(**extra: str) -> Mapping[str, str]:
    return MappingProxyType({"instance": socket.gethostname(), **extra})


class SelfMetrics:
    """Collects the monitor's own health every `interval_s` and emits it as readings."""

    def __init__(
        self,
        bus: Bus,
        pollers: Sequence[DevicePoller],
        sinks: Mapping[str, Callable[[], SinkStats]],
        emit: Emit,
        interval_s: float,
        *,
        alert_store_errors: Callable[[], int | None] | None = None,
        extra: Sequence[Callable[[int], list[Reading]]] = (),
        gate: PollGate | None = None,
    ) -> None:
        self._gate = gate
        self._extra = extra
        self._bus = bus
        self._pollers = pollers
        self._sinks = sinks
        self._emit = emit
        self.interval_s = interval_s
        self._consumer_tags = {s.name: _tags(consumer=s.name) for s in bus.subscriptions}
        self._sink_tags = {name: _tags(sink=name) for name in sinks}
        self._process_tags = _tags()
        self._alert_store_errors = alert_store_errors
        #: The worst poll start lag of the last interval (Prometheus reads it between runs).
        self.last_poll_lag_s = 0.0
        self._started_at = time.monotonic()
        self._logged_at: float | None = None
        self._skipped_logged = (0, 0)
        #: The event loop's worst lag of the last interval.
        self.last_loop_lag_s = 0.0

    def collect(self) -> list[Reading]:
        """One snapshot of the monitor's health."""
        ts = now_ns()
        out: list[Reading] = []
        for sub in self._bus.subscriptions:
            tags = self._consumer_tags.get(sub.name) or _tags(consumer=sub.name)
            out.append(Reading(SELF_DEVICE, "dcim.queue_depth", sub.queue.qsize(), None, ts, tags))
            out.append(Reading(SELF_DEVICE, "dcim.queue_dropped", sub.dropped, None, ts, tags))
        for name, counters_of in self._sinks.items():
            counters = counters_of()
            tags = self._sink_tags[name]
            out.extend(
                Reading(SELF_DEVICE, metric, value, unit, ts, tags)
                for metric, value, unit in _sink_values(counters)
            )
        lag = max((p.max_lag_s for p in self._pollers), default=0.0)
        for poller in self._pollers:
            poller.max_lag_s = 0.0
        self.last_poll_lag_s = lag
        tags = self._process_tags
        out.append(Reading(SELF_DEVICE, "dcim.poll_lag_s", round(lag, 6), "s", ts, tags))
        skipped = sum(p.skipped for p in self._pollers)
        overload = sum(p.skipped_overload for p in self._pollers)
        self._log_skipped(skipped, overload, lag)
        out.append(Reading(SELF_DEVICE, "dcim.polls_skipped", skipped, None, ts, tags))
        out.append(Reading(SELF_DEVICE, "dcim.polls_skipped_overload", overload, None, ts, tags))
        gate = self._gate
        if gate is not None:
            self.last_loop_lag_s = loop_lag = gate.take_max_loop_lag()
            out.append(Reading(SELF_DEVICE, "dcim.loop_lag_s", round(loop_lag, 6), "s", ts, tags))
            out.append(Reading(SELF_DEVICE, "dcim.poll_limit", gate.limit, None, ts, tags))
            out.append(Reading(SELF_DEVICE, "dcim.polls_waiting", gate.waiting, None, ts, tags))
        errors = self._alert_store_errors() if self._alert_store_errors is not None else None
        if errors is not None:
            out.append(
                Reading(
                    SELF_DEVICE, "dcim.alert_store_errors", errors, None, ts, self._process_tags
                )
            )
        for source in self._extra:
            out.extend(source(ts))
        return out

    def _log_skipped(self, skipped: int, overload: int, lag: float) -> None:
        """One line when poll slots went without a poll, at most once a minute."""
        now = time.monotonic()
        if skipped <= self._skipped_logged[0]:
            return
        if self._logged_at is not None and now - self._logged_at < SKIPPED_LOG_EVERY_S:
            return
        since = self._started_at if self._logged_at is None else self._logged_at
        log.warning(
            "overload: %d poll slots skipped in the last %.0f s (%d not admitted, the rest "
            "overran their interval; worst start lag %.2f s): the monitor cannot poll every "
            "device on its interval, so each is polled at its next free slot",
            skipped - self._skipped_logged[0],
            now - since,
            overload - self._skipped_logged[1],
            lag,
        )
        self._logged_at, self._skipped_logged = now, (skipped, overload)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self._emit(self.collect())


def _sink_values(c: SinkStats) -> Iterable[tuple[str, int, str | None]]:
    yield "dcim.points_written", c.points_written, None
    yield "dcim.points_dropped", c.points_dropped, None
    yield "dcim.spool_bytes", c.spool_bytes, "B"
    yield "dcim.spool_batches", c.spool_batches, None
    yield "dcim.spool_errors", c.spool_errors, None
    yield "dcim.points_in_memory", c.points_in_memory, None
