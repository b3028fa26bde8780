"""The `fast` phase: the monitor's collectors and pollers alone, timed (a child process)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from typing import Any

from dcim.bench.fleet import fleet_config
from dcim.bench.measure import (
    PollStats,
    TimedCollector,
    cpu_self,
    percentile,
    rss_of,
)
from dcim.reading import Reading


async def poll_phase(spec: dict[str, Any]) -> dict[str, Any]:
    from collectors.registry import CollectorFactory
    from dcim.admission import PollGate
    from dcim.inventory import Config, iter_devices
    from dcim.poller import DevicePoller

    config = Config.model_validate(
        fleet_config(
            spec["devices"],
            spec["ports"],
            spec["interval"],
            spec["max_repetitions"],
            spec.get("snmp_version", "v2c"),
        )
    )
    stats = PollStats()
    loop = asyncio.get_running_loop()

    def emit(readings: Sequence[Reading]) -> None:
        if stats.measuring:
            stats.readings += len(readings)

    class LagPoller(DevicePoller):
        """Tells its timed collector when it laid its grid, for each poll's start lag."""

        timed: TimedCollector

        async def run(self) -> None:
            self.timed.grid_start = loop.time()  # DevicePoller.run reads the same clock first
            await super().run()

    rss_start = rss_of()
    factory = CollectorFactory(max_in_flight=config.monitor.max_in_flight)
    gate = PollGate()  # as in the monitor: polls admitted while the loop keeps up
    pollers: list[LagPoller] = []
    for placed in iter_devices(config):
        interval = placed.device.poll_interval_s
        timed = TimedCollector(factory.build(placed), interval, 0.0, stats)
        poller = LagPoller(timed, interval_s=interval, emit=emit, spread=1.0, gate=gate)
        timed.offset = poller._offset
        poller.timed = timed
        pollers.append(poller)
    gate.start()
    tasks = [asyncio.create_task(p.run()) for p in pollers]
    await asyncio.sleep(spec["interval"])  # warm-up: every device polled once
    stats.measuring = True
    cpu0, wall0 = cpu_self(), time.perf_counter()
    await asyncio.sleep(spec["duration"])
    cpu, wall = cpu_self() - cpu0, time.perf_counter() - wall0
    stats.measuring = False
    rss = rss_of()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await gate.aclose()
    factory.close()
    polls = stats.ok
    return {
        "mode": spec["mode"],
        "devices": len(pollers),
        "interval_s": spec["interval"],
        "window_s": round(wall, 2),
        "polls": polls,
        "failed_polls": stats.failed,
        "errors": stats.errors,
        "expected_polls": round(len(pollers) * wall / spec["interval"]),
        "polls_per_s": polls / wall,
        "cpu_s": round(cpu, 3),
        "cpu_share_of_one_core": cpu / wall,
        "polls_per_cpu_s": polls / cpu if cpu else None,
        "readings_per_s": stats.readings / wall,
        "lag_p50_s": percentile(stats.lags, 0.5),
        "lag_p99_s": percentile(stats.lags, 0.99),
        "lag_max_s": max(stats.lags, default=None),
        "poll_duration_p50_s": percentile(stats.durations, 0.5),
        "poll_duration_p99_s": percentile(stats.durations, 0.99),
        "rss_bytes": rss,
        "rss_before_devices_bytes": rss_start,
        "rss_per_device_bytes": (rss - rss_start) / max(len(pollers), 1),
        "skipped_slots": sum(p.skipped for p in pollers),
        "cpus_allowed": sorted(os.sched_getaffinity(0)),
        "skipped_overload": gate.skipped,
        "poll_limit_at_end": gate.limit,
    }
