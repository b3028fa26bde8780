"""Every bundled scenario, played on the small site, seen through real SNMP clients.

The site runs in the test's event loop with a hand-driven clock; net-snmp
`snmpget` runs as a subprocess, and net-snmp `snmptrapd` receives the traps.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dcim.clock import ManualClock, SimClock
from dcim.inventory import load_config
from simulators.hall.model import PROBE_NOISE_C
from simulators.scenario import ScenarioError, ScenarioPlayer, load_scenario, parse_scenario
from simulators.site import Site
from tests.support.servers import require_binary
from tests.support.waiting import eventually

SITES = Path(__file__).resolve().parents[2] / "simulators" / "sites"
SCENARIOS = Path(__file__).resolve().parents[2] / "simulators" / "scenarios"


def need(binary: str) -> str:
    return require_binary(binary, f"/usr/sbin/{binary}", "apt-get install -y snmp snmptrapd")


@dataclass
class Rig:
    site: Site
    time: ManualClock

    def play(self, name: str) -> ScenarioPlayer:
        return ScenarioPlayer(self.site.model, load_scenario(name), self.site.clock.now())

    def at(self, player: ScenarioPlayer, seconds: float) -> None:
        """Move simulated time to `seconds` after the scenario started."""
        self.time.now = seconds
        player.advance(self.site.clock.now())

    async def get(self, device: str, oid: str) -> str:
        host, port, community = self.site.address_of(device)
        proc = await asyncio.create_subprocess_exec(
            need("snmpget"),
            "-v2c",
            "-c",
            community,
            "-On",
            "-Oqv",
            "-t",
            "1",
            "-r",
            "0",
            "-m",
            "",
            f"{host}:{port}",
            oid,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=20)
        if proc.returncode != 0:
            raise TimeoutError(err.decode().strip())
        return out.decode().strip()

    async def num(self, device: str, oid: str) -> float:
        return float(await self.get(device, oid))


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    need("snmpget")
    time = ManualClock(0.0)
    site = Site(load_config(SITES / "small-site.yaml"), clock=SimClock(now_fn=time), seed=3)
    await site.start(port=0)
    try:
        yield Rig(site, time)
    finally:
        site.stop()


UPS_SOURCE = "1.3.6.1.2.1.33.1.4.1.0"
UPS_MINUTES = "1.3.6.1.2.1.33.1.2.3.0"
RPDU2_PHASE_CURRENT = "1.3.6.1.4.1.318.1.1.26.6.3.1.5.{}"
RPDU2_BANK_STATE = "1.3.6.1.4.1.318.1.1.26.8.3.1.4.{}"
RPDU2_BANK_CURRENT = "1.3.6.1.4.1.318.1.1.26.8.3.1.5.{}"
RARITAN_POLE_CURRENT = "1.3.6.1.4.1.13742.6.5.2.4.1.4.1.1.{}.1"
RARITAN_OCP_TRIP_STATE = "1.3.6.1.4.1.13742.6.5.3.3.1.3.1.{}.15"
LIEBERT_RETURN_TENTHS = "1.3.6.1.4.1.476.1.42.3.4.1.3.3.1.50.2"
LIEBERT_CONDITIONS = "1.3.6.1.4.1.476.1.42.3.2.2.0"
UIO_TEMP = "1.3.6.1.4.1.318.1.1.25.1.2.1.6.{}.1"
UIO_CONTACT = "1.3.6.1.4.1.318.1.1.25.2.2.1.5.1.{}"
CLOSED, OPEN = "1", "2"


class TrapReceiver:
    """net-snmp snmptrapd on a free loopback UDP port, logging to a file."""

    def __init__(self, workdir: Path) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.log = workdir / "traps.log"
        self.conf = workdir / "snmptrapd.conf"
        self.conf.write_text("disableAuthorization yes\n")
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            need("snmptrapd"),
            "-f",
            "-n",
            "-On",
            "-C",
            "-c",
            str(self.conf),
            "-m",
            "",
            "-Lf",
            str(self.log),
            f"udp:127.0.0.1:{self.port}",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

        async def listening() -> bool:
            return self.log.exists() and "NET-SNMP version" in self.log.read_text()

        await eventually(listening, 15, "snmptrapd to start")

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()


@pytest.fixture
async def traps(tmp_path: Path) -> AsyncIterator[TrapReceiver]:
    receiver = TrapReceiver(tmp_path)
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


async def test_utility_outage_on_battery_then_generator_with_traps(
    rig: Rig, traps: TrapReceiver
) -> None:
    sender = rig.site.send_traps_to([("127.0.0.1", traps.port)])
    p = rig.play("utility-outage")
    rig.at(p, 30)
    assert await rig.get("ups-a", UPS_SOURCE) == "3"  # normal
    rig.at(p, 90)
    assert await rig.get("ups-a", UPS_SOURCE) == "5"  # battery
    first = await rig.num("ups-a", UPS_MINUTES)
    rig.at(p, 240)
    assert await rig.num("ups-a", UPS_MINUTES) < first
    assert await rig.num("crac-hall-1-1", LIEBERT_CONDITIONS) == 0
    rig.at(p, 330)  # generator on load
    assert await rig.get("ups-a", UPS_SOURCE) == "3"
    await sender.drain()

    async def got_both() -> bool:
        text = traps.text()
        return ".1.3.6.1.2.1.33.2.1" in text and ".1.3.6.1.2.1.33.2.4" in text

    await eventually(got_both, 10, "upsTrapOnBattery and upsTrapAlarmEntryRemoved")
    assert ".1.3.6.1.2.1.33.1.6.3.2" in traps.text()  # removed alarm: upsAlarmOnBattery


async def test_feed_a_loss_moves_load_to_b(rig: Rig) -> None:
    p = rig.play("feed-a-loss")
    rig.at(p, 30)
    a_before = await rig.num("pdu-hall-1-A01-a", RPDU2_PHASE_CURRENT.format(1))  # APC, feed A
    b_before = await rig.num("pdu-hall-1-A02-b", RPDU2_PHASE_CURRENT.format(1))  # APC, feed B
    raritan_b = await rig.num("pdu-hall-1-A01-b", RARITAN_POLE_CURRENT.format(1))
    assert a_before > 0
    rig.at(p, 120)
    assert await rig.num("pdu-hall-1-A01-a", RPDU2_PHASE_CURRENT.format(1)) == 0
    assert await rig.num("pdu-hall-1-A02-b", RPDU2_PHASE_CURRENT.format(1)) > 1.7 * b_before
    assert await rig.num("pdu-hall-1-A01-b", RARITAN_POLE_CURRENT.format(1)) > 1.7 * raritan_b
    rig.at(p, 17 * 60)
    assert await rig.num("pdu-hall-1-A01-a", RPDU2_PHASE_CURRENT.format(1)) > 0


async def test_crac_failure_heats_the_zone_then_settles(rig: Rig) -> None:
    p = rig.play("crac-failure")
    rig.at(p, 60)
    inlet_before = await rig.num("env-hall-1-A01", UIO_TEMP.format(1))
    return_before = await rig.num("crac-hall-1-1", LIEBERT_RETURN_TENTHS) / 10
    rig.at(p, 30 * 60)
    assert await rig.num("crac-hall-1-1", LIEBERT_CONDITIONS) == 1
    assert await rig.num("crac-hall-1-1", LIEBERT_RETURN_TENTHS) / 10 > return_before + 2
    assert await rig.num("env-hall-1-A01", UIO_TEMP.format(1)) >= inlet_before + 4
    rig.at(p, 100 * 60)
    assert abs(await rig.num("env-hall-1-A01", UIO_TEMP.format(1)) - inlet_before) <= 1


async def test_vesda_smoke_escalates_through_the_stages(rig: Rig) -> None:
    p = rig.play("vesda-smoke")
    relays = [UIO_CONTACT.format(n) for n in (1, 2, 3, 4)]  # Alert, Action, Fire1, Fire2

    async def closed() -> list[bool]:
        return [await rig.get("vesda-hall-1", oid) == CLOSED for oid in relays]

    rig.at(p, 30)
    assert await closed() == [False] * 4
    rig.at(p, 3 * 60)
    assert await closed() == [True, False, False, False]
    rig.at(p, 6 * 60)
    assert (await closed())[:2] == [True, True]
    rig.at(p, 9 * 60)
    assert await closed() == [True] * 4
    rig.at(p, 16 * 60)
    assert await closed() == [False] * 4
    view = rig.site.sources["vesda-hall-1"]
    assert view.value("sensor.smoke_level", {}) == "normal"


async def test_branch_overload_trips_the_breaker_and_traps(rig: Rig, traps: TrapReceiver) -> None:
    sender = rig.site.send_traps_to([("127.0.0.1", traps.port)])
    p = rig.play("branch-overload")
    rig.at(p, 30)
    assert await rig.get("pdu-hall-1-A01-a", RPDU2_BANK_STATE.format(1)) == "2"  # normal
    rig.at(p, 90)
    assert await rig.get("pdu-hall-1-A01-a", RPDU2_BANK_STATE.format(1)) == "4"  # overload
    assert await rig.num("pdu-hall-1-A01-a", RPDU2_BANK_CURRENT.format(1)) > 200  # > 20.0 A
    rig.at(p, 200)  # over a minute past the rating: tripped
    assert await rig.num("pdu-hall-1-A01-a", RPDU2_BANK_CURRENT.format(1)) == 0
    assert await rig.get("pdu-hall-1-A01-a", RPDU2_BANK_STATE.format(1)) == "1"  # lowLoad
    rig.at(p, 7 * 60)
    assert await rig.get("pdu-hall-1-A01-a", RPDU2_BANK_STATE.format(1)) == "2"
    await sender.drain()

    async def got_overload() -> bool:
        return ".1.3.6.1.4.1.318.0.276" in traps.text()

    await eventually(got_overload, 10, "the PDU overload trap")


async def test_raritan_breaker_trip_shows_as_open_protector(rig: Rig) -> None:
    rig.site.model.overload_branch("pdu-hall-1-A01-b", 2, 4500)
    rig.time.now += 180
    rig.site.sync()
    assert await rig.get("pdu-hall-1-A01-b", RARITAN_OCP_TRIP_STATE.format(2)) == "0"  # open
    assert await rig.get("pdu-hall-1-A01-b", RARITAN_OCP_TRIP_STATE.format(1)) == "1"


async def test_leak_and_door(rig: Rig) -> None:
    leak, door = rig.play("water-leak"), rig.play("door-open")
    assert await rig.get("leak-hall-1", UIO_CONTACT.format(1)) == OPEN
    assert await rig.get("door-hall-1-A01", UIO_CONTACT.format(1)) == CLOSED
    rig.at(leak, 120)
    door.advance(rig.site.clock.now())
    assert await rig.get("leak-hall-1", UIO_CONTACT.format(1)) == CLOSED
    assert await rig.get("door-hall-1-A01", UIO_CONTACT.format(1)) == OPEN
    rig.at(leak, 17 * 60)
    door.advance(rig.site.clock.now())
    assert await rig.get("leak-hall-1", UIO_CONTACT.format(1)) == OPEN
    assert await rig.get("door-hall-1-A01", UIO_CONTACT.format(1)) == CLOSED


async def test_sensor_sticks_drifts_drops_out_and_recovers(rig: Rig) -> None:
    p = rig.play("sensor-faults")
    view = rig.site.sources["env-hall-1-A01"]
    rig.at(p, 90)
    stuck = view.value("sensor.temp_c", {"position": "inlet"})
    rig.at(p, 9 * 60)
    assert view.value("sensor.temp_c", {"position": "inlet"}) == stuck
    assert rig.site.model.true_env("env-hall-1-A01").inlet_c != stuck  # the truth moved on
    rig.at(p, 29 * 60)
    drifted = view.value("sensor.temp_c", {"position": "inlet"})
    truth = rig.site.model.true_env("env-hall-1-A01").inlet_c
    assert isinstance(drifted, float)
    assert truth is not None
    # 6 °C/h for 19 min, give or take the probe's measurement noise (sd PROBE_NOISE_C)
    assert drifted - truth == pytest.approx(6.0 * 19 / 60, abs=5 * PROBE_NOISE_C)
    rig.at(p, 31 * 60)
    assert await rig.get("env-hall-1-A01", UIO_TEMP.format(1)) == "-1"
    assert view.value("sensor.temp_c", {"position": "inlet"}) is None
    rig.at(p, 41 * 60)
    assert float(await rig.get("env-hall-1-A01", UIO_TEMP.format(1))) > 10


async def test_silent_device_times_out_while_others_answer(rig: Rig) -> None:
    p = rig.play("device-silent")
    rig.at(p, 90)
    with pytest.raises(TimeoutError, match="Timeout"):
        await rig.get("ups-a", UPS_SOURCE)
    assert await rig.get("ups-b", UPS_SOURCE) == "3"
    assert rig.site.sources["ups-a"].value("ups.output_source", {}) is None
    rig.at(p, 12 * 60)
    assert await rig.get("ups-a", UPS_SOURCE) == "3"


def test_every_bundled_scenario_is_valid_and_fits_the_demo_site() -> None:
    demo = Site(load_config(SITES / "demo-site.yaml"))
    names = sorted(path.stem for path in SCENARIOS.glob("*.yaml"))
    assert len(names) >= 9
    for name in names:
        scenario = load_scenario(name)
        scenario.check(demo.topology)
        assert scenario.steps


def test_scenario_errors_name_the_line() -> None:
    text = """\
name: broken
steps:
  - {at: 1m, do: crac_fail}
  - at: soon
    do: crac_fail
  - {at: 2m, do: explode}
  - {at: 3m, do: smoke, obscuration: lots}
  - {at: 4m, do: feed_fail, feed: C, colour: red}
"""
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text, "broken.yaml")
    problems = err.value.problems
    assert "steps[1].at: 'soon' is not a duration (like 90, 90s, 5m, 1h) (line 4)" in problems[0]
    assert any("steps[2].do: 'explode' is not one of" in p and "(line 6)" in p for p in problems)
    assert any(
        "steps[3].obscuration: expected a number, got 'lots' (line 7)" in p for p in problems
    )
    assert any("takes no 'colour'" in p and "(line 8)" in p for p in problems)
    assert any("steps[4].feed: expected A or B, got 'C' (line 8)" in p for p in problems)


def test_scenario_with_unknown_device_is_refused_before_running() -> None:
    site = Site(load_config(SITES / "small-site.yaml"))
    scenario = parse_scenario(
        "steps:\n  - {at: 1, do: crac_fail, device: pdu-hall-1-A01-a}\n", "x.yaml"
    )
    with pytest.raises(ScenarioError, match=r"'pdu-hall-1-A01-a' is not a crac device .*line 2"):
        scenario.check(site.topology)
