"""`dcim demo`: simulated UPS units, the monitor polling them, readings shown live.

Needs no external server: without `--influx-url` the readings go to a local
line-protocol file (the path is printed); with it they go to that InfluxDB.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

from dcim.bus import Subscription
from dcim.inventory import Config
from dcim.reading import Reading

#: Metrics shown in the live table, in column order: (metric, header, format).
LIVE_COLUMNS = (
    ("device.up", "up", "{}"),
    ("ups.output_source", "source", "{}"),
    ("ups.load_pct", "load %", "{:.0f}"),
    ("ups.battery_charge_pct", "charge %", "{:.0f}"),
    ("ups.battery_runtime_s", "runtime min", "{:.0f}"),
    ("ups.input_voltage_v", "in V", "{:.0f}"),
    ("ups.output_voltage_v", "out V", "{:.0f}"),
    ("ups.battery_temp_c", "batt °C", "{:.1f}"),
    ("device.poll_duration_s", "poll ms", "{:.1f}"),
)


def demo_config(args: argparse.Namespace, port: int, communities: list[str]) -> Config:
    """The embedded default inventory: one site, one room, the simulated UPS units."""
    sink: dict[str, Any]
    if args.influx_url:
        sink = {
            "type": "influxdb",
            "name": "influxdb",
            "url": args.influx_url,
            "api": args.influx_api,
        }
        if args.influx_api == "v1":
            sink["database"] = args.database
        else:
            sink.update(bucket=args.bucket, org=args.org)
            if args.token_env:
                sink["token"] = {"env": args.token_env}
    else:
        sink = {"type": "file", "name": "file", "path": str(args.output)}
    devices = [
        {
            "id": f"ups-{number}",
            "kind": "ups",
            "vendor": "DCIM Simulators",
            "model": "SIM-UPS",
            "profile": "ups-mib-rfc1628",
            "poll_interval_s": args.interval,
            "snmp": {"host": "127.0.0.1", "port": port, "community": community, "timeout_s": 1},
        }
        for number, community in enumerate(communities, start=1)
    ]
    return Config.model_validate(
        {
            "monitor": {
                "state_dir": str(args.output.parent),
                "self_metrics_interval_s": args.interval,
            },
            "sites": [{"id": "demo", "rooms": [{"id": "hall-1", "devices": devices}]}],
            "sinks": [sink],
        }
    )


class LiveView:
    """Keeps the latest value per device and metric; renders a table."""

    def __init__(self, subscription: Subscription) -> None:
        self._subscription = subscription
        self.latest: dict[str, dict[str, Reading]] = {}
        self.seen = 0

    async def consume(self) -> None:
        queue = self._subscription.queue
        while True:
            reading = await queue.get()
            self.seen += 1
            if reading.device_id == "dcim":
                continue
            # per-line metrics: show line 1 (the table header says so)
            if reading.tags.get("line", "1") != "1":
                continue
            self.latest.setdefault(reading.device_id, {})[reading.metric] = reading

    def render(self) -> str:
        header = ["device", *(title for _, title, _ in LIVE_COLUMNS)]
        rows = [header]
        for device in sorted(self.latest):
            values = self.latest[device]
            row = [device]
            for metric, _, fmt in LIVE_COLUMNS:
                reading = values.get(metric)
                if reading is None:
                    row.append("-")
                    continue
                value: Any = reading.value
                if metric == "ups.battery_runtime_s" and isinstance(value, float):
                    value = value / 60
                elif metric == "device.poll_duration_s" and isinstance(value, float):
                    value = value * 1000
                elif isinstance(value, bool):
                    value = "yes" if value else "NO"
                row.append(fmt.format(value))
            rows.append(row)
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
        return "\n".join(lines)


async def run_demo(args: argparse.Namespace) -> int:
    from dcim.runner import Monitor
    from simulators.clock import SimClock
    from simulators.snmp_agent import serve
    from simulators.ups import UpsModel
    from simulators.ups_mib import UpsDevice

    args.output = Path(args.output)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    clock = SimClock()
    devices = [
        UpsDevice(f"ups{n}", UpsModel(rated_va=10000.0 * n, rated_w=9000.0 * n, seed=n), clock)
        for n in range(1, args.count + 1)
    ]
    agent = await serve(devices, "127.0.0.1", 0)
    config = demo_config(args, agent.port, [device.name for device in devices])
    target = args.influx_url or args.output
    print(
        f"dcim demo: {len(devices)} simulated UPS on udp://127.0.0.1:{agent.port} "
        f"(communities {', '.join(d.name for d in devices)}); writing to {target}",
        flush=True,
    )
    monitor = Monitor(config)
    view = LiveView(monitor.subscribe("live-view", maxsize=10_000))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.duration is not None:
        loop.call_later(args.duration, stop.set)
    consumer = asyncio.create_task(view.consume())
    printer = asyncio.create_task(_print_loop(view, args.interval))
    try:
        await monitor.run(stop)
    finally:
        for task in (consumer, printer):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        agent.close()
    print(view.render(), flush=True)
    if not args.influx_url:
        size = args.output.stat().st_size if args.output.exists() else 0
        print(f"dcim demo: {view.seen} readings; line protocol in {args.output} ({size} bytes)")
    return 0


async def _print_loop(view: LiveView, interval: float) -> None:
    tty = sys.stdout.isatty() and os.environ.get("TERM") not in (None, "dumb")
    while True:
        await asyncio.sleep(interval)
        text = view.render()
        if tty:
            print("\x1b[2J\x1b[H" + text, flush=True)
        else:
            print(text + "\n", flush=True)
