"""The monitor's health in the Prometheus exposition format, read from the running parts.

What `dcim_self` carries into InfluxDB, plus readiness and reloads, collected at
scrape time from the live objects (nothing counted twice), so it is there exactly
when InfluxDB is not. Pushed (MQTT) devices have `dcim_device_up` (heard within their
`stale_after_s`) but no poll series: there is no poll to time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dcim import __version__
from dcim.alerts.model import Phase, Severity
from dcim.inventory import iter_devices
from dcim.poller import DeviceState

if TYPE_CHECKING:
    from dcim.coord.view import CoordinationView
    from dcim.runner import Monitor

#: Location tags that become labels of the per-device series.
DEVICE_LABELS = ("device", "kind", "site", "room", "row", "rack")


@dataclass(slots=True)
class ServiceState:
    """What the service around the monitor knows: readiness, reloads, shard peers."""

    shard: str = ""
    ready: bool = False
    reloads: dict[str, int] = field(default_factory=lambda: {"applied": 0, "refused": 0})
    last_reload_ok: bool = True
    last_reload_ok_at: float = field(default_factory=time.time)
    #: Peer shard ("2/3") -> seconds since it was last heard of, and whether it counts as up.
    peers: Callable[[], Mapping[str, tuple[float, bool]]] = dict
    #: Rooms shared through etcd (None when not coordinated).
    coordination: Callable[[], CoordinationView | None] = lambda: None


class MonitorCollector(Collector):
    """Reads a `Monitor` (and the service state) at each scrape."""

    def __init__(self, monitor: Callable[[], Monitor | None], state: ServiceState) -> None:
        self._monitor = monitor
        self._state = state

    def collect(self) -> Iterable[Metric]:
        state = self._state
        info = GaugeMetricFamily("dcim_build_info", "dcim version", labels=["version", "shard"])
        info.add_metric([__version__, state.shard], 1)
        yield info
        yield GaugeMetricFamily(
            "dcim_ready", "1 once every sink and poller started", value=int(state.ready)
        )
        yield from _reloads(state)
        yield from _peers(state)
        yield from _coordination(state)
        monitor = self._monitor()
        if monitor is None:
            return
        yield from _devices(monitor)
        yield from _pipeline(monitor)
        yield from _alerts(monitor)


def _reloads(state: ServiceState) -> Iterable[Metric]:
    reloads = CounterMetricFamily(
        "dcim_config_reloads", "Config reloads by result (applied, refused)", labels=["result"]
    )
    for result, count in state.reloads.items():
        reloads.add_metric([result], count)
    yield reloads
    yield GaugeMetricFamily(
        "dcim_config_last_reload_successful",
        "0 when the last reload was refused (the config before it still runs)",
        value=int(state.last_reload_ok),
    )
    yield GaugeMetricFamily(
        "dcim_config_last_reload_success_timestamp_seconds",
        "When the running config was loaded (start or last applied reload)",
        value=state.last_reload_ok_at,
    )


def _peers(state: ServiceState) -> Iterable[Metric]:
    peers = state.peers()
    if not peers:
        return
    up = GaugeMetricFamily("dcim_shard_peer_up", "1 while a peer shard is heard", labels=["peer"])
    age = GaugeMetricFamily(
        "dcim_shard_peer_heard_seconds_ago", "Seconds since a peer shard was heard", labels=["peer"]
    )
    for peer, (ago, alive) in sorted(peers.items()):
        up.add_metric([peer], int(alive))
        age.add_metric([peer], ago)
    yield up
    yield age


def _coordination(state: ServiceState) -> Iterable[Metric]:
    view = state.coordination()
    if view is None:
        return
    yield GaugeMetricFamily(
        "dcim_coordination_up",
        "1 while etcd answers (0: every room stays where it is)",
        value=int(view.connected),
    )
    yield GaugeMetricFamily(
        "dcim_coordination_lost", "1 while 'coordination lost' is raised", value=int(view.lost)
    )
    yield GaugeMetricFamily(
        "dcim_coordination_members", "Live members as last read", value=len(view.members)
    )
    yield GaugeMetricFamily(
        "dcim_coordination_rooms", "Rooms this member polls", value=len(view.rooms)
    )
    handovers = CounterMetricFamily(
        "dcim_coordination_handovers",
        "Rooms taken over (in) and given away (out), by reason",
        labels=["direction", "reason"],
    )
    for (direction, reason), count in sorted(view.handovers.items()):
        handovers.add_metric([direction, reason], count)
    yield handovers


def _devices(monitor: Monitor) -> Iterable[Metric]:
    up = GaugeMetricFamily("dcim_device_up", "1 if the last poll answered", labels=DEVICE_LABELS)
    duration = GaugeMetricFamily(
        "dcim_device_poll_duration_seconds", "Duration of the last poll", labels=DEVICE_LABELS
    )
    readings = GaugeMetricFamily(
        "dcim_device_readings", "Readings of the last poll", labels=DEVICE_LABELS
    )
    polls = CounterMetricFamily("dcim_device_polls", "Polls started", labels=DEVICE_LABELS)
    errors = CounterMetricFamily("dcim_device_poll_errors", "Failed polls", labels=DEVICE_LABELS)
    skipped = CounterMetricFamily(
        "dcim_device_polls_skipped",
        "Poll slots without a poll (a poll overran, or the overloaded monitor did not admit it)",
        labels=DEVICE_LABELS,
    )
    for poller in monitor.pollers:
        tags = poller.collector.tags
        labels = [tags.get(name, "") for name in DEVICE_LABELS]
        labels[0] = poller.collector.device_id
        polls.add_metric(labels, poller.polls)
        errors.add_metric(labels, poller.errors)
        skipped.add_metric(labels, poller.skipped)
        if poller.state is DeviceState.UNKNOWN:
            continue  # not polled yet: no verdict to report
        up.add_metric(labels, int(poller.state is DeviceState.UP))
        duration.add_metric(labels, poller.last_duration_s)
        readings.add_metric(labels, poller.last_readings)
    pushed = [getattr(stream, "device_up", None) for stream in monitor.streams]
    if any(isinstance(view, dict) and view for view in pushed):
        tags_of = {p.device.id: p.tags for p in iter_devices(monitor.config)}
        for view in pushed:
            for device_id, alive in view.items() if isinstance(view, dict) else ():
                if alive is None or device_id not in tags_of:
                    continue  # not heard yet, or the broker's own entry
                tags = tags_of[device_id]
                labels = [tags.get(name, "") for name in DEVICE_LABELS]
                up.add_metric(labels, int(bool(alive)))
    yield from (up, duration, readings, polls, errors, skipped)


def _pipeline(monitor: Monitor) -> Iterable[Metric]:
    yield CounterMetricFamily(
        "dcim_readings", "Readings published to the consumers", value=monitor.bus.published
    )
    lag = monitor.self_metrics.last_poll_lag_s if monitor.self_metrics is not None else 0.0
    yield GaugeMetricFamily(
        "dcim_poll_lag_seconds",
        "Worst poll start delay over the last self-metrics interval",
        value=lag,
    )
    gate = monitor.poll_gate
    loop_lag = monitor.self_metrics.last_loop_lag_s if monitor.self_metrics is not None else 0.0
    yield GaugeMetricFamily(
        "dcim_event_loop_lag_seconds",
        "Worst lateness of the event loop over the last self-metrics interval",
        value=loop_lag,
    )
    yield GaugeMetricFamily(
        "dcim_poll_limit",
        "Polls admitted at once (adapts to the event loop's lag)",
        value=gate.limit,
    )
    yield GaugeMetricFamily("dcim_polls_in_progress", "Polls running", value=gate.in_progress)
    yield GaugeMetricFamily(
        "dcim_polls_waiting", "Due polls waiting for admission", value=gate.waiting
    )
    yield CounterMetricFamily(
        "dcim_polls_skipped_overload",
        "Polls not admitted before their next slot (the monitor was overloaded)",
        value=gate.skipped,
    )
    depth = GaugeMetricFamily("dcim_queue_depth", "Readings waiting", labels=["consumer"])
    capacity = GaugeMetricFamily("dcim_queue_capacity", "Queue size", labels=["consumer"])
    dropped = CounterMetricFamily(
        "dcim_queue_dropped", "Readings dropped from a full queue", labels=["consumer"]
    )
    for sub in monitor.bus.subscriptions:
        depth.add_metric([sub.name], sub.queue.qsize())
        capacity.add_metric([sub.name], sub.queue.maxsize)
        dropped.add_metric([sub.name], sub.dropped)
    yield from (depth, capacity, dropped)
    written = CounterMetricFamily("dcim_sink_points_written", "Points written", labels=["sink"])
    lost = CounterMetricFamily(
        "dcim_sink_points_dropped", "Points dropped (spool full, rejected)", labels=["sink"]
    )
    spool_bytes = GaugeMetricFamily("dcim_sink_spool_bytes", "Spool size", labels=["sink"])
    spool_batches = GaugeMetricFamily("dcim_sink_spool_batches", "Spooled batches", labels=["sink"])
    for name, sink in monitor.sinks.items():
        stats = sink.stats
        written.add_metric([name], stats.points_written)
        lost.add_metric([name], stats.points_dropped)
        spool_bytes.add_metric([name], stats.spool_bytes)
        spool_batches.add_metric([name], stats.spool_batches)
    yield from (written, lost, spool_bytes, spool_batches)
    parts = GaugeMetricFamily(
        "dcim_component_up", "1 while a part of the monitor runs", labels=["component"]
    )
    dead = set(monitor.dead_parts())
    for name in ("self-metrics", "alerts", *(f"sink {n}" for n in monitor.sinks)):
        if name != "alerts" or monitor.alerts is not None:
            parts.add_metric([name], int(name not in dead))
    for name, alive in monitor.streams_alive().items():
        parts.add_metric([name], int(alive))
    yield parts


def _alerts(monitor: Monitor) -> Iterable[Metric]:
    alerts = monitor.alerts
    if alerts is None:
        return
    counts = {(s.value, p.value): 0 for s in Severity for p in (Phase.PENDING, Phase.FIRING)}
    for incident in alerts.incidents():
        counts[(incident.severity.value, incident.phase.value)] += 1
    open_ = GaugeMetricFamily(
        "dcim_alert_incidents", "Open incidents", labels=["severity", "state"]
    )
    for (severity, phase), count in counts.items():
        open_.add_metric([severity, phase], count)
    yield open_
    dispatcher = alerts.dispatcher
    failing = GaugeMetricFamily(
        "dcim_alert_channel_failing", "1 while a channel fails to deliver", labels=["channel"]
    )
    pending = GaugeMetricFamily(
        "dcim_alert_channel_pending", "Notifications not yet delivered", labels=["channel"]
    )
    delivered = CounterMetricFamily(
        "dcim_alert_notifications_delivered", "Notifications delivered", labels=["channel"]
    )
    for name in dispatcher.notifiers:
        failing.add_metric([name], int(name in dispatcher.failing))
        pending.add_metric([name], dispatcher.pending(name))
        delivered.add_metric([name], alerts.store.delivered_count(name))
    yield from (failing, pending, delivered)


def build_registry(monitor: Callable[[], Monitor | None], state: ServiceState) -> CollectorRegistry:
    """A registry of its own (not the global one): the monitor, the process, the platform."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MonitorCollector(monitor, state))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry
