"""The monitor as a service: sd_notify on a test socket, readiness, health, /metrics.

The notify socket is a Unix datagram socket of the test's own standing in for
systemd's (NOTIFY_SOCKET): libsystemd's sd_notify (through cysystemd) sends to it
exactly as it would to PID 1. Devices are a simulated UPS over real SNMP.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from collectors.registry import CollectorFactory
from dcim.cli.common import load_checked
from dcim.clock import SimClock
from dcim.ops.http import OpsProbes, start_listener
from dcim.ops.metrics import ServiceState, build_registry
from dcim.ops.service import Service
from simulators.snmp_agent import SnmpAgent, serve
from simulators.ups import UpsModel
from simulators.ups_mib import UpsDevice
from tests.support.servers import http

WATCHDOG_USEC = 300_000  # WatchdogSec=0.3: WATCHDOG=1 every 0.15 s


@pytest.fixture
async def agent() -> AsyncIterator[SnmpAgent]:
    device = UpsDevice("ups1", UpsModel(rated_va=6000.0, rated_w=5400.0, seed=1), SimClock())
    agent = await serve([device], "127.0.0.1", 0)
    yield agent
    agent.close()


def write_config(tmp_path: Path, port: int) -> Path:
    config = {
        "monitor": {"state_dir": "state", "ops": {"port": 0}, "self_metrics_interval_s": 1},
        "defaults": {"poll_interval_s": 0.5},
        "sites": [
            {
                "id": "dc1",
                "rooms": [
                    {
                        "id": "hall-1",
                        "devices": [
                            {
                                "id": "ups-1",
                                "kind": "ups",
                                "profile": "ups-mib-rfc1628",
                                "snmp": {"host": "127.0.0.1", "port": port, "community": "ups1"},
                            },
                            {
                                "id": "ups-mute",
                                "kind": "ups",
                                "profile": "ups-mib-rfc1628",
                                "snmp": {
                                    "host": "127.0.0.1",
                                    "port": port,
                                    "community": "nobody",
                                    "timeout_s": 0.2,
                                    "retries": 0,
                                },
                            },
                        ],
                    }
                ],
            }
        ],
        "sinks": [{"type": "file", "path": str(tmp_path / "out.lp"), "flush_interval_s": 0.2}],
    }
    path = tmp_path / "dcim.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def next_message(sock: socket.socket, within_s: float = 10.0) -> str:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(within_s):
        data = await loop.sock_recv(sock, 4096)
    return data.decode()


async def get(url: str) -> tuple[int, str]:
    status, body = await asyncio.to_thread(http, "GET", url)
    return status, body.decode()


async def test_ready_watchdog_stopping_in_order_and_ready_only_after_pollers_started(
    agent: SnmpAgent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    path = write_config(tmp_path, agent.port)
    service = Service(
        path, load_checked(path), load=load_checked, collectors=CollectorFactory.for_config
    )
    assert service.config.monitor.state_dir == tmp_path / "state"
    # the test's own listener over the service's probes, up before the service starts
    probes = OpsProbes(
        build_registry(lambda: service.monitor, ServiceState()), service.ready, service.dead_parts
    )
    runner, port = await start_listener(probes, "127.0.0.1", 0)
    try:
        assert (await get(f"http://127.0.0.1:{port}/-/ready"))[0] == 503
        assert (await get(f"http://127.0.0.1:{port}/-/healthy"))[0] == 503
        run = asyncio.create_task(service.run())
        messages = [await next_message(notify)]
        while "READY=1" not in messages:
            messages.append(await next_message(notify))
        monitor = service.monitor
        assert monitor is not None
        # READY came once every poller task and sink task was running
        assert len(monitor.pollers) == 2
        assert all(not t.done() for t in monitor._poll_tasks.values())
        assert len(monitor._poll_tasks) == 2
        assert (await get(f"http://127.0.0.1:{port}/-/ready")) == (200, "dcim is ready.\n")
        assert (await get(f"http://127.0.0.1:{port}/-/healthy"))[0] == 200
        assert messages[0].startswith("STATUS=polling 2 device(s)")
        # the service's own listener: no token needed, Prometheus text format
        assert service.ops_port is not None
        base = f"http://127.0.0.1:{service.ops_port}"
        for _ in range(3):
            messages.append(await next_message(notify))
        assert messages[-3:] == ["WATCHDOG=1"] * 3

        async def scraped(want: str) -> str:
            async with asyncio.timeout(15):
                while True:
                    status, text = await get(f"{base}/metrics")
                    assert status == 200
                    if want in text:
                        return text
                    await asyncio.sleep(0.2)

        text = await scraped('dcim_device_up{device="ups-mute"')
        text = await scraped('dcim_device_up{device="ups-1"')
        assert (
            'dcim_device_up{device="ups-1",kind="ups",rack="",room="hall-1",row="",site="dc1"} 1.0'
            in text
        )
        assert (
            'dcim_device_up{device="ups-mute",kind="ups",rack="",room="hall-1",row="",site="dc1"} 0.0'
            in text
        )
        assert "dcim_ready 1.0" in text
        assert 'dcim_sink_points_written_total{sink="file"}' in text
        assert 'dcim_queue_depth{consumer="sink:file"}' in text
        assert "process_resident_memory_bytes" in text

        def content_type() -> str:
            with urllib.request.urlopen(f"{base}/metrics", timeout=10) as resp:  # noqa: S310
                return str(resp.headers["Content-Type"])

        assert (await asyncio.to_thread(content_type)).startswith("text/plain; version=0.0.4")

        # a part of the pipeline dies: the watchdog is no longer fed, health says which
        sink = monitor._core["sink file"]
        sink.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sink
        status, body = await get(f"{base}/-/healthy")
        assert (status, body) == (503, "dcim is unhealthy: stopped: sink file")
        drained = []
        with contextlib.suppress(BlockingIOError):
            while True:  # what was sent before it died (and maybe the status since)
                drained.append(notify.recv(4096).decode())
        # nothing for 1 s: more than six watchdog periods
        late = []
        with contextlib.suppress(TimeoutError):
            while True:
                late.append(await next_message(notify, within_s=1.0))
        assert "WATCHDOG=1" not in late
        assert "STATUS=unhealthy: stopped: sink file" in drained + late
        os.kill(os.getpid(), signal.SIGTERM)  # the service's handler turns it into a stop
        assert await asyncio.wait_for(run, 30) == 0
        rest = []
        while True:
            try:
                rest.append(await next_message(notify, within_s=0.5))
            except TimeoutError:
                break
        assert "STOPPING=1" in rest
        assert not (tmp_path / "state" / "dcim.pid").exists()
    finally:
        await runner.cleanup()
        notify.close()
