"""The simulator's SNMP agent, queried by real clients: net-snmp tools and pysnmp.

The agent runs in the test's event loop; net-snmp tools run as asyncio
subprocesses, so the loop keeps answering while they wait. Simulated time is
driven by hand, so no test sleeps.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    get_cmd,
)

from dcim.clock import ManualClock, SimClock
from simulators.cli import run_simulate
from simulators.runner import UpsSimulator, UpsSpec, fleet, main
from simulators.snmp_agent import V3User, serve
from simulators.ups import UpsModel
from simulators.ups_mib import UpsDevice

pytestmark = pytest.mark.skipif(shutil.which("snmpwalk") is None, reason="net-snmp tools missing")

UPS = "1.3.6.1.2.1.33"
USER = V3User("dcim", "auth-secret-1", "priv-secret-1", "SHA-256", "AES")
# Numeric OIDs, bare values, raw timeticks; one second, no retries: fail fast.
FLAGS = ["-On", "-Oq", "-Ot", "-Oe", "-t", "1", "-r", "0", "-m", ""]


@dataclass
class Rig:
    sim: UpsSimulator
    time: ManualClock
    target: str


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    time = ManualClock(0.0)
    specs = [
        UpsSpec("ups1", 3000, 2700, lines=1, seed=1),
        UpsSpec("ups2", 10000, 9000, lines=3, seed=2),
    ]
    sim = UpsSimulator(specs, port=0, v3_users=[USER], clock=SimClock(now_fn=time))
    host, port = await sim.start()
    assert port > 0
    try:
        yield Rig(sim, time, f"{host}:{port}")
    finally:
        sim.stop()


async def run(*argv: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=20)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def parse(out: str) -> tuple[dict[str, str], list[str]]:
    """`-On -Oq` lines → {oid: value}, plus lines that are exceptions (endOfMibView...)."""
    values: dict[str, str] = {}
    exceptions: list[str] = []
    for line in out.splitlines():
        oid, _, value = line.partition(" ")
        if value.startswith(("No more variables", "No Such")):
            exceptions.append(line)
        else:
            values[oid.lstrip(".")] = value.strip().strip('"')
    return values, exceptions


EXPECTED_SCALARS = [
    *(f"{UPS}.1.1.{i}.0" for i in (1, 2, 3, 4, 5)),
    *(f"{UPS}.1.2.{i}.0" for i in range(1, 8)),
    f"{UPS}.1.3.1.0",
    f"{UPS}.1.3.2.0",
    f"{UPS}.1.4.1.0",
    f"{UPS}.1.4.2.0",
    f"{UPS}.1.4.3.0",
    f"{UPS}.1.6.1.0",
    *(f"{UPS}.1.9.{i}.0" for i in range(1, 11)),
]


async def test_snmpwalk_v2c_covers_the_ups_mib(rig: Rig) -> None:
    code, out, err = await run("snmpwalk", "-v2c", "-c", "ups1", *FLAGS, rig.target, UPS)
    assert code == 0, err
    values, exceptions = parse(out)
    # net-snmp prints endOfMibView when the agent's last OID is inside the subtree.
    assert len(exceptions) == 1
    assert exceptions[0].startswith(f".{UPS}.1.9.10.0 No more variables left in this MIB View")
    for oid in EXPECTED_SCALARS:
        assert oid in values, oid
    assert list(values) == sorted(values, key=lambda o: tuple(map(int, o.split("."))))

    def v(suffix: str) -> int:
        return int(values[f"{UPS}.1.{suffix}"])

    assert values[f"{UPS}.1.1.5.0"] == "ups1"
    assert v("2.1.0") == 2  # battery normal
    assert v("2.2.0") == 0
    assert 10 <= v("2.3.0") <= 60  # minutes
    assert v("2.4.0") == 100
    assert 530 <= v("2.5.0") <= 560  # 0.1 V: ~54.5 V float
    assert 18 <= v("2.7.0") <= 32
    assert v("3.2.0") == 1
    assert 495 <= v("3.3.1.2.1") <= 505  # 0.1 Hz
    assert 210 <= v("3.3.1.3.1") <= 250
    assert v("3.3.1.5.1") > 0
    assert v("4.1.0") == 3  # output source normal
    assert v("4.3.0") == 1
    assert 225 <= v("4.4.1.2.1") <= 235
    assert 500 <= v("4.4.1.4.1") <= 2700
    assert 10 <= v("4.4.1.5.1") <= 100
    assert v("6.1.0") == 0
    assert v("9.5.0") == 3000
    assert v("9.6.0") == 2700


async def test_snmpbulkwalk_matches_snmpwalk(rig: Rig) -> None:
    _, walked, _ = await run("snmpwalk", "-v2c", "-c", "ups2", *FLAGS, rig.target, UPS)
    code, out, err = await run(
        "snmpbulkwalk", "-v2c", "-c", "ups2", "-Cr7", *FLAGS, rig.target, "1.3.6.1.2.1"
    )
    assert code == 0, err
    bulk, exceptions = parse(out)
    walk, _ = parse(walked)
    assert len(exceptions) == 1  # trimmed after the first endOfMibView row
    assert {k for k in bulk if k.startswith(UPS)} == set(walk)
    assert bulk["1.3.6.1.2.1.1.5.0"] == "ups2"
    assert bulk[f"{UPS}.1.4.3.0"] == "3"
    for line in (1, 2, 3):
        assert 225 <= int(bulk[f"{UPS}.1.4.4.1.2.{line}"]) <= 235
        assert int(bulk[f"{UPS}.1.3.3.1.5.{line}"]) > 0
    assert f"{UPS}.1.4.4.1.2.4" not in bulk


async def test_get_of_missing_things(rig: Rig) -> None:
    code, out, _ = await run(
        "snmpget",
        "-v2c",
        "-c",
        "ups1",
        *FLAGS,
        rig.target,
        f"{UPS}.1.2.1.1",  # scalar with a bad instance
        f"{UPS}.1.4.4.1.2.9",  # output line 9 of a 1-line unit
        f"{UPS}.1.6.2.1.2.1",  # alarm row 1 while no alarm is present
        f"{UPS}.1.2",  # a subtree, not an object
        "1.3.6.1.4.1.9.9.9.0",  # not implemented at all
        f"{UPS}.1.2.1.0",
    )
    assert code == 0
    lines = out.splitlines()
    assert [line.split(" ", 1)[1] for line in lines[:5]] == [
        "No Such Instance currently exists at this OID",
        "No Such Instance currently exists at this OID",
        "No Such Instance currently exists at this OID",
        "No Such Object available on this agent at this OID",
        "No Such Object available on this agent at this OID",
    ]
    assert lines[5] == f".{UPS}.1.2.1.0 2"


async def test_v1_get_of_missing_instance_is_no_such_name(rig: Rig) -> None:
    code, _, err = await run("snmpget", "-v1", "-c", "ups1", *FLAGS, rig.target, f"{UPS}.1.2.1.1")
    assert code != 0
    assert "noSuchName" in err


async def test_set_is_refused(rig: Rig) -> None:
    code, _, err = await run(
        "snmpset", "-v2c", "-c", "ups1", *FLAGS, rig.target, "1.3.6.1.2.1.1.5.0", "s", "x"
    )
    assert code != 0
    assert "notWritable" in err


async def test_wrong_community_gets_no_answer(rig: Rig) -> None:
    code, out, err = await run(
        "snmpget", "-v2c", "-c", "nope", *FLAGS, rig.target, "1.3.6.1.2.1.1.5.0"
    )
    assert code != 0
    assert out == ""
    assert "Timeout" in err


async def test_v3_authpriv_sha256_aes_walk_per_context(rig: Rig) -> None:
    v3 = ["-v3", "-l", "authPriv", "-u", USER.name, "-a", "SHA-256", "-A", USER.auth_key]
    v3 += ["-x", "AES", "-X", str(USER.priv_key)]
    code, out, err = await run("snmpwalk", *v3, *FLAGS, rig.target, UPS)
    assert code == 0, err
    values, _ = parse(out)
    assert values[f"{UPS}.1.1.5.0"] == "ups1"  # empty context = first unit
    assert set(EXPECTED_SCALARS) <= set(values)

    code, out, err = await run("snmpget", *v3, "-n", "ups2", *FLAGS, rig.target, f"{UPS}.1.4.3.0")
    assert code == 0, err
    assert out.split() == [f".{UPS}.1.4.3.0", "3"]

    bad = [*v3[:-1], "wrong-priv-key"]
    code, _, err = await run("snmpget", *bad, *FLAGS, rig.target, f"{UPS}.1.4.3.0")
    assert code != 0


async def test_utility_failure_shows_in_the_walk(rig: Rig) -> None:
    rig.sim.set_utility(False, "ups2")
    rig.time.now += 300  # five simulated minutes on battery
    _, out, _ = await run("snmpwalk", "-v2c", "-c", "ups2", *FLAGS, rig.target, UPS)
    values, _ = parse(out)
    assert values[f"{UPS}.1.4.1.0"] == "5"  # battery
    assert values[f"{UPS}.1.2.2.0"] == "300"
    assert int(values[f"{UPS}.1.2.4.0"]) < 100
    assert values[f"{UPS}.1.3.1.0"] == "1"  # one input line bad event
    assert values[f"{UPS}.1.3.3.1.3.1"] == "0"
    assert values[f"{UPS}.1.6.1.0"] == "1"
    assert values[f"{UPS}.1.6.2.1.2.1"] == f".{UPS}.1.6.3.2"  # upsAlarmOnBattery
    assert values[f"{UPS}.1.6.2.1.3.1"] == "0"  # raised at sysUpTime 0
    _, out, _ = await run("snmpget", "-v2c", "-c", "ups2", *FLAGS, rig.target, "1.3.6.1.2.1.1.3.0")
    assert out.split()[1] == "30000"  # sysUpTime counts simulated time

    # The other unit is untouched; power back restores ups2.
    _, out, _ = await run("snmpget", "-v2c", "-c", "ups1", *FLAGS, rig.target, f"{UPS}.1.4.1.0")
    assert out.split()[1] == "3"
    rig.sim.set_utility(True, "ups2")
    rig.time.now += 1
    _, out, _ = await run(
        "snmpget", "-v2c", "-c", "ups2", *FLAGS, rig.target, f"{UPS}.1.4.1.0", f"{UPS}.1.6.1.0"
    )
    assert [line.split()[1] for line in out.splitlines()] == ["3", "0"]


async def test_pysnmp_client_gets_many_oids_in_one_pdu(rig: Rig) -> None:
    oids = [*EXPECTED_SCALARS, f"{UPS}.1.3.3.1.3.1", f"{UPS}.1.4.4.1.5.1"]
    assert len(oids) >= 20
    engine = SnmpEngine()
    try:
        host, port = rig.sim.agent.address
        error_indication, error_status, _, var_binds = await get_cmd(
            engine,
            CommunityData("ups1", mpModel=1),  # noqa: S508 - the simulator speaks v2c on purpose
            await UdpTransportTarget.create((host, port), timeout=2, retries=0),
            ContextData(),
            *(ObjectType(ObjectIdentity(oid)) for oid in oids),
            lookupMib=False,
        )
    finally:
        engine.close_dispatcher()
    assert error_indication is None
    assert int(error_status) == 0
    got = {str(name): value for name, value in var_binds}
    assert list(got) == oids
    assert int(got[f"{UPS}.1.9.6.0"]) == 2700
    assert got[f"{UPS}.1.4.1.0"].__class__.__name__ == "Integer"
    assert got[f"{UPS}.1.6.1.0"].__class__.__name__ == "Gauge32"
    assert got[f"{UPS}.1.3.1.0"].__class__.__name__ == "Counter32"


async def test_serve_reports_port_and_runs_beside_another_agent() -> None:
    clock = SimClock()
    one = await serve([UpsDevice("a", UpsModel(3000, 2700, seed=1), clock)], "127.0.0.1", 0)
    two = await serve({"public": UpsDevice("b", UpsModel(3000, 2700, seed=2), clock)})
    try:
        assert one.port != two.port
        _, out, _ = await run(
            "snmpget", "-v2c", "-c", "public", *FLAGS, f"127.0.0.1:{two.port}", "1.3.6.1.2.1.1.5.0"
        )
        assert out.split()[1] == '"b"'
    finally:
        one.close()
        two.close()


def test_fleet_naming() -> None:
    assert [s.community_name for s in fleet(1)] == ["public"]
    specs = fleet(4, "u")
    assert [s.community_name for s in specs] == ["u1", "u2", "u3", "u4"]
    assert [s.lines for s in specs] == [1, 1, 3, 1]
    assert len({s.seed for s in specs}) == 4


async def test_main_prints_where_each_unit_is(capsys: pytest.CaptureFixture[str]) -> None:
    await main("127.0.0.1", 0, 3, "rack", speed=60.0, duration=0)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == ["rack1", "rack2", "rack3"]
    assert "community=rack3" in lines[2]
    assert "(3-phase)" in lines[2]


def test_run_simulate_reports_a_taken_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        args = argparse.Namespace(host="127.0.0.1", port=port, count=1, speed=1.0, duration=0)
        assert run_simulate(args) == 1
    assert "cannot serve" in capsys.readouterr().err
