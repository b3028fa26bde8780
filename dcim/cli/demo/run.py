"""`dcim demo`: the simulated data hall, polled by the monitor, on the NOC board.

Needs no external server: the site's simulators (SNMP, Modbus, MQTT) run in this
process, MQTT goes through an embedded broker (amqtt), and without `--influx-url`
the readings go to a local line-protocol file. The alert engine runs the default
rule packs on simulated time while a playlist of scenarios plays in a loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

#: Simulated seconds per wall second: a 30 s poll every 3 s, a 20-minute outage in 2.
DEFAULT_SPEED = 10.0
DEFAULT_PORT = 9280


def add_arguments(demo: argparse.ArgumentParser) -> None:
    from dcim.cli.demo.playlist import DEFAULT_PLAYLIST

    demo.add_argument(
        "--site", type=Path, help="site file (default: simulators/sites/demo-site.yaml)"
    )
    demo.add_argument(
        "--scenario",
        help=f"play only this scenario, in a loop (default: {', '.join(DEFAULT_PLAYLIST)})",
    )
    demo.add_argument(
        "--speed", type=float, default=DEFAULT_SPEED, help="simulated seconds per second"
    )
    demo.add_argument("--view", choices=["board", "terminal"], default="board")
    demo.add_argument("--port", type=int, default=DEFAULT_PORT, help="board port (0: any free one)")
    demo.add_argument("--duration", type=float, help="stop after this many seconds")
    demo.add_argument(
        "--interval", type=float, help="poll every this many wall seconds (default: site's / speed)"
    )
    demo.add_argument("--state-dir", type=Path, default=Path("var/demo"))
    demo.add_argument("--output", type=Path, default=Path("var/demo.lp"))
    demo.add_argument("--influx-url", help="write to this InfluxDB instead of a file")
    demo.add_argument("--influx-api", choices=["v1", "v2"], default="v1")
    demo.add_argument("--database", default="dcim")
    demo.add_argument("--bucket", default="dcim")
    demo.add_argument("--org", default="")
    demo.add_argument("--token-env", help="environment variable holding the v2 token")


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def embedded_broker() -> AsyncIterator[int]:
    """An in-process MQTT 3.1.1 broker on a free loopback port."""
    from amqtt.broker import Broker

    for noisy in ("amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
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


class _WeakSnmpNotice(logging.Filter):
    """The site file speaks SNMPv2c on loopback by choice: one line says so, not ten."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "weak SNMP security" not in str(record.msg)


def _addresses(site: Any) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for device_id, placed in site.topology.placed.items():
        with contextlib.suppress(KeyError):
            if placed.device.snmp is not None:
                host, port, _ = site.address_of(device_id)
                out[device_id] = (host, port)
            elif placed.device.modbus is not None:
                host, port, _ = site.modbus_address_of(device_id)
                out[device_id] = (host, port)
    return out


async def run_demo(args: argparse.Namespace) -> int:
    from collectors.registry import CollectorFactory
    from dcim.cli.demo.hall import (
        Credentials,
        alert_engine,
        default_site_file,
        monitor_config,
        site_config,
    )
    from dcim.cli.demo.playlist import DEFAULT_PLAYLIST, Playlist
    from dcim.clock import SimClock
    from dcim.errors import DcimError
    from dcim.runner import Monitor
    from simulators.site import Site

    if args.speed <= 0:
        print("dcim demo: --speed must be positive", file=sys.stderr)
        return 2
    logging.getLogger("collectors").addFilter(_WeakSnmpNotice())
    for name in ("collectors.snmp.collector", "collectors.snmp.security"):
        logging.getLogger(name).addFilter(_WeakSnmpNotice())
    site_file = args.site or default_site_file()
    state_dir = Path(args.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - before anything runs
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    credentials = Credentials.new()
    clock = SimClock(args.speed, start_s=time.time())
    async with embedded_broker() as mqtt_port:
        mqtt_url = f"mqtt://127.0.0.1:{mqtt_port}"
        try:
            served = site_config(site_file, mqtt_url)
            site = Site(served, clock=clock)
            names = [args.scenario] if args.scenario else list(DEFAULT_PLAYLIST)
            status: list[str] = []
            playlist = Playlist.of(names, site.model, clock, status.append)
        except DcimError as exc:
            print(f"dcim demo: {exc}", file=sys.stderr)
            return 2
        poll_wall = args.interval or None
        await site.start(
            "127.0.0.1",
            0,
            mqtt_url=mqtt_url,
            mqtt_interval_s=poll_wall or None,
            fast_snmp=True,
        )
        try:
            config = monitor_config(
                served,
                _addresses(site),
                interval_s=poll_wall,
                speed=args.speed,
                state_dir=state_dir,
                sink=_sink(args),
                mqtt_client_id=f"dcim-demo-{os.getpid()}",
                web_port=args.port if args.view == "board" else None,
                credentials=credentials,
            )
            engine = alert_engine(config, served, clock.now, clock.speed)
            monitor = Monitor(config, collectors=CollectorFactory.for_config(config), alerts=engine)
            return await _run(
                args,
                monitor=monitor,
                playlist=playlist,
                status=status,
                credentials=credentials,
                site=site,
                state_dir=state_dir,
            )
        finally:
            await site.aclose()


async def _run(
    args: argparse.Namespace,
    *,
    monitor: Any,
    playlist: Any,
    status: list[str],
    credentials: Any,
    site: Any,
    state_dir: Path,
) -> int:
    from dcim.cli.demo.terminal import TerminalView
    from dcim.web.live import LiveState
    from dcim.web.overview import OverviewBuilder
    from dcim.web.thermal import engine_bands

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.duration is not None:
        loop.call_later(args.duration, stop.set)
    token_file = state_dir / "alerts-token"
    token_file.write_text(credentials.api_token + "\n")
    token_file.chmod(0o600)
    tasks: list[asyncio.Task[Any]] = []
    view: TerminalView | None = None
    board = monitor.board

    def on_status(text: str) -> None:
        status.append(text)
        if board is not None:
            board.note = f"Demo, simulated time ×{args.speed:g}: {text}"
        if view is not None:
            view.status = text
        print(f"dcim demo: {text}", flush=True)

    playlist.on_status = on_status
    if board is None:
        config = monitor.config
        live = LiveState(config)
        feed = monitor.subscribe("terminal view", maxsize=100_000)
        view = TerminalView(
            live, OverviewBuilder(config, engine_bands(config.alerts)), monitor.alerts.incidents
        )
        tasks.append(asyncio.create_task(live.consume(feed.queue)))
        tasks.append(asyncio.create_task(view.print_every(max(2.0, 30.0 / args.speed))))
    running = asyncio.create_task(monitor.run(stop))
    # the board binds as the monitor starts: say where once it listens
    while not running.done() and (  # noqa: ASYNC110 - the monitor binds inside run(); no event
        (board is not None and board.port is None) or monitor.alerts.api_port is None
    ):
        await asyncio.sleep(0.05)
    if running.done():
        await running  # it failed to start (a port in use): the error says why
        return 1
    api_port = monitor.alerts.api_port
    devices = len(site.topology.placed)
    print(
        f"dcim demo: site {site.topology.site}: {devices} devices, simulated time ×{args.speed:g}",
        flush=True,
    )
    if board is not None:
        print(f"dcim demo: the board: {board.url}", flush=True)
        print(
            f"dcim demo: log in as operator / {credentials.operator_password} to acknowledge and silence",
            flush=True,
        )
    print(
        f"dcim demo: alerts: dcim alerts --url http://127.0.0.1:{api_port} "
        f"--token-file {state_dir / 'alerts-token'} list",
        flush=True,
    )
    print(f"dcim demo: readings to {args.influx_url or args.output}; Ctrl-C stops", flush=True)
    tasks.append(asyncio.create_task(playlist.play()))
    try:
        await running
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if view is not None:
        print(view.render(), flush=True)
    print(f"dcim demo: stopped; {monitor.bus.published} readings published", flush=True)
    return 0
