"""What the bench measures with: CPU and memory of processes, percentiles, timed polls."""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dcim.collector import Collector
from dcim.errors import CollectError
from dcim.reading import Reading

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_of(pid: int | str = "self") -> int:
    """Resident set size in bytes, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class GcTimer:
    """Time spent in the garbage collector (by generation) between start and stop."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.collections = [0, 0, 0]
        self._started = 0.0
        self.tracked = self.frozen = 0

    def start(self) -> None:
        gc.callbacks.append(self._callback)

    def stop(self) -> None:
        gc.callbacks.remove(self._callback)
        self.tracked, self.frozen = len(gc.get_objects()), gc.get_freeze_count()

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = info.get("generation", 0)
        self.seconds[generation] += time.perf_counter() - self._started
        self.collections[generation] += 1

    def figures(self) -> dict[str, Any]:
        return {
            # what a full pass walks (tracked objects not frozen) and what it skips
            "gc_tracked_objects": self.tracked,
            "gc_frozen_objects": self.frozen,
            "gc_s": round(sum(self.seconds), 3),
            "gc_s_by_generation": [round(x, 3) for x in self.seconds],
            "gc_collections_by_generation": list(self.collections),
        }


class PollStats:
    """Per-poll figures of the measured window."""

    def __init__(self) -> None:
        self.measuring = False
        self.ok = 0
        self.failed = 0
        self.readings = 0
        self.lags: list[float] = []
        self.durations: list[float] = []
        self.errors: dict[str, int] = {}


class TimedCollector:
    """A poller's collector, timed: start lag against the poller's grid, outcome, duration."""

    def __init__(self, inner: Collector, interval: float, offset: float, window: PollStats) -> None:
        self.inner = inner
        self.device_id = inner.device_id
        self.tags = inner.tags
        self._interval = interval
        self.offset = offset
        self._window = window
        #: loop time at which the poller laid its grid (set when its task starts)
        self.grid_start = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # per-poll quality counters the poller reads

    async def __aenter__(self) -> TimedCollector:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.inner.__aexit__(*exc)

    async def poll(self) -> list[Reading]:
        loop = asyncio.get_running_loop()
        now = loop.time()
        first_due = self.grid_start + self.offset
        lag = now - (first_due + round((now - first_due) / self._interval) * self._interval)
        window = self._window
        # counted when started inside the window (and ended before it closed): polls
        # queued before it would otherwise count past the due rate
        counted = window.measuring
        try:
            readings = await self.inner.poll()
        except Exception as exc:
            if counted and window.measuring:
                window.failed += 1
                name = exc.error_class if isinstance(exc, CollectError) else type(exc).__name__
                window.errors[name] = window.errors.get(name, 0) + 1
            raise
        if counted and window.measuring:
            window.ok += 1
            window.readings += len(readings)
            window.lags.append(lag)
            window.durations.append(loop.time() - now)
        return readings
