"""Two shards watch each other: `kill -9` of one pages "shard silent" from the other;
restarting it resolves the page.

Real parts: two `dcim run --shard I/2` processes, a Mosquitto broker carrying their
heartbeats, a simulated UPS per room over SNMP, and a webhook receiver of the test's
own standing in for the pager. The heartbeat runs fast here (0.5 s beats, silent
after 3 s) to keep the test short; the defaults are 10 s and 60 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import yaml
from aiohttp import web

from dcim.clock import SimClock
from simulators.snmp_agent import SnmpAgent, serve
from simulators.ups import UpsModel
from simulators.ups_mib import UpsDevice
from tests.support.mosquitto_server import Mosquitto

pytestmark = pytest.mark.slow
TOPIC = "test/heartbeat"
PAGE_WITHIN_S = 120.0  # the bound


@pytest.fixture
async def agent() -> AsyncIterator[SnmpAgent]:
    clock = SimClock()
    devices = [
        UpsDevice(f"ups{n}", UpsModel(rated_va=6000.0, rated_w=5400.0, seed=n), clock)
        for n in (1, 2)
    ]
    agent = await serve(devices, "127.0.0.1", 0)
    yield agent
    agent.close()


class Pager:
    """Records every webhook post with the time it arrived."""

    def __init__(self) -> None:
        self.posts: list[tuple[float, dict[str, Any]]] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append((time.monotonic(), await request.json()))
        self.arrived.set()
        return web.Response(text="ok")

    async def wait_for(self, within_s: float, **match: str) -> tuple[float, dict[str, Any]]:
        async with asyncio.timeout(within_s):
            while True:
                for at, post in self.posts:
                    fields = {**post, **{f"label_{k}": v for k, v in post["labels"].items()}}
                    if all(fields.get(k) == v for k, v in match.items()):
                        return at, post
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def pager() -> AsyncIterator[tuple[Pager, str]]:
    recorder = Pager()
    app = web.Application()
    app.router.add_post("/hook", recorder.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield recorder, f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    await runner.cleanup()


def write_config(path: Path, snmp_port: int, broker: str, hook: str) -> None:
    rooms = [
        {
            "id": f"hall-{n}",
            "devices": [
                {
                    "id": f"ups-{n}",
                    "kind": "ups",
                    "profile": "ups-mib-rfc1628",
                    "snmp": {"host": "127.0.0.1", "port": snmp_port, "community": f"ups{n}"},
                }
            ],
        }
        for n in (1, 2)
    ]
    config = {
        "monitor": {
            "state_dir": "state",
            "ops": None,
            "heartbeat": {"interval_s": 0.5, "silent_after_s": 3, "topic": TOPIC},
        },
        "defaults": {"poll_interval_s": 1},
        "sites": [{"id": "dc1", "rooms": rooms}],
        "mqtt": {"url": broker, "protocol": "3.1.1"},
        "alerts": {
            "startup_grace_s": 0,
            "tick_s": 0.2,
            "channels": [{"type": "webhook", "name": "pager", "url": hook}],
        },
    }
    path.write_text(yaml.safe_dump(config))


async def start_shard(config: Path, index: int, log: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dcim",
        "run",
        str(config),
        "--shard",
        f"{index}/2",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log.open("ab"),
        env=dict(os.environ),
    )


async def heard_alive(broker: Mosquitto, *shards: int) -> None:
    """Wait until each shard's heartbeat said `alive` (a retained message, so no race)."""
    waiting = {f"{TOPIC}/shard-{i}-of-2" for i in shards}
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier=f"test-{os.getpid()}") as client:
        await client.subscribe(f"{TOPIC}/+")
        async with asyncio.timeout(60):
            async for message in client.messages:
                payload = message.payload
                if (
                    isinstance(payload, bytes)
                    and payload
                    and json.loads(payload)["state"] == "alive"
                ):
                    waiting.discard(message.topic.value)
                if not waiting:
                    return


async def test_killed_shard_pages_within_two_minutes_and_resolves_when_back(
    agent: SnmpAgent, mosquitto: Mosquitto, pager: tuple[Pager, str], tmp_path: Path
) -> None:
    recorder, hook = pager
    config = tmp_path / "dcim.yaml"
    write_config(config, agent.port, mosquitto.url, hook)
    logs = [tmp_path / "shard-1.log", tmp_path / "shard-2.log"]
    shard1 = await start_shard(config, 1, logs[0])
    shard2 = await start_shard(config, 2, logs[1])
    try:
        await heard_alive(mosquitto, 1, 2)
        shard2.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        await shard2.wait()
        at, firing = await recorder.wait_for(
            PAGE_WITHIN_S, rule="dcim.shard_silent", state="firing", label_shard="2/2"
        )
        paged_after = at - killed_at
        print(f"shard 2/2 killed -> page from shard 1/2 after {paged_after:.1f} s")
        assert paged_after < PAGE_WITHIN_S
        assert firing["severity"] == "critical"
        assert "dc1/hall-" in firing["summary"]  # names the rooms left unwatched
        assert "died (last will)" in firing["summary"]

        shard2 = await start_shard(config, 2, logs[1])
        _, resolved = await recorder.wait_for(
            60, rule="dcim.shard_silent", state="resolved", id=firing["id"]
        )
        assert resolved["labels"]["shard"] == "2/2"
    finally:
        for proc in (shard1, shard2):
            if proc.returncode is None:
                proc.terminate()
        for proc in (shard1, shard2):
            await asyncio.wait_for(proc.wait(), 60)
    assert shard1.returncode == 0, logs[0].read_text()[-3000:]
    # shard 1 was never the one paged about
    assert not [p for _, p in recorder.posts if p["labels"].get("shard") == "1/2"]
