"""A whole site on SNMP, Modbus and MQTT at once, checked by clients nobody here wrote.

mbpoll reads every register a device's Modbus profile documents and the test
decodes it (type, word order, scale) and compares it with the device's value
source; mosquitto_sub, on a Mosquitto broker the test starts, receives the
sensors' messages; scenarios change what snmpget, mbpoll and mosquitto_sub see
together, because all three front ends read one hall model. Time is driven by
hand (a scenario's half hour is one assignment), so nothing waits on the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import struct
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from collectors.modbus.profile import ModbusField, load_modbus_profile
from dcim.clock import ManualClock, SimClock
from dcim.inventory import load_config
from dcim.reading import Value
from simulators.scenario import ScenarioPlayer, load_scenario, parse_scenario
from simulators.site import Site
from simulators.source import ValueSource
from tests.support.mosquitto_server import Mosquitto, binary_or_skip
from tests.support.servers import require_binary

ROOT = Path(__file__).resolve().parents[2]
SITES = ROOT / "simulators" / "sites"

UPS_SOURCE = "1.3.6.1.2.1.33.1.4.1.0"  # upsOutputSource: 3 normal, 5 battery
LIEBERT_RETURN_TENTHS = "1.3.6.1.4.1.476.1.42.3.4.1.3.3.1.50.2"
UIO_CONTACT_1 = "1.3.6.1.4.1.318.1.1.25.2.2.1.5.1.1"  # 1 closed, 2 open
LEAK_WET, LEAK_DRY = "1", "2"  # the rope's contact closes on water
CRAC_FAULT, CRAC_COOLING = 7, 2  # sim-crac operating mode codes


def need(binary: str, package: str) -> str:
    return require_binary(binary, f"/usr/sbin/{binary}", f"apt-get install -y {package}")


async def run(*argv: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=20)
    return proc.returncode or 0, out.decode()


@dataclass
class Rig:
    site: Site
    time: ManualClock

    def at(self, player: ScenarioPlayer, seconds: float) -> None:
        """Move simulated time to `seconds` after the scenario started."""
        self.time.now = seconds
        player.advance(self.site.clock.now())

    def play(self, text: str) -> ScenarioPlayer:
        scenario = parse_scenario(text, "test.yaml")
        scenario.check(self.site.topology)
        return ScenarioPlayer(self.site.model, scenario, self.site.clock.now())

    async def snmp(self, device: str, oid: str) -> str:
        host, port, community = self.site.address_of(device)
        code, out = await run(
            need("snmpget", "snmp"),
            *("-v2c", "-c", community, "-On", "-Oqv", "-t", "1", "-r", "0", "-m", ""),
            f"{host}:{port}",
            oid,
        )
        assert code == 0, out
        return out.strip()

    async def registers(self, device: str, table: str, start: int, count: int) -> list[int]:
        """Raw 16-bit words (or bits) from wire address `start`, read by mbpoll."""
        host, port, unit = self.site.modbus_address_of(device)
        kind = {"coils": "0", "discrete_inputs": "1", "input": "3", "holding": "4"}[table]
        code, out = await run(
            need("mbpoll", "mbpoll"),
            *("-m", "tcp", "-p", str(port), "-a", str(unit), "-1", "-o", "2", "-0"),
            *("-t", kind, "-r", str(start), "-c", str(count), host),
        )
        assert code == 0, out
        found = {int(m[1]): int(m[2]) for m in re.finditer(r"^\[(\d+)\]:\s+(\d+)", out, re.M)}
        assert sorted(found) == list(range(start, start + count)), out
        return [found[a] for a in range(start, start + count)]


@contextlib.asynccontextmanager
async def small_site(mqtt_url: str | None = None) -> AsyncIterator[Rig]:
    time = ManualClock(0.0)
    site = Site(load_config(SITES / "small-site.yaml"), clock=SimClock(now_fn=time), seed=3)
    await site.start(port=0, mqtt_url=mqtt_url, mqtt_interval_s=0.2)
    try:
        yield Rig(site, time)
    finally:
        await site.aclose()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async with small_site() as started:
        yield started


@pytest.fixture
async def mqtt_rig(mosquitto: Mosquitto) -> AsyncIterator[Rig]:
    async with small_site(mosquitto.url) as started:
        yield started


# --- decoding what mbpoll read, per the profile (independently of the collector) ---


def _number(field: ModbusField, order: str, words: list[int]) -> float:
    kind = field.type.value
    if kind in ("uint16", "int16"):
        raw: float = struct.unpack(">h" if kind == "int16" else ">H", struct.pack(">H", words[0]))[
            0
        ]
    else:
        hi, lo = (words[1], words[0]) if (field.order or order) == "CDAB" else (words[0], words[1])
        packed = struct.pack(">HH", hi, lo)
        raw = struct.unpack(">f" if kind == "float32" else ">I", packed)[0]
    return raw * field.scale + field.offset


def expected_word(field: ModbusField, source: ValueSource) -> int | None:
    """The alarm word or enum code the field must hold now; None if not a code field."""
    if field.flags:
        bits = [
            b
            for b, name in field.flags.items()
            if source.value(field.metric, {**field.tags, field.flag_tag: name})
        ]
        return sum(1 << b for b in bits)
    if field.enum:
        value = source.value(field.metric, field.tags)
        return next(int(code) for code, name in field.enum.items() if name == value)
    return None


async def check_profile(rig: Rig, device: str, profile_name: str) -> int:
    """Every register field of the device's map, read by mbpoll, against its source."""
    profile = load_modbus_profile(profile_name)
    source = rig.site.sources[device]
    checked = 0
    for table in ("input", "holding"):
        fields = [f for f in profile.fields if f.function == table]
        if not fields:
            continue
        base = profile.address_base
        start = min(f.address for f in fields) - base
        end = (
            max(f.address + (2 if f.type.value in ("uint32", "float32") else 1) for f in fields)
            - base
        )
        words = await rig.registers(device, table, start, end - start)
        for f in fields:
            at = f.address - base - start
            chunk = words[at : at + 2]
            code = expected_word(f, source)
            value: Value | None = source.value(f.metric, f.tags)
            where = f"{device} {table} {f.address} {f.metric} {dict(f.tags)}"
            if code is not None:
                assert chunk[0] == code, where
            elif value is None:
                if f.missing:
                    assert chunk[0] == f.missing[0], where
            else:
                assert isinstance(value, int | float), where
                got = _number(f, profile.order.value, chunk)
                tolerance = (
                    abs(f.scale) / 2 + 1e-9
                    if f.type.value != "float32"
                    else abs(float(value)) * 1e-6
                )
                assert got == pytest.approx(float(value), abs=tolerance + 1e-6), where
            checked += 1
    for table in ("coils", "discrete_inputs"):
        for f in (f for f in profile.fields if f.function == table):
            bit = (await rig.registers(device, table, f.address - profile.address_base, 1))[0]
            assert bit == int(bool(source.value(f.metric, f.tags))), f"{device} {table} {f.metric}"
            checked += 1
    return checked


class Subscriber:
    """mosquitto_sub -v on the site's topics, read line by line as messages arrive."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.seen: dict[str, list[str]] = {}

    @classmethod
    async def start(cls, mosquitto: Mosquitto, topic: str) -> Subscriber:
        sub = binary_or_skip("mosquitto_sub", "/usr/bin/mosquitto_sub")
        proc = await asyncio.create_subprocess_exec(
            sub, "-h", "127.0.0.1", "-p", str(mosquitto.port), "-t", topic, "-v",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return cls(proc)

    async def line(self) -> tuple[str, str]:
        assert self.proc.stdout is not None
        raw = (await self.proc.stdout.readline()).decode().rstrip("\n")
        assert raw, "mosquitto_sub ended"
        topic, _, payload = raw.partition(" ")
        self.seen.setdefault(topic, []).append(payload)
        return topic, payload

    async def until(self, topic: str, payload: str, within_s: float = 10) -> None:
        """Read until `payload` arrives on `topic`."""
        async with asyncio.timeout(within_s):
            while await self.line() != (topic, payload):
                pass

    async def next_json(
        self,
        topic: str,
        where: Callable[[dict[str, Any]], bool] = lambda _: True,
        within_s: float = 10,
    ) -> dict[str, Any]:
        """The next JSON message on `topic` that `where` accepts."""
        async with asyncio.timeout(within_s):
            while True:
                got, payload = await self.line()
                if got == topic and where(body := json.loads(payload)):
                    return dict(body)

    async def stop(self) -> None:
        # reaped here, so no transport is left for the garbage collector
        if self.proc.returncode is None:
            self.proc.terminate()
        await self.proc.wait()


# --- tests ---------------------------------------------------------------------


async def test_site_describes_snmp_modbus_and_unpublished_mqtt(rig: Rig) -> None:
    lines = rig.site.describe()
    host, port, _ = rig.site.modbus_address_of("crac-hall-1-2")
    assert f"modbus tcp:{host}:{port}: 2 unit(s)" in lines
    assert "  unit 1: meter-1 (sim-power-meter)" in lines
    assert "  unit 2: crac-hall-1-2 (sim-crac)" in lines
    assert any(line.startswith("mqtt: 4 sensor(s) NOT published") for line in lines)
    assert "  lab/hall-1/hall-1-B02/leak (+ /status): leak-hall-1-B02 (rack-leak-json)" in lines
    assert any(line.startswith("snmp udp:127.0.0.1:") for line in lines)


@pytest.mark.parametrize(
    ("device", "profile"), [("meter-1", "sim-power-meter"), ("crac-hall-1-2", "sim-crac")]
)
async def test_mbpoll_reads_the_documented_registers(rig: Rig, device: str, profile: str) -> None:
    rig.time.now = 3600  # an hour on: energy counters are no longer zero
    checked = await check_profile(rig, device, profile)
    assert checked >= 15


async def test_mbpoll_meter_floats_are_the_facility_power(rig: Rig) -> None:
    # the CDAB float of register 12 is the incomer's power, which is more than the IT power
    words = await rig.registers("meter-1", "input", 12, 2)
    facility = struct.unpack(">f", struct.pack(">HH", words[1], words[0]))[0]
    it_words = await rig.registers("meter-1", "input", 100, 2)
    it = struct.unpack(">f", struct.pack(">HH", it_words[1], it_words[0]))[0]
    assert facility == pytest.approx(rig.site.model.facility_w(), rel=1e-6)
    assert 1.1 < facility / it < 2.0  # a plausible PUE
    assert it == pytest.approx(sum(rig.site.model.rack_w.values()), rel=0.02)


async def test_crac_failure_shows_on_modbus_snmp_and_mqtt_together(
    mqtt_rig: Rig, mosquitto: Mosquitto
) -> None:
    rig = mqtt_rig
    # the crac-failure timeline, aimed at the row-2 CRAC, which speaks Modbus
    text = (ROOT / "simulators/scenarios/crac-failure.yaml").read_text()
    text = text.replace("do: crac_fail}", "do: crac_fail, device: crac-hall-1-2}")
    text = text.replace("do: crac_restore}", "do: crac_restore, device: crac-hall-1-2}")
    sub = await Subscriber.start(mosquitto, "lab/#")
    try:
        p = rig.play(text)
        env = "lab/hall-1/hall-1-B01/env"
        before_inlet = (await sub.next_json(env))["temperature"]["inlet"]
        before_modbus = await rig.registers("crac-hall-1-2", "input", 0, 22)
        before_snmp = int(await rig.snmp("crac-hall-1-1", LIEBERT_RETURN_TENTHS))
        assert before_modbus[19] == CRAC_COOLING
        assert before_modbus[0] == before_snmp  # one room: both CRACs see the same return air

        rig.at(p, 20 * 60)  # 18 minutes after the failure
        during = await rig.registers("crac-hall-1-2", "input", 0, 22)
        assert during[19] == CRAC_FAULT
        assert during[20] == 1 << 5  # alarm word: fan_failure
        assert during[21] == 1  # alarms active
        assert (await rig.registers("crac-hall-1-2", "coils", 0, 1)) == [0]
        assert (await rig.registers("crac-hall-1-2", "discrete_inputs", 0, 1)) == [1]
        snmp_return = int(await rig.snmp("crac-hall-1-1", LIEBERT_RETURN_TENTHS))
        assert during[0] == snmp_return > before_snmp + 10  # >1 K warmer, the same on both
        inlet = rig.site.sources["env-hall-1-B01"].value("sensor.temp_c", {"position": "inlet"})
        assert isinstance(inlet, float)
        assert inlet > before_inlet + 2  # row 2 lost its cooling
        await sub.next_json(env, lambda b: b["temperature"]["inlet"] == round(inlet, 2))

        rig.at(p, 60 * 60)  # restored at 32 min, settled by 60
        after = await rig.registers("crac-hall-1-2", "input", 0, 22)
        assert after[19] == CRAC_COOLING
        assert after[20] == after[21] == 0
        settled = await sub.next_json(env, lambda b: b["temperature"]["inlet"] < before_inlet + 1)
        assert abs(settled["temperature"]["inlet"] - before_inlet) < 1
    finally:
        await sub.stop()


async def test_water_leak_shows_on_snmp_and_mqtt(mqtt_rig: Rig, mosquitto: Mosquitto) -> None:
    rig = mqtt_rig
    sub = await Subscriber.start(mosquitto, "lab/#")
    leak = "lab/hall-1/hall-1-B02/leak"
    try:
        p = rig.play(
            "name: leaks\nsteps:\n"
            "  - {at: 1m, do: leak, device: leak-hall-1}\n"
            "  - {at: 1m, do: leak, device: leak-hall-1-B02}\n"
            "  - {at: 10m, do: leak_clear, device: leak-hall-1}\n"
            "  - {at: 10m, do: leak_clear, device: leak-hall-1-B02}\n"
        )
        await sub.until(f"{leak}/status", "online")
        await sub.next_json(leak, lambda b: b["leak"] is False)
        assert await rig.snmp("leak-hall-1", UIO_CONTACT_1) == LEAK_DRY
        rig.at(p, 90)
        await sub.next_json(leak, lambda b: b["leak"] is True)
        assert await rig.snmp("leak-hall-1", UIO_CONTACT_1) == LEAK_WET
        rig.at(p, 11 * 60)
        await sub.next_json(leak, lambda b: b["leak"] is False)
        assert await rig.snmp("leak-hall-1", UIO_CONTACT_1) == LEAK_DRY
    finally:
        await sub.stop()


async def test_a_silent_modbus_unit_fails_as_a_gateway_target(rig: Rig) -> None:
    p = rig.play(
        "steps:\n  - {at: 1m, do: device_silent, device: crac-hall-1-2}\n  - {at: 5m, do: device_respond, device: crac-hall-1-2}\n"
    )
    rig.at(p, 120)
    host, port, unit = rig.site.modbus_address_of("crac-hall-1-2")
    code, out = await run(
        need("mbpoll", "mbpoll"),
        "-m",
        "tcp",
        "-p",
        str(port),
        "-a",
        str(unit),
        "-1",
        "-o",
        "2",
        "-t",
        "3",
        "-r",
        "1",
        "-c",
        "1",
        host,
    )
    assert code != 0
    assert "Target device failed to respond" in out, out  # Modbus exception 0x0B
    assert (await rig.registers("meter-1", "input", 18, 2)) == [0, 0x4248]  # meter: 50.0 Hz, CDAB
    rig.at(p, 6 * 60)
    assert len(await rig.registers("crac-hall-1-2", "input", 0, 1)) == 1


async def test_demo_site_ups_over_modbus_and_snmp_on_battery_together(mosquitto: Mosquitto) -> None:
    time = ManualClock(0.0)
    site = Site(load_config(SITES / "demo-site.yaml"), clock=SimClock(now_fn=time), seed=3)
    await site.start(port=0, mqtt_url=mosquitto.url, mqtt_interval_s=0.5)
    rig = Rig(site, time)
    sub = await Subscriber.start(mosquitto, "demo/+/+/+/status")
    try:
        # what one process serves for the demo site
        assert sum(len(a.communities) for a in site.agents) == 128
        assert sum(len(s.units) for s in site.modbus) == 4
        assert len(site.mqtt_sensors) == 44
        assert await check_profile(rig, "ups-b", "sim-ups") >= 25
        async with asyncio.timeout(10):
            while len(sub.seen) < 44:  # every sensor announces itself (retained online)
                await sub.line()
        assert all(v[-1] == "online" for v in sub.seen.values())

        p = ScenarioPlayer(site.model, load_scenario("utility-outage"), site.clock.now())
        # utility lost at 60 s; the demo site's generator is on load 25 s later
        rig.at(p, 70)
        assert await rig.snmp("ups-a", UPS_SOURCE) == "5"
        holding = await rig.registers("ups-b", "holding", 0, 31)
        assert holding[0] == 4  # output source: battery
        assert holding[29] & 1  # alarm word bit 0: on battery
        meter = await rig.registers("meter-1", "input", 12, 2)
        assert meter == [0, 0]  # no power through the incomer
        assert await check_profile(rig, "ups-b", "sim-ups") >= 25
    finally:
        await sub.stop()
        await site.aclose()


async def test_cli_serves_the_site_and_says_where(mosquitto: Mosquitto) -> None:
    sub = await Subscriber.start(mosquitto, "lab/+/+/+/status")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators.cli", "--site", str(SITES / "small-site.yaml"),
        "--port", "0", "--speed", "600", "--scenario", "door-open",
        "--mqtt-url", mosquitto.url, "--mqtt-interval", "0.2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(20):
            while not any("scenario door_open: door-hall-1-A01" in line for line in lines):
                line = (await proc.stdout.readline()).decode()
                assert line, "".join(lines)
                lines.append(line)
            while sum(v[-1:] == ["online"] for v in sub.seen.values()) < 4:
                await sub.line()
        proc.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop
        rest, _ = await asyncio.wait_for(proc.communicate(), timeout=20)
        assert proc.returncode == 0, rest.decode()
        # every sensor said goodbye: retained offline
        async with asyncio.timeout(10):
            while sum(v[-1:] == ["offline"] for v in sub.seen.values()) < 4:
                await sub.line()
    finally:
        await sub.stop()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    out = "".join(lines)
    assert re.search(r"^modbus tcp:127\.0\.0\.1:\d+: 2 unit\(s\)$", out, re.M), out
    assert "  unit 2: crac-hall-1-2 (sim-crac)" in out
    assert f"mqtt {mosquitto.url}: 4 sensor(s), JSON every 0.2 s" in out
    assert "  lab/hall-1/hall-1-B01/door (+ /status): door-hall-1-B01 (rack-door-json)" in out
    assert sorted(sub.seen) == [
        f"lab/hall-1/hall-1-B0{rack}/{kind}/status"
        for rack, kind in (("1", "door"), ("1", "env"), ("2", "env"), ("2", "leak"))
    ]
