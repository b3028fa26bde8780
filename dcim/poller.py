"""DevicePoller: polls one device on its interval, reports its health, logs state changes.

A device's failure belongs to that device: it becomes `device.up=0` and one log
line when the state changes (not every poll), and never delays other devices,
since every device has its own poller task.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import random
import time

from dcim.admission import PollGate
from dcim.collector import Collector, Emit
from dcim.errors import CollectError
from dcim.reading import Reading, now_ns

log = logging.getLogger(__name__)


class DeviceState(enum.StrEnum):
    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


class DevicePoller:
    """Runs one collector every `interval_s` seconds, on a fixed grid.

    Start times are spread over `spread` x interval so thousands of devices
    do not fire at once; later polls stay on the grid (no drift). A poll that
    overruns skips the slots it missed rather than bunching up. With a `gate`
    (shared by every poller of the monitor) a poll starts only when the gate
    admits it; one still waiting when its next slot comes is skipped and counted
    (`skipped`), never piled up behind the others.
    """

    def __init__(
        self,
        collector: Collector,
        *,
        interval_s: float,
        emit: Emit,
        spread: float = 1.0,
        poll_timeout_s: float | None = None,
        rng: random.Random | None = None,
        gate: PollGate | None = None,
    ) -> None:
        self.collector = collector
        self.interval_s = interval_s
        # guard against a collector that hangs; protocol timeouts normally fire first
        self.poll_timeout_s = poll_timeout_s or max(interval_s, 30.0)
        self._emit = emit
        self._gate = gate
        self._offset = (rng or random).uniform(0, interval_s * spread)
        self.state = DeviceState.UNKNOWN
        self.last_error: CollectError | None = None
        self.errors = 0
        self.polls = 0
        #: Slots without a poll: missed while a poll overran, or not admitted by the gate.
        self.skipped = 0
        #: Of `skipped`, those the gate did not admit in time (the monitor was overloaded).
        self.skipped_overload = 0
        self.max_lag_s = 0.0
        self.last_duration_s = 0.0
        #: Readings of the last poll that answered (0 after a failed one).
        self.last_readings = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + self._offset
        async with contextlib.AsyncExitStack() as stack:
            opened = False
            while True:
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if not opened:
                    opened = await self._open(stack)
                if opened:
                    await self._poll_when_admitted(due)
                due += self.interval_s
                behind = loop.time() - due
                if behind > 0:
                    missed = math.ceil(behind / self.interval_s)
                    self.skipped += missed
                    due += missed * self.interval_s

    async def _poll_when_admitted(self, due: float) -> None:
        loop = asyncio.get_running_loop()
        gate = self._gate
        admitted = gate is None or await gate.admit(due + self.interval_s)
        self.max_lag_s = max(self.max_lag_s, loop.time() - due)
        if not admitted:
            self.skipped += 1
            self.skipped_overload += 1
            return
        try:
            await self.poll_once()
        finally:
            if gate is not None:
                gate.release()

    async def _open(self, stack: contextlib.AsyncExitStack) -> bool:
        try:
            await stack.enter_async_context(self.collector)
        except CollectError as exc:
            self._failed(exc, 0.0, now_ns())
            return False
        except Exception as exc:
            error = CollectError(self.collector.device_id, f"cannot open: {exc}")
            self._failed(error, 0.0, now_ns())
            return False
        return True

    async def poll_once(self) -> None:
        """Poll now, emit readings and health; never raises for device trouble."""
        started = time.perf_counter()
        ts = now_ns()
        self.polls += 1
        try:
            async with asyncio.timeout(self.poll_timeout_s):
                readings = await self.collector.poll()
        except CollectError as exc:
            self._failed(exc, time.perf_counter() - started, ts)
            return
        except TimeoutError:
            error = CollectError(
                self.collector.device_id, f"poll took longer than {self.poll_timeout_s:g} s"
            )
            error.error_class = "timeout"
            self._failed(error, time.perf_counter() - started, ts)
            return
        except Exception as exc:  # a bug in decoding must not stop the other devices
            log.exception("device %s: unexpected error while polling", self.collector.device_id)
            error = CollectError(self.collector.device_id, f"internal error: {exc!r}")
            error.error_class = "internal"
            self._failed(error, time.perf_counter() - started, ts)
            return
        duration = time.perf_counter() - started
        self.last_duration_s = duration
        if self.state is DeviceState.DOWN:
            log.warning("device %s: recovered (answering again)", self.collector.device_id)
        self.state = DeviceState.UP
        self.last_error = None
        self.last_readings = len(readings)
        readings.extend(self._health(up=True, duration=duration, count=len(readings), ts=ts))
        self._emit(readings)

    def _failed(self, error: CollectError, duration: float, ts: int) -> None:
        self.errors += 1
        self.last_duration_s = duration
        changed = self.state is not DeviceState.DOWN or (
            self.last_error is not None and self.last_error.error_class != error.error_class
        )
        if changed:
            log.warning(
                "device %s: down (%s): %s", error.device_id, error.error_class, error.detail
            )
        self.state = DeviceState.DOWN
        self.last_error = error
        self.last_readings = 0
        self._emit(self._health(up=False, duration=duration, count=0, ts=ts))

    def _health(self, *, up: bool, duration: float, count: int, ts: int) -> list[Reading]:
        device, tags = self.collector.device_id, self.collector.tags
        error_class = "none" if up or self.last_error is None else self.last_error.error_class
        health = [
            Reading(device, "device.up", up, None, ts, tags),
            Reading(device, "device.poll_duration_s", round(duration, 6), "s", ts, tags),
            Reading(device, "device.poll_errors", self.errors, None, ts, tags),
            Reading(device, "device.error_class", error_class, None, ts, tags),
            Reading(device, "device.readings", count, None, ts, tags),
        ]
        if up:
            # partial trouble of a poll that succeeded, where the collector counts it
            for metric, attribute in _QUALITY:
                value = getattr(self.collector, attribute, None)
                if isinstance(value, int):
                    health.append(Reading(device, metric, value, None, ts, tags))
        return health


#: Per-poll counters a collector may expose: (metric, attribute).
_QUALITY = (
    ("device.values_missing", "values_missing"),
    ("device.values_invalid", "values_invalid"),
)
