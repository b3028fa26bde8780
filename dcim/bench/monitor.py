"""The "monitor" phase of `dcim bench snmp`, child side: the real `Monitor` on the fleet.

The child builds the monitor from a config (`monitor_config`): every fleet device
polled every interval, the sink the parent started, the trap receiver on a free
port, the shipped rule packs plus the UPS trap rules and the bench's MQTT rule,
a webhook channel to the parent, and rack env sensors on the parent's broker.

Protocol on stdin/stdout (one JSON object per line): the parent writes the spec;
the child warms up for one interval and answers `{"ready": ...}` with its trap
port; the parent sends events and then writes `stop`; the child stops the
monitor (sinks flush) and answers with its figures, including the moment of each
alert decision (CLOCK_MONOTONIC, which every process on the host shares).

The decision is seen where the engine publishes it: the `alert.event` readings it
emits on the bus right after storing the transition. Only the alert engine,
stream collectors and self-metrics publish through the observed `publish`;
pollers keep the bus's own, so polling pays nothing for the observation.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dcim.bench.fleet import fleet_config
from dcim.bench.measure import GcTimer, PollStats, TimedCollector, cpu_self, percentile, rss_of
from dcim.reading import Reading

#: Rules whose decisions the bench times (the UPS trap rule and the bench's MQTT rule).
TRAP_RULE = "ups.trap_on_battery"
MQTT_RULE = "bench.inlet_overheat"
BENCH_RULES = frozenset({TRAP_RULE, MQTT_RULE})
#: Inlet temperature that fires the bench's MQTT rule, and a normal one that clears it.
HOT_C, NORMAL_C = 45.0, 22.0

# The shipped ASHRAE rules wait 120 s (for_s) by design before firing; the bench times
# the engine, not that wait, so its MQTT rule fires at once.
_BENCH_RULE_FILE = f"""\
rules:
  - id: {MQTT_RULE}
    name: Inlet overheating (bench)
    kind: threshold
    metric: sensor.temp_c
    scope: {{tags: {{position: inlet}}}}
    source: "dcim bench: fires at once so the bench times the engine"
    levels: {{high_critical: 40}}
    hysteresis: 0.5
"""


def env_sensor_racks(
    config: dict[str, Any], count: int, interval_s: float
) -> list[tuple[str, str, str]]:
    """Put `count` MQTT rack env sensors into the first racks: (device id, topic prefix)."""
    placed: list[tuple[str, str, str]] = []
    site = config["sites"][0]
    for room in site["rooms"]:
        for row in room["rows"]:
            for rack in row["racks"]:
                if len(placed) == count:
                    return placed
                device_id = f"env-{len(placed):05d}"
                rack["devices"].append(
                    {
                        "id": device_id,
                        "kind": "sensor",
                        "profile": "rack-env-json",
                        "mqtt": {"stale_after_s": 3600},
                        # the alert engine's start-up grace is the longest interval
                        "poll_interval_s": interval_s,
                    }
                )
                placed.append((device_id, f"{site['id']}/{room['id']}/{rack['id']}", rack["id"]))
    return placed


def monitor_config(spec: dict[str, Any]) -> dict[str, Any]:
    """The monitor's whole config for the bench (see the module doc)."""
    from dcim.alerts.config import DEFAULT_PACKS

    work = Path(spec["work"])
    config = fleet_config(
        spec["devices"],
        spec["ports"],
        spec["interval"],
        spec["max_repetitions"],
        spec.get("snmp_version", "v2c"),
    )
    rule_file = work / "bench-rules.yaml"
    rule_file.write_text(_BENCH_RULE_FILE)
    config["monitor"].update(state_dir=str(work / "state"), self_metrics_interval_s=10)
    config["sinks"] = [spec["sink"]]
    config["traps"] = {"host": "127.0.0.1", "port": 0, "communities": spec["trap_communities"]}
    config["alerts"] = {
        "packs": [*DEFAULT_PACKS, "ups-traps"],
        "rule_files": [str(rule_file)],
        "channels": [{"type": "webhook", "name": "bench", "url": spec["webhook_url"]}],
        "flap": {"count": spec["flap_count"]},
    }
    if spec.get("sse_clients"):
        # the board, its overview watched by that many browsers (the parent's SSE clients)
        config["web"] = {"host": "127.0.0.1", "port": 0, "anonymous_read": True}
    if spec.get("mqtt_url"):
        env_sensor_racks(config, spec["mqtt_sensors"], spec["interval"])
        config["mqtt"] = {
            "url": spec["mqtt_url"],
            "client_id": f"dcim-bench-{spec['mqtt_port']}",
            "session_expiry_s": 0,
        }
    return config


async def _bound(receiver: Any, started: float, timeout_s: float = 300.0) -> float:
    """Seconds from the monitor's start until the trap receiver listens (it first
    resolves every device's address, one after the other)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            receiver.address  # noqa: B018 - raises until bound
        except RuntimeError:
            if loop.time() - started > timeout_s:
                raise
            await asyncio.sleep(0.1)
            continue
        return round(loop.time() - started, 2)


async def _stdin_line() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def monitor_phase(spec: dict[str, Any]) -> dict[str, Any]:
    from collectors.snmp.traps import TrapReceiver
    from dcim.inventory import Config
    from dcim.runner import Monitor

    config = Config.model_validate(monitor_config(spec))
    rss_start = rss_of()
    from collectors.registry import CollectorFactory

    monitor = Monitor(config, collectors=CollectorFactory.for_config(config))
    window = PollStats()
    loop = asyncio.get_running_loop()

    timed: list[TimedCollector] = []
    for poller in monitor.pollers:
        collector = TimedCollector(poller.collector, poller.interval_s, poller._offset, window)
        poller.collector = collector
        timed.append(collector)
        run = poller.run

        async def laid_grid(run: Any = run, collector: TimedCollector = collector) -> None:
            collector.grid_start = loop.time()  # DevicePoller.run reads this clock first
            await run()

        setattr(poller, "run", laid_grid)  # noqa: B010 - an instance override, bench only

    decisions: list[tuple[str, str, str, float]] = []
    publish = monitor.bus.publish

    def observed(readings: Sequence[Reading]) -> None:
        if readings and readings[0].metric == "alert.event":  # the engine's own batches
            at = time.monotonic()
            for r in readings:
                rule = r.tags.get("rule", "")
                if rule in BENCH_RULES and r.value in ("firing", "resolved"):
                    decisions.append((r.device_id, rule, str(r.value), at))
        publish(readings)

    setattr(monitor.bus, "publish", observed)  # noqa: B010 - see the module doc
    (sink_name,) = monitor.sinks
    sink = monitor.sinks[sink_name]

    stop = asyncio.Event()
    receivers = [s for s in monitor.streams if isinstance(s, TrapReceiver)]
    running = asyncio.create_task(monitor.run(stop))
    bound = asyncio.create_task(_bound(receivers[0], loop.time()))
    await asyncio.sleep(spec["warmup"])
    trap_ready_s = await bound  # events start only once traps can be received
    written0, bus0 = sink.stats.points_written, monitor.bus.published
    window.measuring = True
    gc_timer = GcTimer()
    gc_timer.start()
    cpu0, wall0 = cpu_self(), time.perf_counter()
    board_port = monitor.board.port if monitor.board is not None else None
    print(
        json.dumps({"ready": True, "trap_port": receivers[0].port, "board_port": board_port}),
        flush=True,
    )
    if (await _stdin_line()).strip() != "stop":
        raise SystemExit("bench monitor phase: expected 'stop' from the parent")
    cpu, wall = cpu_self() - cpu0, time.perf_counter() - wall0
    gc_timer.stop()
    window.measuring = False
    written, published = sink.stats.points_written - written0, monitor.bus.published - bus0
    rss = rss_of()
    board: dict[str, Any] = {}
    if monitor.board is not None:
        hub = monitor.board.hub.stats
        held, full = monitor.board.live.memory()
        board = {
            "board_renders": hub.renders,
            "board_messages": hub.messages,
            "board_dropped_clients": hub.dropped_clients,
            "board_history_bytes": held,
            "board_history_bytes_when_full": full,
        }
    queue_depths = {s.name: s.queue.qsize() for s in monitor.bus.subscriptions}
    stop.set()
    await running
    stats = sink.stats
    devices = len(monitor.pollers)
    return {
        "mode": "monitor",
        "devices": devices,
        "mqtt_devices": spec["mqtt_sensors"] if spec.get("mqtt_url") else 0,
        "interval_s": spec["interval"],
        "window_s": round(wall, 2),
        "polls": window.ok,
        "failed_polls": window.failed,
        "errors": window.errors,
        "expected_polls": round(devices * wall / spec["interval"]),
        "polls_per_s": window.ok / wall,
        "cpu_s": round(cpu, 3),
        "cpu_share_of_one_core": cpu / wall,
        "polls_per_cpu_s": window.ok / cpu if cpu else None,
        "readings_per_s": window.readings / wall,
        "published_per_s": published / wall,
        "lag_p50_s": percentile(window.lags, 0.5),
        "lag_p99_s": percentile(window.lags, 0.99),
        "lag_max_s": max(window.lags, default=None),
        "poll_duration_p50_s": percentile(window.durations, 0.5),
        "poll_duration_p99_s": percentile(window.durations, 0.99),
        "rss_bytes": rss,
        "rss_before_devices_bytes": rss_start,
        "rss_per_device_bytes": (rss - rss_start) / max(devices, 1),
        "skipped_slots": sum(p.skipped for p in monitor.pollers),
        "cpus_allowed": sorted(os.sched_getaffinity(0)),
        **gc_timer.figures(),
        "skipped_overload": monitor.poll_gate.skipped,
        "poll_limit_at_end": monitor.poll_gate.limit,
        "sink": sink_name,
        "points_written_in_window": written,
        "points_written_per_s": written / wall,
        "points_written_total": stats.points_written,
        "points_dropped_total": stats.points_dropped,
        "spool_batches": stats.spool_batches,
        "spool_bytes": stats.spool_bytes,
        "bus_dropped": {s.name: s.dropped for s in monitor.bus.subscriptions},
        "queue_depth_at_stop": queue_depths,
        "trap_receiver_ready_s": trap_ready_s,
        "traps_received": sum(r.received for r in receivers),
        "trap_errors": {f"{d}:{why}": n for r in receivers for (d, why), n in r.errors.items()},
        "decisions": decisions,
        **board,
    }
