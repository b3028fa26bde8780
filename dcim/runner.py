"""Wires a Config into a running monitor: sinks, collectors, pollers, self-metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from dcim.bus import Bus, Subscription
from dcim.collector import StreamCollector
from dcim.errors import DcimError
from dcim.inventory import Config, iter_devices
from dcim.poller import DevicePoller
from dcim.reading import Reading
from dcim.selfmetrics import SelfMetrics
from dcim.sinks.factory import build_sink_worker
from dcim.sinks.worker import SinkStats
from dcim.statedir import prepare_state_dir

if TYPE_CHECKING:
    from dcim.alerts.service import AlertEngine
    from dcim.web.server import Board

log = logging.getLogger(__name__)

#: First and longest pause before a failed stream collector (MQTT, traps) is started again.
STREAM_RESTART_S = (1.0, 60.0)


class MonitorFailedError(DcimError):
    """A part of the monitor that must run for its whole life stopped on an error."""


class SinkRunner(Protocol):
    """What the monitor needs of a sink worker."""

    async def run(self) -> None: ...

    async def aclose(self) -> None: ...

    @property
    def stats(self) -> SinkStats: ...

    async def safe_through(self, position: int) -> None: ...


class Monitor:
    """A configured monitor: sinks and pollers are built here, started by `run()`."""

    def __init__(
        self,
        config: Config,
        *,
        alerts: AlertEngine | None = None,
        board_note: str = "",
    ) -> None:
        """`alerts`: an engine built by the caller (the demo runs one on simulated time);
        by default one is built from `config.alerts`. `board_note`: a line the board shows."""
        from collectors.registry import CollectorFactory, build_streams

        self.config = config
        self.bus = Bus()
        self.sinks: dict[str, SinkRunner] = {}
        self.pollers: list[DevicePoller] = []
        monitor = config.monitor
        # one clear line naming the setting, not a traceback from the first user of it
        prepare_state_dir(monitor.state_dir)
        self._sink_feeds: list[tuple[SinkRunner, Subscription]] = []
        for sink_config in config.sinks:
            subscription = self.subscribe(f"sink:{sink_config.name}")
            sink = build_sink_worker(
                sink_config, subscription.queue, monitor.state_dir, _dropped_of(subscription)
            )
            self.sinks[sink_config.name] = sink
            self._sink_feeds.append((sink, subscription))
        self._factory = CollectorFactory(max_in_flight=monitor.max_in_flight)
        self.streams: list[StreamCollector] = build_streams(config)
        for stream in self.streams:
            # a push collector that acknowledges its source (MQTT QoS 1) does so only once
            # every sink has what it emitted: written, or in the on-disk spool
            set_durability = getattr(stream, "set_durability", None)
            if set_durability is not None:
                set_durability(self.all_safe)
        self.alerts: AlertEngine | None = alerts
        if self.alerts is None and config.alerts is not None:
            from dcim.alerts.service import AlertEngine

            self.alerts = AlertEngine.from_config(config)
        if self.alerts is not None:
            self._alert_feed = self.subscribe("alerts")
        self.board: Board | None = None
        if config.web is not None:
            from dcim.web.server import Board

            self.board = Board(
                config, self.subscribe("board").queue, alerts=self.alerts, note=board_note
            )
        for placed in iter_devices(config):
            if placed.device.mqtt is not None:
                continue  # pushed, not polled: the MQTT stream collector handles it
            self.pollers.append(
                DevicePoller(
                    self._factory.build(placed),
                    interval_s=placed.device.poll_interval_s,
                    emit=self.bus.publish,
                    spread=monitor.jitter,
                )
            )

    async def all_safe(self) -> None:
        """Return once every reading published so far is safe in every sink."""
        targets = [(sink, feed.put) for sink, feed in self._sink_feeds]
        for sink, position in targets:
            await sink.safe_through(position)

    def subscribe(self, name: str, maxsize: int | None = None) -> Subscription:
        """Add a consumer of every reading (a sink, the alert engine, a live view)."""
        return self.bus.subscribe(name, maxsize or self.config.monitor.queue_size)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll and write until `stop` is set; then flush (or spool) everything held."""
        counters: dict[str, Callable[[], SinkStats]] = {
            name: _stats_of(sink) for name, sink in self.sinks.items()
        }
        alerts = self.alerts
        self_metrics = SelfMetrics(
            self.bus,
            self.pollers,
            counters,
            self.bus.publish,
            self.config.monitor.self_metrics_interval_s,
            alert_store_errors=(
                (lambda: alerts.store_errors + alerts.dispatcher.store_errors)
                if alerts is not None
                else None
            ),
        )
        log.info(
            "monitoring %d devices, writing to %s",
            len(self.pollers),
            ", ".join(self.sinks) or "no sink",
        )
        if self.board is not None:
            await self.board.start()  # first: a port in use stops the monitor before it polls
        sink_tasks = [
            asyncio.create_task(sink.run(), name=f"sink {n}") for n, sink in self.sinks.items()
        ]
        poll_tasks = [
            asyncio.create_task(p.run(), name=f"poll {p.collector.device_id}") for p in self.pollers
        ]
        poll_tasks.extend(
            asyncio.create_task(_run_stream(stream, self.bus.publish), name=type(stream).__name__)
            for stream in self.streams
        )
        poll_tasks.append(asyncio.create_task(self_metrics.run(), name="self-metrics"))
        if self.alerts is not None:
            poll_tasks.append(
                asyncio.create_task(
                    self.alerts.run(self._alert_feed.queue, self.bus.publish), name="alerts"
                )
            )
        if self.board is not None:
            poll_tasks.append(asyncio.create_task(self.board.run(), name="board"))
        failed: list[str] = []

        def ended(task: asyncio.Task[None]) -> None:
            # these run for the monitor's whole life: one that ends is a fault to say out loud
            if task.cancelled() or stop.is_set():
                return
            error = task.exception()
            what = f"{task.get_name()} stopped: {error!r}" if error else f"{task.get_name()} ended"
            log.error("%s; stopping the monitor", what, exc_info=error)
            failed.append(what)
            stop.set()

        for task in (*sink_tasks, *poll_tasks):
            task.add_done_callback(ended)
        try:
            await stop.wait()
        finally:
            if self.board is not None:
                await self.board.aclose()
            await _cancel(poll_tasks)
            if self.alerts is not None:
                await self.alerts.aclose()
            # last health snapshot, then flush every sink (or spool what cannot be written)
            self.bus.publish(self_metrics.collect())
            for name, sink in self.sinks.items():
                try:
                    await sink.aclose()
                except Exception:
                    log.exception("sink %s: error while flushing at shutdown", name)
            await _cancel(sink_tasks)
            self._factory.close()
        if failed:
            raise MonitorFailedError(failed[0])


async def _run_stream(stream: StreamCollector, emit: Callable[[Sequence[Reading]], None]) -> None:
    """Run a push collector; if it fails, say so and start it again (pollers run on)."""
    delay, longest = STREAM_RESTART_S
    while True:
        try:
            await stream.run(emit)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "%s stopped with an error; starting it again in %.0f s (polled devices "
                "are unaffected)",
                type(stream).__name__,
                delay,
            )
        else:
            log.error("%s returned; starting it again in %.0f s", type(stream).__name__, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, longest)


def _dropped_of(subscription: Subscription) -> Callable[[], int]:
    return lambda: subscription.dropped


def _stats_of(sink: SinkRunner) -> Callable[[], SinkStats]:
    return lambda: sink.stats


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
