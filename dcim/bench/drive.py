"""The "monitor" phase of `dcim bench snmp`, parent side.

Starts the sink's server (VictoriaMetrics, or influxd 1.x) and mosquitto, the
webhook receiver, then the monitor in a child process (`dcim.bench.monitor`);
once it has warmed up, sends the events (`dcim.bench.events`) for `--duration`
seconds, waits a little for their notifications, stops the child and puts it
all together: the child's polling figures, points that landed in the server
(counted by the server) against points the sink wrote, and event latencies.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from dcim.bench.events import (
    EventSender,
    Key,
    Target,
    WebhookReceiver,
    by_rule,
    firings_per_target,
    latency_figures,
    plan_events,
)
from dcim.bench.fleet import fleet_config
from dcim.bench.measure import cpu_of, rss_of
from dcim.bench.monitor import MQTT_RULE, TRAP_RULE, env_sensor_racks
from dcim.bench.servers import BenchServer, TimeSeriesStore, broker, store_for
from dcim.bench.sse import SseClients

#: Longest wait for notifications of the last events before the monitor is stopped.
DRAIN_S = 10.0
#: A child that is not ready this long after its warm-up has failed.
START_SLACK_S = 360.0


def _targets(devices: int, mqtt_sensors: int) -> list[Target]:
    """UPS of the fleet (traps) and rack env sensors (MQTT), interleaved."""
    from simulators.fast_agent import fleet

    ups = [Target(m.id, TRAP_RULE, m.community) for m in fleet(devices) if m.kind == "ups"]
    config = fleet_config(devices, [1], 30.0, 1)
    env = [
        Target(d, MQTT_RULE, topic) for d, topic, _ in env_sensor_racks(config, mqtt_sensors, 30.0)
    ]
    out: list[Target] = []
    for n in range(max(len(ups), len(env))):
        out.extend(group[n] for group in (ups, env) if n < len(group))
    return out


async def _settled(store: TimeSeriesStore, expected: int, timeout_s: float = 10.0) -> int:
    """Points landed once the count reached `expected` or stopped growing for a second."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    landed, changed = store.points_landed(), loop.time()
    while landed < expected and loop.time() < deadline and loop.time() - changed < 1.0:
        await asyncio.sleep(0.1)
        now = store.points_landed()
        if now != landed:
            landed, changed = now, loop.time()
    return landed


def run_monitor_phase(args: Any, spec: dict[str, Any], work: Path) -> dict[str, Any]:
    """The whole phase; servers are stopped whatever happens."""
    store = store_for(args.sink, work)
    mqtt = broker(work) if args.mqtt else None
    servers: list[BenchServer] = [s for s in (store, mqtt) if s is not None]
    try:
        for server in servers:
            server.start()
        if mqtt is None and args.mqtt:
            print("mosquitto not installed: MQTT events left out (apt-get install mosquitto)")
        return asyncio.run(_drive(args, spec, work, store, mqtt))
    finally:
        for server in servers:
            server.stop()


async def _drive(
    args: Any,
    spec: dict[str, Any],
    work: Path,
    store: TimeSeriesStore,
    mqtt: BenchServer | None,
) -> dict[str, Any]:
    mqtt_sensors = max(1, args.devices // 50) if mqtt is not None else 0
    targets = _targets(args.devices, mqtt_sensors)
    count = max(2, round(args.event_rate * args.duration))
    events = plan_events(targets, count)
    # flap damping holds a resolve for minutes once a device fired 4 times in 30 min:
    # by design, but then the bench would time the hold; allow the plan's repeats
    flap_count = max(4, firings_per_target(targets, count) + 1)
    receiver = WebhookReceiver()
    await receiver.start()
    child_spec = {
        **spec,
        "mode": "monitor",
        "devices": args.devices,
        "work": str(work),
        # past the monitor's first round of polls and the heap freeze that follows it
        # (dcim.heap, at 1.2 intervals): the window measures the steady state
        "warmup": max(spec["interval"] * 1.3, 2.0),
        "sink": store.sink_config(),
        "webhook_url": receiver.url,
        "trap_communities": sorted({t.address for t in targets if t.rule == TRAP_RULE}),
        "flap_count": flap_count,
        "mqtt_url": f"mqtt://127.0.0.1:{mqtt.port}" if mqtt is not None else None,
        "mqtt_port": mqtt.port if mqtt is not None else None,
        "mqtt_sensors": mqtt_sensors,
        "sse_clients": args.sse_clients,
    }
    log_path = work / "monitor.log"
    with log_path.open("wb") as log:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "dcim.bench.phases",
            "monitor",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            limit=1 << 24,  # the result line carries every decision
        )
    assert child.stdin is not None
    assert child.stdout is not None

    def failed(what: str) -> RuntimeError:
        tail = log_path.read_text(errors="replace")[-3000:]
        return RuntimeError(f"monitor phase: {what}; child log {log_path}:\n{tail}")

    try:
        child.stdin.write(json.dumps(child_spec).encode() + b"\n")
        await child.stdin.drain()
        try:
            async with asyncio.timeout(child_spec["warmup"] + START_SLACK_S):
                line = await child.stdout.readline()
        except TimeoutError:
            raise failed("the monitor did not get ready") from None
        if not line:
            raise failed("the monitor exited before it was ready")
        ready = json.loads(line)
        landed0, store_cpu0 = store.points_landed(), cpu_of(store.pid)
        broker_cpu0 = cpu_of(mqtt.pid) if mqtt is not None else 0.0
        host_port = ("127.0.0.1", mqtt.port) if mqtt is not None else None
        sender = EventSender(ready["trap_port"], host_port)
        browsers = SseClients(ready.get("board_port"), args.sse_clients)
        await browsers.start()
        try:
            await sender.run(events, args.event_rate)
            await receiver.wait_for(sender.sent, DRAIN_S)
        finally:
            sse = await browsers.stop()
        landed1, store_cpu1 = store.points_landed(), cpu_of(store.pid)
        broker_cpu = (cpu_of(mqtt.pid) - broker_cpu0) if mqtt is not None else None
        store_rss = rss_of(store.pid)
        child.stdin.write(b"stop\n")
        await child.stdin.drain()
        line = await child.stdout.readline()
        if not line:
            raise failed("the monitor exited without its result")
        result: dict[str, Any] = json.loads(line)
        await child.wait()
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        await receiver.aclose()
    # the server counts a write a moment after answering it: wait for the last flush
    landed_total = await _settled(store, result["points_written_total"])
    window = result["window_s"]
    decided: dict[Key, list[float]] = {}
    for device, rule, state, at in result.pop("decisions"):
        decided.setdefault((device, rule, state), []).append(at)
    sent = sender.sent
    result.update(
        {
            "sink_server": store.name,
            "points_landed_in_window": landed1 - landed0,
            "points_landed_per_s": (landed1 - landed0) / window,
            "points_landed_total": landed_total,
            "points_lost": result["points_written_total"] - landed_total,
            "sink_server_cpu_share": (store_cpu1 - store_cpu0) / window,
            "sink_server_rss_bytes": store_rss,
            "broker_cpu_share": broker_cpu / window if broker_cpu is not None else None,
            "event_rate_per_s": args.event_rate,
            "events_sent": sum(len(v) for v in sent.values()),
            "events_decided": sum(min(len(v), len(decided.get(k, ()))) for k, v in sent.items()),
            "events_notified": sum(
                min(len(v), len(receiver.arrivals.get(k, ()))) for k, v in sent.items()
            ),
            # which ones, to follow up in the monitor's log and alert store (first 20)
            "events_not_notified": [
                [*k, len(v) - len(receiver.arrivals.get(k, ()))]
                for k, v in sorted(sent.items())
                if len(receiver.arrivals.get(k, ())) < len(v)
            ][:20],
            "traps_sent": sum(len(v) for v in by_rule(sent, TRAP_RULE).values()),
            "mqtt_sent": sum(len(v) for v in by_rule(sent, MQTT_RULE).values()),
            "event_send_late_max_s": max(sender.late, default=None),
            "flap_count": flap_count,
            "other_notifications": receiver.other,
            **sse,
        }
    )
    result.update(latency_figures(sent, decided, "decision"))
    result.update(latency_figures(by_rule(sent, TRAP_RULE), decided, "trap_decision"))
    result.update(latency_figures(by_rule(sent, MQTT_RULE), decided, "mqtt_decision"))
    result.update(latency_figures(sent, receiver.arrivals, "webhook"))
    return result
