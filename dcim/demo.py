"""`dcim demo`: simulated devices on SNMP, Modbus and MQTT, the monitor polling them, live view.

Needs no external server: the simulators run in this process, MQTT goes through
an embedded broker (amqtt, MQTT 3.1.1), and without `--influx-url` the readings
go to a local line-protocol file (the path is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from dcim.bus import Subscription
from dcim.inventory import Config
from dcim.reading import Reading

RACKS = ("r01", "r02")
DEMO_USER = "dcim-demo"
SITE, ROOM, ROW = "demo", "hall-1", "row-1"

#: What the live view shows per device kind: (metric, header, format, tag filter).
HEADLINES: dict[str, tuple[tuple[str, str, str, dict[str, str]], ...]] = {
    "ups": (
        ("ups.output_source", "source", "{}", {}),
        ("ups.load_pct", "load %", "{:.0f}", {"line": "1"}),
        ("ups.battery_charge_pct", "charge %", "{:.0f}", {}),
        ("ups.battery_runtime_s", "runtime s", "{:.0f}", {}),
    ),
    "crac": (
        ("crac.supply_air_temp_c", "supply °C", "{:.1f}", {}),
        ("crac.return_air_temp_c", "return °C", "{:.1f}", {}),
        ("crac.fan_speed_pct", "fan %", "{:.0f}", {}),
        ("crac.alarm", "alarm", "{}", {}),
    ),
    "meter": (
        ("meter.power_w", "facility W", "{:.0f}", {"scope": "facility"}),
        ("meter.power_w", "IT W", "{:.0f}", {"scope": "it"}),
    ),
    "sensor": (
        ("sensor.temp_c", "inlet °C", "{:.1f}", {"position": "inlet"}),
        ("sensor.temp_c", "outlet °C", "{:.1f}", {"position": "outlet"}),
        ("sensor.humidity_pct", "RH %", "{:.0f}", {}),
        ("sensor.dew_point_c", "dew °C", "{:.1f}", {}),
    ),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _sink(args: argparse.Namespace) -> dict[str, Any]:
    if not args.influx_url:
        return {"type": "file", "name": "file", "path": str(args.output)}
    sink: dict[str, Any] = {"type": "influxdb", "name": "influxdb", "url": args.influx_url}
    sink["api"] = args.influx_api
    if args.influx_api == "v1":
        sink["database"] = args.database
    else:
        sink.update(bucket=args.bucket, org=args.org)
        if args.token_env:
            sink["token"] = {"env": args.token_env}
    return sink


def demo_config(
    args: argparse.Namespace,
    *,
    snmp_port: int,
    communities: list[str],
    modbus_port: int | None,
    mqtt_port: int | None,
    auth_key: str,
    priv_key: str,
) -> Config:
    """The embedded default inventory: UPS on SNMP, CRAC/UPS/meter on Modbus, rack sensors on MQTT."""
    room_devices: list[dict[str, Any]] = [
        {
            "id": f"ups-{number}",
            "kind": "ups",
            "vendor": "DCIM Simulators",
            "model": "SIM-UPS",
            "profile": "ups-mib-rfc1628",
            # SNMPv3 authPriv (SHA-256 + AES-128), one v3 context per simulated unit
            "snmp": {
                "host": "127.0.0.1",
                "port": snmp_port,
                "version": "v3",
                "timeout_s": 1,
                "v3": {
                    "user": DEMO_USER,
                    "auth_protocol": "sha256",
                    "auth_key": auth_key,
                    "priv_protocol": "aes128",
                    "priv_key": priv_key,
                    "context_name": community,
                },
            },
        }
        for number, community in enumerate(communities, start=1)
    ]
    if modbus_port is not None:
        modbus = {"host": "127.0.0.1", "port": modbus_port, "timeout_s": 1}
        room_devices += [
            {
                "id": "crac-1",
                "kind": "crac",
                "profile": "sim-crac",
                "modbus": {**modbus, "unit_id": 1},
            },
            {
                "id": "ups-mb",
                "kind": "ups",
                "profile": "sim-ups",
                "modbus": {**modbus, "unit_id": 2},
            },
            {
                "id": "meter-1",
                "kind": "meter",
                "profile": "sim-power-meter",
                "modbus": {**modbus, "unit_id": 3},
            },
        ]
    racks = (
        [
            {
                "id": rack,
                "devices": [
                    {
                        "id": f"env-{rack}",
                        "kind": "sensor",
                        "profile": "rack-env-json",
                        "mqtt": {"stale_after_s": 60},
                    }
                ],
            }
            for rack in RACKS
        ]
        if mqtt_port is not None
        else []
    )
    for device in room_devices:
        device["poll_interval_s"] = args.interval
    raw: dict[str, Any] = {
        "monitor": {
            "state_dir": str(args.output.parent),
            "self_metrics_interval_s": max(1.0, args.interval),
        },
        "sites": [
            {
                "id": SITE,
                "rooms": [
                    {"id": ROOM, "devices": room_devices, "rows": [{"id": ROW, "racks": racks}]}
                ],
            }
        ],
        "sinks": [_sink(args)],
        "alerts": {},
    }
    if mqtt_port is not None:
        raw["mqtt"] = {
            "url": f"mqtt://127.0.0.1:{mqtt_port}",
            "protocol": "3.1.1",
            "client_id": f"dcim-demo-{os.getpid()}",
        }
    return Config.model_validate(raw)


@contextlib.asynccontextmanager
async def embedded_broker() -> AsyncIterator[int | None]:
    """An in-process MQTT broker on a free loopback port (None if amqtt is unavailable)."""
    try:
        from amqtt.broker import Broker
    except ImportError:
        print("dcim demo: amqtt not installed, MQTT sensors left out", file=sys.stderr)
        yield None
        return
    for noisy in ("amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    port = free_port()
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
    )
    await broker.start()
    try:
        yield port
    finally:
        await broker.shutdown()


class LiveView:
    """Keeps the latest value per device, metric and tags; renders one table per kind."""

    def __init__(self, subscription: Subscription) -> None:
        self._subscription = subscription
        self.latest: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], Reading]] = {}
        self.kinds: dict[str, str] = {}
        self.alerts_firing: dict[str, str] = {}
        self.seen = 0

    async def consume(self) -> None:
        queue = self._subscription.queue
        while True:
            reading = await queue.get()
            self.seen += 1
            if reading.metric == "alert.event":
                self._track_alert(reading)
                continue
            kind = reading.tags.get("kind")
            if kind is None:
                continue
            self.kinds[reading.device_id] = kind
            key = (reading.metric, tuple(sorted(reading.tags.items())))
            self.latest.setdefault(reading.device_id, {})[key] = reading

    def _track_alert(self, reading: Reading) -> None:
        name = reading.tags.get("rule", "?") + " " + reading.tags.get("device", "")
        if reading.tags.get("state") == "firing" or reading.value == "firing":
            self.alerts_firing[name] = reading.tags.get("severity", "")
        elif reading.tags.get("state") == "resolved" or reading.value == "resolved":
            self.alerts_firing.pop(name, None)

    def _find(self, device: str, metric: str, want: dict[str, str]) -> Reading | None:
        for (name, tags), reading in self.latest.get(device, {}).items():
            if name == metric and all(dict(tags).get(k) == v for k, v in want.items()):
                return reading
        return None

    def render(self) -> str:
        blocks = []
        for kind, columns in HEADLINES.items():
            devices = sorted(d for d, k in self.kinds.items() if k == kind)
            if not devices:
                continue
            header = [kind, "up", *(title for _, title, _, _ in columns)]
            rows = [header]
            for device in devices:
                up = self._find(device, "device.up", {})
                row = [device, "-" if up is None else ("yes" if up.value else "NO")]
                for metric, _, fmt, want in columns:
                    reading = self._find(device, metric, want)
                    value: Any = "-" if reading is None else reading.value
                    row.append(value if isinstance(value, str) else fmt.format(value))
                rows.append(row)
            widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
            blocks.append(
                "\n".join(
                    "  ".join(str(c).rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows
                )
            )
        alerts = ", ".join(f"{n} ({s})" for n, s in sorted(self.alerts_firing.items())) or "none"
        blocks.append(f"alerts firing: {alerts}")
        return "\n\n".join(blocks)


async def run_demo(args: argparse.Namespace) -> int:
    from dcim.runner import Monitor
    from simulators.clock import SimClock
    from simulators.modbus_server import demo_units
    from simulators.modbus_server import serve as serve_modbus
    from simulators.mqtt_publisher import run_publishers, standalone_sensors
    from simulators.snmp_agent import V3User, serve
    from simulators.ups import UpsModel
    from simulators.ups_mib import UpsDevice

    args.output = Path(args.output)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    clock = SimClock()
    upses = [
        UpsDevice(f"ups{n}", UpsModel(rated_va=10000.0 * n, rated_w=9000.0 * n, seed=n), clock)
        for n in range(1, args.count + 1)
    ]
    # keys made up for this run only: the demo shows SNMPv3 authPriv, the secure default
    auth_key, priv_key = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    user = V3User(DEMO_USER, auth_key=auth_key, priv_key=priv_key)
    agent = await serve(upses, "127.0.0.1", 0, v3_users=[user])
    units = demo_units()
    modbus = await serve_modbus(units, "127.0.0.1", 0)
    async with embedded_broker() as mqtt_port:
        config = demo_config(
            args,
            snmp_port=agent.port,
            communities=[u.name for u in upses],
            modbus_port=modbus.port,
            mqtt_port=mqtt_port,
            auth_key=auth_key,
            priv_key=priv_key,
        )
        print(
            f"dcim demo: {len(upses)} UPS on SNMPv3 udp://127.0.0.1:{agent.port}; "
            f"CRAC, UPS and meter on Modbus tcp://127.0.0.1:{modbus.port} (units 1-3); "
            + (
                f"{len(RACKS)} rack sensors on MQTT mqtt://127.0.0.1:{mqtt_port}; "
                if mqtt_port
                else ""
            )
            + f"writing to {args.influx_url or args.output}",
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
        tasks = [
            asyncio.create_task(view.consume()),
            asyncio.create_task(_print_loop(view, args.interval)),
        ]
        if mqtt_port is not None:
            sensors = standalone_sensors(SITE, ROOM, RACKS, ["env"])
            tasks.append(
                asyncio.create_task(
                    run_publishers(
                        f"mqtt://127.0.0.1:{mqtt_port}",
                        sensors,
                        args.interval,
                        protocol="3.1.1",
                        qos=1,
                    )
                )
            )
        try:
            await monitor.run(stop)
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            agent.close()
            await modbus.close()
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
        print(("\x1b[2J\x1b[H" + text) if tty else (text + "\n"), flush=True)
