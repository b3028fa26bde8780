"""Wires a Config into a running monitor: sinks, collectors, pollers, self-metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from dcim.bus import Bus, Subscription
from dcim.inventory import Config, FileSinkConfig, InfluxSinkConfig, iter_devices
from dcim.poller import DevicePoller
from dcim.selfmetrics import SelfMetrics, SinkCounters

log = logging.getLogger(__name__)


class SinkRunner(Protocol):
    """What the monitor needs of a sink worker."""

    async def run(self) -> None: ...

    async def aclose(self) -> None: ...

    def counters(self) -> SinkCounters: ...


@dataclass
class Monitor:
    """A configured monitor, ready to run until `stop` is set."""

    config: Config
    bus: Bus = field(default_factory=Bus)
    pollers: list[DevicePoller] = field(default_factory=list)
    sinks: dict[str, SinkRunner] = field(default_factory=dict)

    def subscribe(self, name: str, maxsize: int | None = None) -> Subscription:
        """Add a consumer of every reading (a sink, the alert engine, a live view)."""
        return self.bus.subscribe(name, maxsize or self.config.monitor.queue_size)

    async def run(self, stop: asyncio.Event) -> None:
        from collectors.registry import CollectorFactory

        monitor = self.config.monitor
        for sink_config in self.config.sinks:
            subscription = self.subscribe(f"sink:{sink_config.name}")
            self.sinks[sink_config.name] = build_sink(sink_config, subscription, self.config)
        factory = CollectorFactory(max_in_flight=monitor.max_in_flight)
        for placed in iter_devices(self.config):
            collector = factory.build(placed)
            self.pollers.append(
                DevicePoller(
                    collector,
                    interval_s=placed.device.poll_interval_s,
                    emit=self.bus.publish,
                    spread=monitor.jitter,
                )
            )
        counters: dict[str, Callable[[], SinkCounters]] = {
            name: sink.counters for name, sink in self.sinks.items()
        }
        self_metrics = SelfMetrics(
            self.bus, self.pollers, counters, self.bus.publish, monitor.self_metrics_interval_s
        )
        log.info(
            "monitoring %d devices, writing to %s",
            len(self.pollers),
            ", ".join(self.sinks) or "no sink",
        )
        sink_tasks = [
            asyncio.create_task(sink.run(), name=f"sink {n}") for n, sink in self.sinks.items()
        ]
        poll_tasks = [
            asyncio.create_task(p.run(), name=f"poll {p.collector.device_id}") for p in self.pollers
        ]
        poll_tasks.append(asyncio.create_task(self_metrics.run(), name="self-metrics"))
        try:
            await stop.wait()
        finally:
            await _cancel(poll_tasks)
            # last health snapshot, then flush every sink (or spool what cannot be written)
            self.bus.publish(self_metrics.collect())
            for name, sink in self.sinks.items():
                try:
                    await sink.aclose()
                except Exception:
                    log.exception("sink %s: error while flushing at shutdown", name)
            await _cancel(sink_tasks)
            factory.close()


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def build_sink(
    sink_config: InfluxSinkConfig | FileSinkConfig, subscription: Subscription, config: Config
) -> SinkRunner:
    """A sink worker for one configured sink, fed by its bus subscription."""
    from dcim.sinks.factory import build_sink_worker

    return build_sink_worker(sink_config, subscription.queue, config.monitor.state_dir)
