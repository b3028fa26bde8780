"""Wires a Config into a running monitor: sinks, collectors, pollers, self-metrics.

A running monitor also takes a new config (`apply`, what a reload does): devices
added, removed or changed start, stop or restart their poller, and every other
device keeps its poller and so its schedule; the alert engine keeps its state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from dcim import heap
from dcim.admission import PollGate
from dcim.backoff import Backoff
from dcim.bus import Bus, Subscription
from dcim.collector import Collectors, StreamCollector
from dcim.inventory import Config, PlacedDevice, iter_devices
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


class SinkRunner(Protocol):
    """What the monitor needs of a sink worker."""

    async def run(self) -> None: ...

    async def aclose(self) -> None: ...

    @property
    def stats(self) -> SinkStats: ...

    async def safe_through(self, position: int) -> None: ...


@dataclass(slots=True)
class ConfigChange:
    """What applying a new config did."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    streams_restarted: bool = False
    #: Settings that changed but take effect only at the next start.
    needs_restart: list[str] = field(default_factory=list)

    def describe(self) -> str:
        parts = [
            f"{len(self.added)} device(s) added",
            f"{len(self.removed)} removed",
            f"{len(self.changed)} changed",
        ]
        if self.streams_restarted:
            parts.append("push receivers (MQTT, traps) restarted")
        if self.needs_restart:
            parts.append("restart needed for: " + ", ".join(self.needs_restart))
        return "; ".join(parts)


class Monitor:
    """A configured monitor: sinks and pollers are built here, started by `run()`."""

    def __init__(
        self,
        config: Config,
        *,
        collectors: Collectors,
        alerts: AlertEngine | None = None,
        board_note: str = "",
    ) -> None:
        """`collectors` builds the pollers' collectors and the push receivers (the
        application passes `collectors.registry.CollectorFactory`); the monitor closes
        it when it stops. `alerts`: an engine built by the caller (the demo runs one on
        simulated time); by default one is built from `config.alerts`. `board_note`: a
        line the board shows."""
        self.config = config
        self.bus = Bus()
        self.sinks: dict[str, SinkRunner] = {}
        #: Polled devices' pollers (the list object is kept: self-metrics holds it).
        self.pollers: list[DevicePoller] = []
        self._polled: dict[str, tuple[PlacedDevice, DevicePoller]] = {}
        self._poll_tasks: dict[str, asyncio.Task[None]] = {}
        self._started = False
        #: Admits polls while the event loop keeps up (overload: polls skipped, counted).
        self.poll_gate = PollGate()
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
        self._collectors = collectors
        self.streams: list[StreamCollector] = collectors.streams(config)
        self._stream_tasks: list[asyncio.Task[None]] = []
        self.alerts: AlertEngine | None = alerts
        if self.alerts is None and config.alerts is not None:
            from dcim.alerts.service import AlertEngine

            self.alerts = AlertEngine.from_config(config)
        if self.alerts is not None:
            self._alert_feed = self.subscribe("alerts")
            feed = self._alert_feed.queue
            # pages before readings: an alert engine falling behind slows polling down
            self.poll_gate = PollGate(backlog=lambda: feed.qsize() / max(1, feed.maxsize))
        self.board: Board | None = None
        if config.web is not None:
            from dcim.web.server import Board

            self.board = Board(
                config, self.subscribe("board").queue, alerts=self.alerts, note=board_note
            )
        for placed in iter_devices(config):
            if placed.device.mqtt is None:  # MQTT devices push: the stream collector has them
                self._add_poller(placed)
        self.self_metrics: SelfMetrics | None = None
        #: More of the monitor's own health for self-metrics (the service adds coordination).
        self.self_metric_sources: list[Callable[[int], list[Reading]]] = []
        #: Set once every sink, poller, receiver and the alert engine started.
        self.ready = asyncio.Event()
        #: Tasks whose end means the monitor no longer works: name -> task.
        self._core: dict[str, asyncio.Task[None]] = {}
        #: Other tasks (the board): reported, but their end is no reason to restart.
        self._aux: dict[str, asyncio.Task[None]] = {}

    async def all_safe(self) -> None:
        """Return once every reading published so far is safe in every sink."""
        targets = [(sink, feed.put) for sink, feed in self._sink_feeds]
        for sink, position in targets:
            await sink.safe_through(position)

    def subscribe(self, name: str, maxsize: int | None = None) -> Subscription:
        """Add a consumer of every reading (a sink, the alert engine, a live view)."""
        return self.bus.subscribe(name, maxsize or self.config.monitor.queue_size)

    # --- pollers -------------------------------------------------------------------

    def _add_poller(self, placed: PlacedDevice, spread: float | None = None) -> None:
        poller = DevicePoller(
            self._collectors.build(placed),
            interval_s=placed.device.poll_interval_s,
            emit=self.bus.publish,
            spread=self.config.monitor.jitter if spread is None else spread,
            gate=self.poll_gate,
        )
        self._polled[placed.device.id] = (placed, poller)
        self.pollers.append(poller)
        if self._started:
            self._start_poller(placed.device.id, poller)

    def _start_poller(self, device_id: str, poller: DevicePoller) -> None:
        self._poll_tasks[device_id] = asyncio.create_task(poller.run(), name=f"poll {device_id}")

    async def _remove_poller(self, device_id: str) -> None:
        _, poller = self._polled.pop(device_id)
        self.pollers.remove(poller)
        task = self._poll_tasks.pop(device_id, None)
        if task is not None:
            await _cancel([task])  # leaves the collector's context: its socket closes

    # --- running -------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Poll and write until `stop` is set; then flush (or spool) everything held."""
        counters: dict[str, Callable[[], SinkStats]] = {
            name: _stats_of(sink) for name, sink in self.sinks.items()
        }
        self_metrics = self.self_metrics = SelfMetrics(
            self.bus,
            self.pollers,
            counters,
            self.bus.publish,
            self.config.monitor.self_metrics_interval_s,
            alert_store_errors=self._alert_store_errors,
            extra=self.self_metric_sources,
            gate=self.poll_gate,
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
        self._core = {task.get_name(): task for task in sink_tasks}
        self._started = True
        self.poll_gate.start()
        for device_id, (_, poller) in self._polled.items():
            self._start_poller(device_id, poller)
        self._start_streams()
        self._core["self-metrics"] = asyncio.create_task(self_metrics.run(), name="self-metrics")
        if self.alerts is not None:
            self._core["alerts"] = asyncio.create_task(
                self.alerts.run(self._alert_feed.queue, self.bus.publish), name="alerts"
            )
        if self.board is not None:  # not core: the board stopping does not stop monitoring
            self._aux["board"] = asyncio.create_task(self.board.run(), name="board")
        # start-up objects leave the GC's full passes now, and again once every device
        # was polled (its session, plan and caches are made then)
        first_round = max((p.interval_s for p in self.pollers), default=0.0) * 1.2
        heap_task = asyncio.create_task(_settle_after(first_round), name="heap")
        try:
            await asyncio.sleep(0)  # every task runs up to its first wait: started
            heap.settle()
            heap.building()
            self.ready.set()
            await stop.wait()
        finally:
            self.ready.clear()
            if self.board is not None:
                await self.board.aclose()
            await _cancel(
                [
                    *self._poll_tasks.values(),
                    *self._stream_tasks,
                    *(t for n, t in self._core.items() if not n.startswith("sink ")),
                    *self._aux.values(),
                    heap_task,
                ]
            )
            await self.poll_gate.aclose()
            heap.thaw()
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
            self._collectors.close()

    def _alert_store_errors(self) -> int | None:
        alerts = self.alerts
        return None if alerts is None else alerts.store_errors + alerts.dispatcher.store_errors

    def _start_streams(self) -> None:
        for stream in self.streams:
            # a push collector that acknowledges its source (MQTT QoS 1) does so only once
            # every sink has what it emitted: written, or in the on-disk spool
            set_durability = getattr(stream, "set_durability", None)
            if set_durability is not None:
                set_durability(self.all_safe)
        self._stream_tasks = [
            asyncio.create_task(_run_stream(stream, self.bus.publish), name=type(stream).__name__)
            for stream in self.streams
        ]

    def dead_parts(self) -> list[str]:
        """Parts of the pipeline that stopped (empty while healthy): a sink, a poller,
        self-metrics, the alert engine or one of its channels."""
        dead = [name for name, task in self._core.items() if task.done()]
        dead += [f"poll {d}" for d, task in self._poll_tasks.items() if task.done()]
        if self.alerts is not None and not self.alerts.dispatcher.running:
            dead.append("alert channels")
        return dead

    def streams_alive(self) -> dict[str, bool]:
        """Push receivers (MQTT, traps) and the board by name: still running?"""
        tasks = [*self._stream_tasks, *self._aux.values()]
        return {task.get_name(): not task.done() for task in tasks}

    # --- reload --------------------------------------------------------------------

    async def apply(self, config: Config, *, spread: float | None = None) -> ConfigChange:
        """Take a new (validated) config while running; see the module doc. `spread`:
        how far (a fraction of their interval) the first polls of added devices are spread
        (default `monitor.jitter`; a room taken over from a dead monitor is overdue)."""
        heap.thaw()  # what the new config replaces can then be collected
        try:
            return await self._apply(config, spread)
        finally:
            heap.settle()

    async def _apply(self, config: Config, spread: float | None) -> ConfigChange:
        change = ConfigChange(needs_restart=_restart_only_changes(self.config, config))
        wanted = {p.device.id: p for p in iter_devices(config) if p.device.mqtt is None}
        for device_id, (placed, _) in list(self._polled.items()):
            new = wanted.get(device_id)
            if new is None:
                change.removed.append(device_id)
                await self._remove_poller(device_id)
            elif new != placed:
                change.changed.append(device_id)
                await self._remove_poller(device_id)
        for device_id, placed in wanted.items():
            if device_id not in self._polled:
                if device_id not in change.changed:
                    change.added.append(device_id)
                self._add_poller(placed, spread)
        old_push = _push_inputs(self.config)
        new_push = _push_inputs(config)
        if old_push != new_push:
            pushed_old = {d.device.id for d in old_push[2] if d.device.mqtt is not None}
            pushed_new = {d.device.id: d for d in new_push[2] if d.device.mqtt is not None}
            change.added += [d for d in pushed_new if d not in pushed_old]
            change.removed += [d for d in pushed_old if d not in pushed_new]
            old_by_id = {d.device.id: d for d in old_push[2]}
            change.changed += [
                d for d, p in pushed_new.items() if d in pushed_old and old_by_id[d] != p
            ]
            await self._restart_streams(config)
            change.streams_restarted = True
        if self.alerts is not None:
            change.needs_restart += await self.alerts.reconfigure(config)
        elif config.alerts is not None:
            change.needs_restart.append("alerts (added)")
        if self.board is not None and (change.added or change.removed or change.changed):
            self.board.devices_changed(config)
        # what only a restart applies stays as running, so the next reload compares right
        self.config = config.model_copy(
            update={name: getattr(self.config, name) for name in _RESTART_ONLY}
        )
        return change

    async def _restart_streams(self, config: Config) -> None:
        await _cancel(self._stream_tasks)
        self.streams = self._collectors.streams(config)
        if self._started:
            self._start_streams()


def _push_inputs(config: Config) -> tuple[Any, Any, list[PlacedDevice]]:
    """What the push receivers are built from: broker, trap receiver, every device
    (the trap receiver knows devices by address)."""
    return (config.mqtt, config.traps, list(iter_devices(config)))


#: Top-level sections a running monitor keeps until it restarts.
_RESTART_ONLY = ("monitor", "sinks", "web")


async def _settle_after(delay_s: float) -> None:
    await asyncio.sleep(delay_s)
    heap.settle()


def _restart_only_changes(old: Config, new: Config) -> list[str]:
    return [name for name in _RESTART_ONLY if getattr(old, name) != getattr(new, name)]


async def _run_stream(stream: StreamCollector, emit: Callable[[Sequence[Reading]], None]) -> None:
    """Run a push collector; if it fails, say so and start it again (pollers run on)."""
    backoff = Backoff(*STREAM_RESTART_S)
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
                backoff.delay,
            )
        else:
            log.error(
                "%s returned; starting it again in %.0f s", type(stream).__name__, backoff.delay
            )
        await asyncio.sleep(backoff.next_delay())


def _dropped_of(subscription: Subscription) -> Callable[[], int]:
    return lambda: subscription.dropped


def _stats_of(sink: SinkRunner) -> Callable[[], SinkStats]:
    return lambda: sink.stats


async def _cancel(tasks: Sequence[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
