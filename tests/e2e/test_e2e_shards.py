"""Two `dcim run --shard` processes over one inventory poll every device exactly once."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dcim.clock import SimClock
from simulators.snmp_agent import SnmpAgent, serve
from simulators.ups import UpsModel
from simulators.ups_mib import UpsDevice

pytestmark = pytest.mark.slow
ROOMS = 5
UPS_PER_ROOM = 2


@pytest.fixture
async def agent() -> AsyncIterator[SnmpAgent]:
    clock = SimClock()
    devices = [
        UpsDevice(f"ups{n}", UpsModel(rated_va=6000.0, rated_w=5400.0, seed=n), clock)
        for n in range(ROOMS * UPS_PER_ROOM)
    ]
    agent = await serve(devices, "127.0.0.1", 0)
    yield agent
    agent.close()


def write_config(path: Path, port: int) -> None:
    rooms: list[dict[str, Any]] = [
        {
            "id": f"hall-{r}",
            "devices": [
                {
                    "id": f"ups-{r}-{u}",
                    "kind": "ups",
                    "profile": "ups-mib-rfc1628",
                    "snmp": {"community": f"ups{r * UPS_PER_ROOM + u}"},
                }
                for u in range(UPS_PER_ROOM)
            ],
        }
        for r in range(ROOMS)
    ]
    config = {
        "monitor": {"state_dir": str(path.parent / "state")},
        "defaults": {
            "poll_interval_s": 0.5,
            "snmp": {"host": "127.0.0.1", "port": port, "timeout_s": 1},
        },
        "sites": [{"id": "dc1", "rooms": rooms}],
        "sinks": [{"type": "file", "path": str(path.parent / "out.lp"), "flush_interval_s": 0.2}],
    }
    path.write_text(yaml.safe_dump(config))


async def test_two_shards_split_rooms_and_cover_every_device(
    agent: SnmpAgent, tmp_path: Path
) -> None:
    procs = []
    config = tmp_path / "site.yaml"  # one file for every shard, as operators run it
    write_config(config, agent.port)
    for shard in (1, 2):
        procs.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "dcim",
                "run",
                str(config),
                "--shard",
                f"{shard}/2",
                "--duration",
                "3",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=dict(os.environ),
            )
        )
    for shard, proc in enumerate(procs, 1):
        output, _ = await proc.communicate()
        assert proc.returncode == 0, output.decode()
        assert f"state in {tmp_path / 'state' / f'shard-{shard}-of-2'}" in output.decode()
    polled_by: dict[str, set[int]] = defaultdict(set)
    rooms_by: dict[int, set[str]] = defaultdict(set)
    for shard in (1, 2):
        for line in (tmp_path / f"out.shard-{shard}-of-2.lp").read_text().splitlines():
            if line.startswith("ups,"):
                tags = dict(part.split("=", 1) for part in line.split(" ", 1)[0].split(",")[1:])
                polled_by[tags["device"]].add(shard)
                rooms_by[shard].add(tags["room"])
    expected = {f"ups-{r}-{u}" for r in range(ROOMS) for u in range(UPS_PER_ROOM)}
    assert set(polled_by) == expected
    assert all(len(shards) == 1 for shards in polled_by.values()), polled_by
    assert rooms_by[1]
    assert rooms_by[2]
    assert not rooms_by[1] & rooms_by[2]
