"""Profiles and identification proven on captures of real devices (LibreNMS's test data).

One snmpsim serves every capture in ../shared/peer-data/librenms/snmprec. For each,
the monitor identifies the device (sysObjectID, sysDescr and the tables that
answer), polls it with every chosen profile through the production client (the
fast SNMP client and SnmpCollector the monitor runs), and compares every value
LibreNMS expects for the classes below with the reading that came from the same
OID. What each capture must give lives in tests/profiles/captures/<name>.yaml:
the profiles identification must choose, the least share of comparable values
matched, and where LibreNMS's own value is wrong, why.

The test fails on any value that differs (a scaling error), on a wrong choice of
profiles, on a device under its own floor, and on less than 95 % matched in all.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from collectors.snmp.client import SnmpHost
from collectors.snmp.collector import SnmpCollector
from collectors.snmp.discovery import discover
from collectors.snmp.plan import plan_profile
from collectors.snmp.profile import load_snmp_profile
from dcim.inventory import DeviceConfig, PlacedDevice
from dcim.reading import Reading
from tests.support.snmpsim_server import PEER_DATA, Snmpsim, start_snmpsim

CAPTURES = Path(__file__).parent / "captures"

#: Sensor classes compared (LibreNMS names); state/count/airflow... are not.
COMPARED = {
    "power",
    "current",
    "voltage",
    "load",
    "runtime",
    "charge",
    "temperature",
    "humidity",
    "frequency",
}

#: Runtime is seconds in the vocabulary, minutes in LibreNMS.
CLASS_FACTORS = {"runtime": 1 / 60}

#: Share of all comparable values matched, over every capture.
OVERALL_FLOOR = 0.95


class CaptureSpec(BaseModel):
    """What one capture must give (tests/profiles/captures/<name>.yaml)."""

    model_config = ConfigDict(extra="forbid")

    #: The profiles identification must choose, the lead first.
    profiles: list[str] = Field(min_length=1)
    #: Least share of this device's comparable values matched.
    min_coverage: float = Field(ge=0, le=1)
    #: Sensor OID -> why LibreNMS's expected value is not what a correct monitor reads.
    librenms_mistakes: dict[str, str] = Field(default_factory=dict)
    #: LibreNMS class -> factor from the monitor's unit to the unit LibreNMS stored.
    unit_factors: dict[str, float] = Field(default_factory=dict)


def load_spec(name: str) -> CaptureSpec:
    path = CAPTURES / f"{name}.yaml"
    return CaptureSpec.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


@dataclass
class Expected:
    sensor_class: str
    oid: str
    descr: str
    value: float


@dataclass
class Outcome:
    device: str
    profile: str
    matched: int = 0
    #: Of the matched: read, but another profile's reading of the quantity was kept.
    superseded: int = 0
    missed: int = 0
    differing: int = 0
    excused: int = 0
    expected: int = 0

    @property
    def comparable(self) -> int:
        return self.expected - self.excused

    @property
    def coverage(self) -> float:
        return self.matched / self.comparable if self.comparable else 1.0


def expected_sensors(name: str) -> list[Expected]:
    data = json.loads((PEER_DATA / "expected" / f"{name}.json").read_text())
    sensors = data.get("sensors", {})
    poller = sensors.get("poller")
    polled: dict[tuple[str, str, str], float] = {}
    if isinstance(poller, dict):
        for sensor in poller.get("sensors", []):
            key = (sensor["sensor_class"], sensor["sensor_oid"], str(sensor["sensor_index"]))
            polled[key] = sensor["sensor_current"]
    out = []
    for sensor in sensors.get("discovery", {}).get("sensors", []):
        if sensor["sensor_class"] not in COMPARED:
            continue
        key = (sensor["sensor_class"], sensor["sensor_oid"], str(sensor["sensor_index"]))
        value = polled.get(key, sensor["sensor_current"])
        out.append(
            Expected(
                sensor["sensor_class"],
                sensor["sensor_oid"].lstrip("."),
                sensor["sensor_descr"],
                float(value),
            )
        )
    return out


def close(a: float, b: float) -> bool:
    """Equal within the rounding of either side (LibreNMS rounds to 2 decimals)."""
    return abs(a - b) <= 0.011 + 1e-4 * max(abs(a), abs(b))


def capture_names() -> list[str]:
    return sorted(path.stem for path in (PEER_DATA / "snmprec").glob("*.snmprec"))


@pytest.fixture(scope="module")
def snmpsim() -> Iterator[Snmpsim]:
    if not PEER_DATA.is_dir():
        reason = f"peer data not found at {PEER_DATA} (../shared beside the checkout)"
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{reason}; CI is set, so missing captures are a failure")
        pytest.skip(reason)
    server = start_snmpsim((PEER_DATA / "snmprec").glob("*.snmprec"), "sentry4")
    yield server
    server.stop()


async def poll_capture(
    server: Snmpsim, name: str, profile: str
) -> tuple[list[tuple[Reading, str]], list[tuple[Reading, str]]]:
    """One poll through the production client: (kept, superseded) readings with their OIDs."""
    config = server.config(name)
    spec = load_snmp_profile(profile)
    device = DeviceConfig.model_validate(
        {"id": name, "kind": spec.kind, "profile": profile, "snmp": config.model_dump()}
    )
    placed = PlacedDevice(device, "lab", "", "", "", MappingProxyType({"device": name}))
    host = SnmpHost()
    try:
        collector = SnmpCollector(placed, plan_profile(spec), host, config)
        async with collector:
            return await collector.poll_explained()
    finally:
        host.close()


def compare(
    name: str,
    profile: str,
    spec: CaptureSpec,
    kept: list[tuple[Reading, str]],
    superseded: list[tuple[Reading, str]],
) -> tuple[Outcome, list[str]]:
    by_source: dict[str, tuple[Reading, bool]] = {}
    for reading, source in kept:
        by_source.setdefault(source, (reading, False))
    for reading, source in superseded:
        by_source.setdefault(source, (reading, True))
    outcome = Outcome(name, profile)
    problems: list[str] = []
    for sensor in expected_sensors(name):
        outcome.expected += 1
        if sensor.oid in spec.librenms_mistakes:
            outcome.excused += 1
            continue
        found = by_source.get(sensor.oid)
        if found is None:
            outcome.missed += 1
            problems.append(
                f"missed {sensor.sensor_class} {sensor.oid} ({sensor.descr}) = {sensor.value}"
            )
            continue
        reading, was_superseded = found
        assert isinstance(reading.value, int | float), reading
        factor = spec.unit_factors.get(
            sensor.sensor_class, CLASS_FACTORS.get(sensor.sensor_class, 1.0)
        )
        ours = float(reading.value) * factor
        if close(ours, sensor.value):
            outcome.matched += 1
            outcome.superseded += was_superseded
        else:
            outcome.differing += 1
            problems.append(
                f"differs {sensor.sensor_class} {sensor.oid} ({sensor.descr}): "
                f"LibreNMS {sensor.value}, monitor {reading.metric}={reading.value} {reading.unit or ''}"
            )
    return outcome, problems


def coverage_table(outcomes: list[Outcome]) -> str:
    header = (
        f"{'device':22} {'profiles':44} {'matched':>7} {'(supers.)':>9} {'missed':>6} "
        f"{'differ':>6} {'excused':>7} {'expected':>8} {'cover':>6}"
    )
    lines = [header, "-" * len(header)]
    total = Outcome("all", "")
    for o in outcomes:
        lines.append(
            f"{o.device:22} {o.profile:44} {o.matched:>7} {o.superseded:>9} {o.missed:>6} "
            f"{o.differing:>6} {o.excused:>7} {o.expected:>8} {o.coverage:>6.0%}"
        )
        for attr in ("matched", "superseded", "missed", "differing", "excused", "expected"):
            setattr(total, attr, getattr(total, attr) + getattr(o, attr))
    lines.append("-" * len(header))
    lines.append(
        f"{'all ' + str(len(outcomes)):22} {'':44} {total.matched:>7} {total.superseded:>9} "
        f"{total.missed:>6} {total.differing:>6} {total.excused:>7} {total.expected:>8} "
        f"{total.coverage:>6.1%}"
    )
    return "\n".join(lines)


async def test_every_capture_is_identified_and_matches_librenms(snmpsim: Snmpsim) -> None:
    outcomes: list[Outcome] = []
    failures: list[str] = []
    for name in capture_names():
        spec = load_spec(name)
        found = await discover(snmpsim.config(name), poll=False)
        if list(found.profiles) != spec.profiles:
            failures.append(
                f"{name}: identified as {found.profile} ({found.reason}), want "
                f"{'+'.join(spec.profiles)}"
            )
            if not found.profiles:
                continue
        assert found.profile is not None
        kept, superseded = await poll_capture(snmpsim, name, found.profile)
        outcome, problems = compare(name, found.profile, spec, kept, superseded)
        outcomes.append(outcome)
        failures += [f"{name}: {problem}" for problem in problems if problem.startswith("differs")]
        if outcome.coverage < spec.min_coverage:
            missed = [p for p in problems if p.startswith("missed")]
            failures.append(
                f"{name}: coverage {outcome.coverage:.0%} below {spec.min_coverage:.0%}: "
                + "; ".join(missed)
            )
    table = coverage_table(outcomes)
    print("\n" + table)
    matched = sum(o.matched for o in outcomes)
    comparable = sum(o.comparable for o in outcomes)
    if comparable and matched / comparable < OVERALL_FLOOR:
        failures.append(f"all captures: {matched}/{comparable} matched, below {OVERALL_FLOOR:.0%}")
    assert not failures, "\n".join(failures)


async def test_no_reading_is_kept_twice(snmpsim: Snmpsim) -> None:
    """A device running several profiles keeps one reading per quantity and row."""
    for name in capture_names():
        spec = load_spec(name)
        profile = "+".join(spec.profiles)
        kept, _ = await poll_capture(snmpsim, name, profile)
        seen: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        for reading, source in kept:
            key = (reading.metric, tuple(sorted(reading.tags.items())))
            assert key not in seen, f"{name}: {reading.metric} twice: {seen[key]} and {source}"
            seen[key] = source


def test_every_capture_has_its_expectations() -> None:
    if not PEER_DATA.is_dir():
        pytest.skip(f"peer data not found at {PEER_DATA}")
    names = set(capture_names())
    specs = {path.stem for path in CAPTURES.glob("*.yaml")}
    assert names == specs, names ^ specs
    for name in sorted(specs):
        spec = load_spec(name)
        for profile in spec.profiles:
            load_snmp_profile(profile)  # every expected profile exists


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """`dcim` commands install a log handler on the (captured) stderr: take it off after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_poll_auto_json_names_oid_index_and_label(
    snmpsim: Snmpsim, capsys: pytest.CaptureFixture[str]
) -> None:
    from dcim.cli import main

    args = ["poll", "--host", "127.0.0.1", "--port", str(snmpsim.port)]
    code = main([*args, "--community", "eatonpdu_2", "--profile", "auto", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "profile eaton-epdu" in err
    lines = [json.loads(line) for line in out.splitlines()]
    outlet = next(r for r in lines if r["source"] == "snmp:1.3.6.1.4.1.534.6.6.7.6.4.1.3.0.1")
    assert outlet["metric"] == "pdu.outlet_current_a"
    assert outlet["value"] == pytest.approx(0.79)
    assert outlet["unit"] == "A"
    assert outlet["tags"]["index"] == "0.1"
    assert outlet["tags"]["outlet"] == "1"
    assert outlet["tags"]["label"] == "Power strip + s-rw-lab-rack"


def test_discover_prints_a_ready_inventory_entry(
    snmpsim: Snmpsim, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from dcim.cli import main
    from dcim.inventory import DeviceConfig

    code = main(["discover", "127.0.0.1", "--port", str(snmpsim.port), "--community", "sentry4"])
    out, err = capsys.readouterr()
    assert code == 0, err
    found = next(line for line in out.splitlines() if line.startswith("# found:"))
    assert found == "# found: 6 branch, 2 inlet, 6 line, 12 phase, 2 unit; 40 readings", found
    entry = yaml.safe_load(out)[0]
    assert entry["profile"] == "sentry4"
    assert entry["snmp"]["community"] == {"env": "DCIM_SNMP_COMMUNITY"}  # never the secret
    os.environ.setdefault("DCIM_SNMP_COMMUNITY", "x")
    DeviceConfig.model_validate(entry)  # pastes into an inventory as is


def test_wrong_community_is_named(snmpsim: Snmpsim, capsys: pytest.CaptureFixture[str]) -> None:
    from dcim.cli import main

    args = ["discover", "127.0.0.1", "--port", str(snmpsim.port), "--community", "nope"]
    code = main([*args, "--timeout", "0.3", "--retries", "0"])
    _, err = capsys.readouterr()
    assert code == 1
    assert "127.0.0.1" in err
    assert "community" in err


def test_choice_generalises_by_mib_and_falls_back_to_standard_mibs() -> None:
    from collectors.snmp.discovery import choose_profiles, shipped_profiles

    profiles = shipped_profiles()
    unknown = "1.3.6.1.4.1.99999.1"
    choice = choose_profiles(unknown, set(), profiles)
    assert choice.profiles == ()
    assert "unknown device" in choice.verdict
    assert "UPS-MIB" in choice.verdict
    assert "ENTITY-SENSOR-MIB" in choice.verdict
    # standard MIBs apply to any device that answers them, together
    choice = choose_profiles(unknown, {"1.3.6.1.2.1.33.1.2", "1.3.6.1.2.1.99.1.1"}, profiles)
    assert choice.names == ("ups-mib-rfc1628", "entity-sensor")
    # a vendor MIB answering under an unknown sysObjectID (OEM card, Linux controller)
    choice = choose_profiles(unknown, {"1.3.6.1.4.1.318.1.1.26.4"}, profiles)
    assert choice.names == ("apc-rpdu2",)
    assert "vendor MIB" in choice.reasons[0]
    # one APC sysObjectID, four product families: the answering subtree decides
    apc = "1.3.6.1.4.1.318.1.3.4.99"
    for subtree, name in [
        ("1.3.6.1.4.1.318.1.1.26.4", "apc-rpdu2"),
        ("1.3.6.1.4.1.318.1.1.1", "apc-ups"),
        ("1.3.6.1.4.1.318.1.1.27.1.4.1", "apc-cooling"),
        ("1.3.6.1.4.1.318.1.1.10.3.13", "apc-ems"),
    ]:
        choice = choose_profiles(apc, {subtree}, profiles)
        assert choice.names[:1] == (name,), choice
    # a UPS card with probes is two profiles, the UPS leading
    choice = choose_profiles(apc, {"1.3.6.1.4.1.318.1.1.1", "1.3.6.1.4.1.318.1.1.25.1.2"}, profiles)
    assert choice.names == ("apc-ups", "apc-uio")
    # a standard MIB's probe inside a vendor profile claims no foreign device
    choice = choose_profiles(unknown, {"1.3.6.1.2.1.33.1.2"}, profiles)
    assert choice.names == ("ups-mib-rfc1628",)
