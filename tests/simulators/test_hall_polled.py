"""Every device of the simulated hall, polled by the monitor's own collectors.

The small site runs in the test's event loop (its real pysnmp agents on UDP,
its Modbus gateway on TCP) with a hand-driven clock, so nothing moves between
a poll and the check. Every SNMP and Modbus device of the inventory gets its
collector from `CollectorFactory` (MQTT devices push, they are not polled here),
is polled once, and each reading is compared with the device's value source
`site.sources[device].value(metric, tags)` within the device's own resolution
(one count of the raw value its profile decodes). Then the bundled utility
outage and CRAC failure scenarios play (simulated minutes in one assignment)
and the polled values must follow the model again.

A few readings have no direct counterpart in the value sources; each such
case is listed in DERIVED with how its expected value is computed from them,
and any other reading the source cannot answer fails the test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import pytest

from collectors.modbus.profile import load_modbus_profile
from collectors.registry import CollectorFactory
from collectors.snmp.collector import SnmpCollector
from collectors.snmp.plan import plan_profile
from collectors.snmp.profile import SnmpProfile, load_snmp_profile, parse_snmp_profile
from dcim.clock import ManualClock, SimClock
from dcim.inventory import PlacedDevice, iter_devices, load_config
from dcim.reading import Reading, Value
from simulators.hall.thermal import relative_humidity_pct
from simulators.mibs.raritan_pdu2 import DIGITS as RARITAN_DIGITS
from simulators.scenario import ScenarioPlayer, load_scenario
from simulators.site import Site

ROOT = Path(__file__).resolve().parents[2]
SITE_FILE = ROOT / "simulators" / "sites" / "small-site.yaml"

#: A reading -> its expected value, or None when the model has none.
Expect = Callable[[Site, Reading], Value | None]


def _max_phase(metric: str) -> Expect:
    """A single-inlet PDU reports the inlet as its worst line (Raritan inletRmsCurrent)."""

    def expect(site: Site, r: Reading) -> Value | None:
        phases = [site.sources[r.device_id].value(metric, {"phase": str(p)}) for p in (1, 2, 3)]
        numbers = [float(v) for v in phases if isinstance(v, int | float)]
        return max(numbers) if numbers else None

    return expect


def _supply_rh(site: Site, r: Reading) -> Value | None:
    """Supply air holds the room's moisture (the coil runs dry): RH at supply temperature."""
    supply = site.sources[r.device_id].value("crac.supply_air_temp_c", {})
    if not isinstance(supply, float):
        return None
    room = site.topology.cracs[r.device_id].room
    return relative_humidity_pct(supply, site.model.room_dew_c(room))


#: Readings the value sources do not answer as such: (profile, metric) -> how the
#: expected value follows from what they do answer (and the model's physics). The
#: sources have no inlet rows and no supply humidity.
DERIVED: dict[tuple[str, str], Expect] = {
    ("liebert-gp", "crac.supply_humidity_pct"): _supply_rh,
    ("raritan-pdu2", "pdu.inlet_current_a"): _max_phase("pdu.phase_current_a"),
    ("raritan-pdu2", "pdu.inlet_voltage_v"): _max_phase("pdu.phase_voltage_v"),
}


#: Readings nothing in the model stands behind: (profile, metric) -> why. They are
#: counted, not compared; once the source answers one, the entry must go.
UNCHECKED: dict[tuple[str, str], str] = {
    ("sim-crac", "crac.humidity_setpoint_pct"): (
        "the hall model has no humidity setpoint: its view answers None and the "
        "Modbus unit serves 0 in holding register 2"
    ),
}


# --- each profile's resolution: how far a decoded value may be from the model ---


def _snmp_steps(profile: SnmpProfile) -> dict[str, float]:
    """metric -> one count of the raw value (scale, and decimal digits where the device says)."""
    steps: dict[str, float] = {}

    def add(metric: str, step: float) -> None:
        steps[metric] = max(steps.get(metric, 0.0), abs(step))

    for field in profile.scalars:
        add(field.metric, field.scale)
    for table in profile.tables:
        for field in table.columns:
            if field.divisor_oid or field.decimals_oid:
                raise AssertionError(f"{profile.name}: {field.metric}: no known divisor")
            add(field.metric, field.scale)
        for column in table.switched:
            for key, variant in column.variants.items():
                step = variant.scale
                if column.decimals_oid is not None:
                    # the simulated Raritan's digits per sensor type (select_index _type);
                    # a type it does not serve gives no reading to compare
                    assert profile.name == "raritan-pdu2", profile.name
                    if int(key) not in RARITAN_DIGITS:
                        continue
                    step *= 10.0 ** -RARITAN_DIGITS[int(key)]
                elif column.divisor_oid is not None:
                    raise AssertionError(f"{profile.name}: {variant.metric}: no known divisor")
                add(variant.metric, step)
    return steps


def _modbus_steps(name: str) -> dict[str, float]:
    steps: dict[str, float] = {}
    for field in load_modbus_profile(name).fields:
        # a float register carries the value itself: only float32's own precision
        step = 0.0 if field.type.value.startswith("float") else abs(field.scale)
        steps[field.metric] = max(steps.get(field.metric, 0.0), step)
    return steps


def resolution(placed: PlacedDevice) -> dict[str, float]:
    device = placed.device
    if device.modbus is not None:
        return _modbus_steps(device.profile)
    return _snmp_steps(load_snmp_profile(device.profile))


def matches(got: Value, want: Value, step: float) -> bool:
    if isinstance(want, bool) or isinstance(got, bool) or isinstance(want, str):
        return type(got) is type(want) and got == want
    if not isinstance(got, int | float) or not isinstance(want, int | float):
        return False
    # one count of the device's resolution (some round, some truncate, as UPS-MIB
    # minutes remaining do), plus float32's own precision
    tolerance = step + 1e-6 * max(abs(want), 1.0)
    return math.isclose(got, want, abs_tol=tolerance)


# --- the site and its collectors ---


@dataclasses.dataclass
class Hall:
    site: Site
    time: ManualClock
    devices: list[PlacedDevice]
    factory: CollectorFactory

    def at(self, seconds: float, *players: ScenarioPlayer) -> None:
        """Simulated time `seconds` after the start, applying the scenarios' due steps.

        Give only the players with steps still due: each one brings the model up
        to `seconds` after its steps.
        """
        self.time.now = seconds
        for player in players:
            player.advance(self.site.clock.now())
        self.site.sync()

    def play(self, name: str) -> ScenarioPlayer:
        return ScenarioPlayer(self.site.model, load_scenario(name), self.site.clock.now())

    async def poll_all(self) -> dict[str, list[Reading]]:
        async def one(placed: PlacedDevice) -> tuple[str, list[Reading]]:
            async with self.factory.build(placed) as collector:
                return placed.device.id, await collector.poll()

        results = await asyncio.gather(*(one(p) for p in self.devices))
        return dict(results)


def _served_at(site: Site, placed: PlacedDevice) -> PlacedDevice:
    """The inventory entry pointed at where the started site really serves it."""
    device = placed.device
    if device.snmp is not None:
        host, port, _ = site.address_of(device.id)
        snmp = device.snmp.model_copy(update={"host": host, "port": port, "timeout_s": 5.0})
        return dataclasses.replace(placed, device=device.model_copy(update={"snmp": snmp}))
    assert device.modbus is not None
    host, port, unit = site.modbus_address_of(device.id)
    modbus = device.modbus.model_copy(update={"host": host, "port": port, "unit_id": unit})
    return dataclasses.replace(placed, device=device.model_copy(update={"modbus": modbus}))


@pytest.fixture
async def hall() -> AsyncIterator[Hall]:
    time = ManualClock(0.0)
    site = Site(load_config(SITE_FILE), clock=SimClock(now_fn=time), seed=7)
    await site.start("127.0.0.1", 0)
    factory = CollectorFactory()
    try:
        polled = [
            _served_at(site, p)
            for p in iter_devices(site.config)
            if p.device.snmp is not None or p.device.modbus is not None
        ]
        yield Hall(site, time, polled, factory)
    finally:
        factory.close()
        await site.aclose()


# --- comparing a poll with the model ---


@dataclasses.dataclass
class Report:
    compared: Counter[str] = dataclasses.field(default_factory=Counter)
    derived: Counter[str] = dataclasses.field(default_factory=Counter)
    unchecked: Counter[str] = dataclasses.field(default_factory=Counter)
    problems: list[str] = dataclasses.field(default_factory=list)

    def lines(self, title: str) -> list[str]:
        out = [f"{title}: readings per profile: compared (of which derived), unchecked"]
        for profile in sorted(self.compared | self.unchecked):
            out.append(
                f"  {profile:16} {self.compared[profile]:5} ({self.derived[profile]:2})"
                f" {self.unchecked[profile]:3}"
            )
        out.append(f"  {'total':16} {self.compared.total():5} ({self.derived.total():2})"
                   f" {self.unchecked.total():3}")  # fmt: skip
        for (profile, metric), why in UNCHECKED.items():
            out.append(f"  unchecked {profile} {metric}: {why}")
        return out


def compare(hall: Hall, polled: Mapping[str, list[Reading]]) -> Report:
    report = Report()
    for placed in hall.devices:
        device = placed.device
        readings = polled[device.id]
        if not readings:
            report.problems.append(f"{device.id} ({device.profile}): no readings")
            continue
        steps = resolution(placed)
        source = hall.site.sources[device.id]
        for r in readings:
            derive = DERIVED.get((device.profile, r.metric))
            if derive is not None:
                want, how = derive(hall.site, r), "derived"
            else:
                want, how = source.value(r.metric, r.tags), "source"
            extra = {k: v for k, v in r.tags.items() if k not in placed.tags}
            where = f"{device.id} ({device.profile}) {r.metric} {extra}"
            if (device.profile, r.metric) in UNCHECKED:
                if want is not None:
                    report.problems.append(f"{where}: the model answers now, drop UNCHECKED")
                report.unchecked[device.profile] += 1
                continue
            if want is None:
                report.problems.append(f"{where}: polled {r.value!r}, the model has no value")
                continue
            if not matches(r.value, want, steps.get(r.metric, 0.0)):
                report.problems.append(f"{where}: polled {r.value!r}, model {want!r} ({how})")
                continue
            report.compared[device.profile] += 1
            if how == "derived":
                report.derived[device.profile] += 1
    return report


def check(report: Report, title: str) -> None:
    print("\n".join(report.lines(title)))
    assert not report.problems, "\n".join([*report.problems, *report.lines(title)])


def value_of(polled: Mapping[str, list[Reading]], device: str, metric: str, **tags: str) -> Value:
    found = [
        r.value
        for r in polled[device]
        if r.metric == metric and all(r.tags.get(k) == v for k, v in tags.items())
    ]
    assert len(found) == 1, f"{device} {metric} {tags}: {found}"
    return found[0]


def number_of(polled: Mapping[str, list[Reading]], device: str, metric: str, **tags: str) -> float:
    value = value_of(polled, device, metric, **tags)
    assert not isinstance(value, bool), value
    assert isinstance(value, int | float), value
    return float(value)


# --- the tests ---


async def test_every_device_polled_matches_the_model(hall: Hall) -> None:
    kinds = Counter(p.device.kind.value for p in hall.devices)
    protocols = Counter("modbus" if p.device.modbus else "snmp" for p in hall.devices)
    # the site as the inventory describes it: every kind, both polled protocols
    assert kinds == {"ups": 2, "pdu": 8, "crac": 2, "sensor": 7, "meter": 1}, kinds
    assert protocols == {"snmp": 18, "modbus": 2}, protocols

    hall.at(0)
    polled = await hall.poll_all()
    report = compare(hall, polled)
    check(report, "steady state")
    for profile in ("ups-mib-rfc1628", "apc-rpdu2", "raritan-pdu2", "liebert-gp", "apc-uio",
                    "sim-crac", "sim-power-meter"):  # fmt: skip
        assert report.compared[profile] > 0, profile

    # every table kind came through with its own row tags
    pdu = "pdu-hall-1-A01-a"
    assert {r.tags.get("outlet") for r in polled[pdu] if r.metric == "pdu.outlet_power_w"} == {
        str(n) for n in range(1, 25)
    }
    assert {r.tags.get("phase") for r in polled[pdu] if r.metric == "pdu.phase_current_a"} == {
        "1",
        "2",
        "3",
    }
    # ratings from the MIBs' own rating objects, as the site's rated_a / breaker_a tags say
    # (APC rPDU2: whole amps; Raritan PDU2: text such as "32A"), one per branch current
    for device in ("pdu-hall-1-A01-a", "pdu-hall-1-A01-b"):  # apc-rpdu2, raritan-pdu2
        assert number_of(polled, device, "pdu.rated_current_a") == 32.0
        ratings = {
            r.tags["branch"]: r.value for r in polled[device] if r.metric == "pdu.branch_rating_a"
        }
        branches = {r.tags["branch"] for r in polled[device] if r.metric == "pdu.branch_current_a"}
        assert ratings == dict.fromkeys(branches, 20.0), (device, ratings)
        assert len(ratings) == 6, (device, ratings)
    assert number_of(polled, "crac-hall-1-1", "crac.return_air_temp_c") > number_of(
        polled, "crac-hall-1-1", "crac.supply_air_temp_c"
    )
    env = "env-hall-1-A01"
    # the probe's own name is the label, and says where it sits
    assert number_of(polled, env, "sensor.temp_c", position="inlet", label=f"{env} Inlet") > 10
    assert number_of(polled, env, "sensor.temp_c", position="outlet") > number_of(
        polled, env, "sensor.temp_c", position="inlet"
    )
    assert value_of(polled, "door-hall-1-A01", "sensor.door_open") is False
    assert value_of(polled, "leak-hall-1", "sensor.leak_detected") is False
    # the four stage relays make one reading: the highest stage reached [F1]
    assert [(r.metric, r.value) for r in polled["vesda-hall-1"]] == [
        ("sensor.smoke_level", "normal")
    ]
    assert value_of(polled, env, "sensor.status", position="inlet") == "normal"
    # the point detector's one alarm contact, open: no smoke (and no VESDA stage reading)
    assert [(r.metric, r.value) for r in polled["smoke-hall-1-A02"]] == [
        ("sensor.smoke_detected", False)
    ]


async def test_polled_values_follow_an_outage_and_a_crac_failure(hall: Hall) -> None:
    hall.at(0)
    before = await hall.poll_all()
    check(compare(hall, before), "before")

    outage = hall.play("utility-outage")
    hall.at(3 * 60, outage)  # utility failed at 1 min, the generator starts at 5
    during = await hall.poll_all()
    check(compare(hall, during), "utility outage, 2 min on battery")
    for ups in ("ups-a", "ups-b"):
        assert value_of(before, ups, "ups.output_source") == "normal"
        assert value_of(during, ups, "ups.output_source") == "battery"
        assert number_of(during, ups, "ups.on_battery_s") >= 60
    assert value_of(during, "meter-1", "meter.voltage_v", scope="facility", phase="1") == 0

    start = 26 * 60  # utility back at 20 min, generator off at 21
    hall.at(start, outage)
    restored = await hall.poll_all()
    check(compare(hall, restored), "utility restored")
    for ups in ("ups-a", "ups-b"):
        assert value_of(restored, ups, "ups.output_source") == "normal"

    failure = hall.play("crac-failure")
    assert outage.done
    hall.at(start + 30 * 60, failure)  # CRAC 1 down for 28 min
    failed = await hall.poll_all()
    check(compare(hall, failed), "CRAC 1 failed 28 min ago")
    crac = "crac-hall-1-1"
    assert value_of(restored, crac, "crac.alarms_active") == 0
    assert value_of(failed, crac, "crac.alarms_active") == 1
    assert value_of(failed, crac, "crac.cooling_demand_pct") == 0
    assert number_of(restored, crac, "crac.cooling_demand_pct") > 0
    inlet = number_of(failed, "env-hall-1-A01", "sensor.temp_c", position="inlet")
    assert inlet > 2 + number_of(restored, "env-hall-1-A01", "sensor.temp_c", position="inlet")

    hall.site.model.set_door("door-hall-1-A02", True)
    hall.site.model.set_leak("leak-hall-1", True)
    hall.site.model.set_smoke("vesda-hall-1", 1.0, 0.0)  # fire1, not fire2
    hall.site.model.set_smoke("smoke-hall-1-A02", 1.0, 0.0)  # a point detector alarms at fire1
    hall.at(start + 31 * 60, failure)
    alarms = await hall.poll_all()
    check(compare(hall, alarms), "door open, leak, smoke at fire1")
    assert value_of(alarms, "door-hall-1-A02", "sensor.door_open") is True
    assert value_of(alarms, "leak-hall-1", "sensor.leak_detected") is True
    assert value_of(alarms, "vesda-hall-1", "sensor.smoke_level") == "fire1"
    assert value_of(failed, "smoke-hall-1-A02", "sensor.smoke_detected") is False
    assert value_of(alarms, "smoke-hall-1-A02", "sensor.smoke_detected") is True


# --- the label rules apc-uio relies on, decoded by the real collector code ---


def test_label_rules_pick_metric_and_tags_by_the_rows_own_name() -> None:
    profile = load_snmp_profile("apc-uio")
    plan = plan_profile(profile)
    contact = next(t for t in plan.tables if t.name == "contact")
    collector = SnmpCollector.__new__(SnmpCollector)
    collector._label_tags = {}  # only the label-rule cache is used here
    names = {
        "Server room door": {"_role": "door"},
        "Leak rope under CRAC": {"_role": "leak"},
        "VESDA Fire 2": {"_role": "smoke_stage", "_stage": "fire2"},
        "vesda-hall-1 Alert": {"_role": "smoke_stage", "_stage": "alert"},
        "Smoke detector": {"_role": "smoke"},
        "Generator running": {"_role": "contact"},
    }
    for name, want in names.items():
        assert dict(collector._tags_from_label(contact, name)) == want, name
    with pytest.raises(Exception, match="select_tag 'kind' is set by no label_rules"):
        parse_snmp_profile(
            """
name: t
kind: sensor
tables:
  - name: x
    label_oid: 1.3.6.1.1
    label_rules: [{match: door, tags: {_role: door}}]
    switched:
      - oid: 1.3.6.1.2
        select_tag: kind
        variants: {door: {metric: sensor.door_open, type: bool}}
""",
            "t.yaml",
        )
