"""A real Prometheus scrapes a running `dcim run` and answers PromQL on its health.

The monitor runs as operators run it (`dcim run`, a subprocess) against a simulated
UPS over real SNMP, one that refuses our community, and a rack probe on a Mosquitto
broker; Prometheus (Debian's) scrapes its /metrics every second with no token, as
/metrics needs none.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
import yaml

from dcim.clock import SimClock
from simulators.snmp_agent import SnmpAgent, serve
from simulators.ups import UpsModel
from simulators.ups_mib import UpsDevice
from tests.support.mosquitto_server import Mosquitto
from tests.support.prometheus_server import Prometheus
from tests.support.servers import free_port, http
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


@pytest.fixture
async def agent() -> AsyncIterator[SnmpAgent]:
    device = UpsDevice("ups1", UpsModel(rated_va=6000.0, rated_w=5400.0, seed=1), SimClock())
    agent = await serve([device], "127.0.0.1", 0)
    yield agent
    agent.close()


def ups(device_id: str, port: int, community: str) -> dict[str, object]:
    snmp = {"host": "127.0.0.1", "port": port, "community": community, "timeout_s": 0.3}
    return {"id": device_id, "kind": "ups", "profile": "ups-mib-rfc1628", "snmp": snmp}


async def test_promql_returns_per_device_up_of_a_running_monitor(
    agent: SnmpAgent, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    # the rack probe said it is online (retained, as probes do with their last will)
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
        await client.publish("dc1/hall-1/a01/env/status", b"online", qos=1, retain=True)
    ops_port = free_port()
    config = {
        "monitor": {"state_dir": "state", "ops": {"port": ops_port}},
        "defaults": {"poll_interval_s": 0.5},
        "sites": [
            {
                "id": "dc1",
                "rooms": [
                    {
                        "id": "hall-1",
                        "devices": [
                            ups("ups-a", agent.port, "ups1"),
                            ups("ups-b", agent.port, "wrong-community"),
                        ],
                        "rows": [
                            {
                                "id": "row-1",
                                "racks": [
                                    {
                                        "id": "a01",
                                        "devices": [
                                            {
                                                "id": "env-a01",
                                                "kind": "sensor",
                                                "profile": "rack-env-json",
                                                "mqtt": {},
                                            }
                                        ],
                                    }
                                ],
                            }
                        ],
                    }
                ],
            }
        ],
        "sinks": [{"type": "file", "path": str(tmp_path / "out.lp")}],
        "mqtt": {"url": mosquitto.url, "protocol": "3.1.1"},
    }
    path = tmp_path / "dcim.yaml"
    path.write_text(yaml.safe_dump(config))
    prometheus = Prometheus(tmp_path / "prom", [f"127.0.0.1:{ops_port}"], job="dcim")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dcim",
        "run",
        str(path),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ),
    )
    try:
        await asyncio.to_thread(prometheus.start)
        up: dict[str, str] = {}

        async def both_devices_seen() -> bool:
            result = await asyncio.to_thread(prometheus.query, 'dcim_device_up{job="dcim"}')
            up.update({r["metric"]["device"]: r["value"][1] for r in result})
            return {"ups-a", "ups-b", "env-a01"} <= set(up)

        await eventually(both_devices_seen, 60, "Prometheus to have scraped dcim_device_up")
        assert up == {"ups-a": "1", "ups-b": "0", "env-a01": "1"}
        # the target is up for Prometheus, and labels carry the place
        targets = await asyncio.to_thread(prometheus.query, 'up{job="dcim"}')
        assert [t["value"][1] for t in targets] == ["1"]
        down = await asyncio.to_thread(prometheus.query, "dcim_device_up == 0")
        assert [
            (r["metric"]["device"], r["metric"]["site"], r["metric"]["room"]) for r in down
        ] == [("ups-b", "dc1", "hall-1")]
        ready = await asyncio.to_thread(http, "GET", f"http://127.0.0.1:{ops_port}/-/ready")
        assert ready == (200, b"dcim is ready.\n")
    finally:
        if proc.returncode is None:
            proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        await asyncio.to_thread(prometheus.stop)
    assert proc.returncode == 0, err.decode()
