"""Polls per CPU-second of the poller for a 30-OID GET: v2c and v3 authPriv.

The fast agent (`python -m simulators.fast_agent --v3`) runs in its own
process, so only the poller's CPU (this process's `time.process_time`) is
counted. Each mode polls `--devices` rack PDUs concurrently for `--seconds`
after one warm-up round (engine discovery, key localization, templates).

    .venv/bin/python -m dcim.bench.codec [--devices 100] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from collectors.snmp.client import SnmpHost
from collectors.snmp.types import Absent, Oid, Session
from dcim.inventory import SnmpConfig
from simulators.fast_agent import (
    BENCH_V3_AUTH_KEY,
    BENCH_V3_PRIV_KEY,
    BENCH_V3_USER,
    SYSTEM,
    FleetDevice,
    fleet,
)
from simulators.mibs.apc_rpdu2 import DEVICE_STATUS, OUTLET_METERED_STATUS

#: 24 outlet powers, 4 system scalars, device power and energy: one rack PDU's poll.
OIDS = [
    *[(*OUTLET_METERED_STATUS, 7, outlet) for outlet in range(1, 25)],
    *[(*SYSTEM, n, 0) for n in (1, 2, 3, 5)],
    (*DEVICE_STATUS, 5, 1),
    (*DEVICE_STATUS, 9, 1),
]


def config(port: int, member: FleetDevice, version: str) -> SnmpConfig:
    snmp: dict[str, Any] = {"host": "127.0.0.1", "port": port, "timeout_s": 5, "retries": 0}
    if version == "v2c":
        return SnmpConfig.model_validate({**snmp, "community": member.community})
    v3 = {
        "user": BENCH_V3_USER,
        "auth_protocol": "sha256",
        "auth_key": BENCH_V3_AUTH_KEY,
        "priv_protocol": "aes128",
        "priv_key": BENCH_V3_PRIV_KEY,
        "context_name": member.community,
    }
    return SnmpConfig.model_validate({**snmp, "version": "v3", "v3": v3})


async def poll_loop(session: Session, request: list[Oid], deadline: float) -> int:
    polls = 0
    while time.monotonic() < deadline:
        answers = await session.get(request)
        if len(answers) != len(OIDS) or any(isinstance(a.value, Absent) for a in answers):
            raise RuntimeError(f"unexpected answer: {answers[:3]}...")
        polls += 1
    return polls


async def measure(
    name: str, host: SnmpHost, port: int, members: Sequence[FleetDevice], seconds: float
) -> dict[str, Any]:
    version = "v2c" if "v2c" in name else "v3"
    request = OIDS
    try:
        sessions = [await host.session(m.id, config(port, m, version)) for m in members]
        await asyncio.gather(*(s.get(request) for s in sessions))  # warm-up
        cpu0, wall0 = time.process_time(), time.monotonic()
        counts = await asyncio.gather(*(poll_loop(s, request, wall0 + seconds) for s in sessions))
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    finally:
        host.close()
    polls = sum(counts)
    return {
        "mode": name,
        "polls": polls,
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "polls_per_cpu_s": round(polls / cpu),
        "cpu_us_per_poll": round(cpu / polls * 1e6),
    }


async def main(args: argparse.Namespace) -> int:
    members = [m for m in fleet(args.devices * 2) if m.kind == "pdu"][: args.devices]
    agent = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.fast_agent",
        "--devices", str(args.devices * 2), "--v3",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert agent.stdout is not None
        port = json.loads(await agent.stdout.readline())["ports"][0]
        results = [
            await measure("v2c", SnmpHost(), port, members, args.seconds),
            await measure("v3 authPriv", SnmpHost(), port, members, args.seconds),
        ]
    finally:
        agent.terminate()
        await agent.wait()
    print(f"30-OID GET, {args.devices} devices polled concurrently, {args.seconds} s per mode")
    print(f"{'mode':<20} {'polls/CPU-s':>12} {'CPU µs/poll':>12} {'polls':>8}")
    for r in results:
        print(
            f"{r['mode']:<20} {r['polls_per_cpu_s']:>12} {r['cpu_us_per_poll']:>12} {r['polls']:>8}"
        )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    sys.exit(asyncio.run(main(parser.parse_args())))
