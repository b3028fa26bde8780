"""The fast SNMP agent, queried by net-snmp tools, side by side with the pysnmp agent.

The same devices are served by both agents; what `snmpbulkwalk` / `snmpget`
print must be the same. Agents run in the test's loop; the tools run as
asyncio subprocesses so the loop keeps answering.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator

import pytest
from pysnmp.proto.rfc1902 import (
    Counter32,
    Counter64,
    Gauge32,
    Integer32,
    IpAddress,
    ObjectIdentifier,
    OctetString,
    TimeTicks,
)

from simulators.fast_agent import (
    FastAgent,
    SyntheticRackPdu,
    SyntheticSensorProbe,
    fleet,
    fleet_devices,
)
from simulators.mib import MibDevice, OidTable, TableBuilder
from simulators.snmp_agent import SnmpAgent, serve

pytestmark = pytest.mark.skipif(shutil.which("snmpbulkwalk") is None, reason="net-snmp missing")

FLAGS = ["-On", "-Oe", "-t", "1", "-r", "0", "-m", ""]
BASE = (1, 3, 6, 1, 4, 1, 99999, 1)


class AllTypes:
    """Every SMI type, a column with a gap, and a value bigger than one byte of length."""

    name = "types"

    def snapshot(self) -> OidTable:
        t = TableBuilder()
        t.scalar((*BASE, 1), Integer32(-2_000_000))
        t.scalar((*BASE, 2), OctetString(b"x" * 300))
        t.scalar((*BASE, 3), Counter32(2**32 - 1))
        t.scalar((*BASE, 4), Gauge32(42))
        t.scalar((*BASE, 5), TimeTicks(123456))
        t.scalar((*BASE, 6), IpAddress("10.1.2.3"))
        t.scalar((*BASE, 7), Counter64(2**64 - 1))
        t.scalar((*BASE, 8), ObjectIdentifier((1, 3, 6, 1, 4, 1, 318)))
        t.column((*BASE, 9, 1, 2))
        for row in (1, 2, 5):
            t.cell((*BASE, 9, 1, 2), (row,), Integer32(row * 10))
        return t.build()


class Silent:
    name = "silent"

    def snapshot(self) -> OidTable:
        raise RuntimeError("playing dead")


def devices() -> dict[str, MibDevice]:
    return {
        "types": AllTypes(),
        "pdu": SyntheticRackPdu("pdu-1", 3, clock=lambda: 5000.0),
        "probe": SyntheticSensorProbe("probe-1", 4, clock=lambda: 5000.0),
        "silent": Silent(),
    }


@pytest.fixture
async def agents() -> AsyncIterator[tuple[FastAgent, SnmpAgent]]:
    fast = FastAgent(devices())
    await fast.start("127.0.0.1", 0)
    slow = await serve(devices(), "127.0.0.1", 0)
    yield fast, slow
    fast.close()
    slow.close()


async def run(*argv: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("community", ["types", "pdu", "probe"])
@pytest.mark.parametrize("repetitions", ["1", "10", "60"])
async def test_snmpbulkwalk_prints_the_same_as_from_the_pysnmp_agent(
    agents: tuple[FastAgent, SnmpAgent], community: str, repetitions: str
) -> None:
    fast, slow = agents
    outputs = []
    for port in (fast.port, slow.port):
        code, out, err = await run(
            "snmpbulkwalk", "-v2c", "-c", community, f"-Cr{repetitions}", *FLAGS,
            f"127.0.0.1:{port}", ".1",
        )  # fmt: skip
        assert code == 0, err
        outputs.append(out)
    assert outputs[0] == outputs[1]
    assert outputs[0].count("\n") > 8


@pytest.mark.parametrize("version", ["-v1", "-v2c"])
async def test_snmpwalk_getnext_and_get_of_missing_things(
    agents: tuple[FastAgent, SnmpAgent], version: str
) -> None:
    fast, slow = agents
    for tool, oids in (
        ("snmpwalk", [".1.3.6.1.4.1.99999"]),
        ("snmpget", [f".{'.'.join(map(str, BASE))}.9.1.2.{r}" for r in (1, 3)]),
        ("snmpget", [".1.3.6.1.4.1.99999.1.1.0", ".1.3.6.1.4.1.12345.1.0"]),
    ):
        results = []
        for port in (fast.port, slow.port):
            results.append(
                await run(tool, version, "-c", "types", *FLAGS, f"127.0.0.1:{port}", *oids)
            )
        if tool == "snmpwalk" and version == "-v1":
            # SNMPv1 has no Counter64: we skip it (RFC 2576 4.1.2.1), pysnmp ends the walk there
            fast_lines, slow_lines = (r[1].splitlines() for r in results)
            assert fast_lines[: len(slow_lines) - 1] == slow_lines[:-1]
            assert not any("Counter64" in line for line in fast_lines)
            assert any(line.startswith(".1.3.6.1.4.1.99999.1.9.1.2.5 ") for line in fast_lines)
            continue
        assert results[0] == results[1], (tool, oids)
    code, out, _ = await run(
        "snmpget", version, "-c", "types", *FLAGS, f"127.0.0.1:{fast.port}",
        ".1.3.6.1.4.1.99999.1.9.1.2.3",
    )  # fmt: skip
    if version == "-v1":
        assert "noSuchName" in out or code != 0
    else:
        assert "No Such Instance" in out


async def test_unknown_community_and_silent_device_get_no_answer(
    agents: tuple[FastAgent, SnmpAgent],
) -> None:
    fast, _ = agents
    for community in ("nobody", "silent"):
        code, _, err = await run(
            "snmpget", "-v2c", "-c", community, "-t", "0.3", "-r", "0",
            f"127.0.0.1:{fast.port}", ".1.3.6.1.2.1.1.5.0",
        )  # fmt: skip
        assert code != 0
        assert "Timeout" in err
    assert fast.stats.dropped == 2


async def test_snapshots_are_cached_for_a_while() -> None:
    now = [100.0]
    calls = []

    class Counting(AllTypes):
        def snapshot(self) -> OidTable:
            calls.append(now[0])
            return super().snapshot()

    agent = FastAgent({"c": Counting()}, cache_s=1.0, clock=lambda: now[0])
    await agent.start()
    try:
        for step in (0.0, 0.5, 0.4, 0.2):
            now[0] += step
            code, out, err = await run(
                "snmpget", "-v2c", "-c", "c", *FLAGS, f"127.0.0.1:{agent.port}",
                ".1.3.6.1.4.1.99999.1.4.0",
            )  # fmt: skip
            assert code == 0, err
            assert "42" in out
    finally:
        agent.close()
    assert calls == [100.0, pytest.approx(101.1)]


async def test_one_process_serves_thousands_of_devices_on_several_ports() -> None:
    members = fleet(3000)
    agent = FastAgent(fleet_devices(members))
    ports = await agent.start("127.0.0.1", 0, ports=2)
    try:
        for device, port in ((members[0], ports[0]), (members[2999], ports[1])):
            code, out, err = await run(
                "snmpget", "-v2c", "-c", device.community, *FLAGS, f"127.0.0.1:{port}",
                ".1.3.6.1.2.1.1.5.0",
            )  # fmt: skip
            assert code == 0, err
            assert device.id in out
        code, out, err = await run(
            "snmpbulkwalk", "-v2c", "-c", members[5].community, *FLAGS,
            f"127.0.0.1:{ports[1]}", ".1.3.6.1.4.1.318.1.1.26.9.4.3.1.7",
        )  # fmt: skip
        assert code == 0, err
        assert out.count("\n") == SyntheticRackPdu.outlets
    finally:
        agent.close()


def test_fleet_mix() -> None:
    kinds = [d.kind for d in fleet(1000)]
    assert kinds.count("pdu") == 850
    assert kinds.count("sensor") == 100
    assert kinds.count("ups") == 50
    assert len({d.community for d in fleet(1000)}) == 1000
