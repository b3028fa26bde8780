"""Profiles and discovery proven on captures of real devices (LibreNMS's test data).

One snmpsim serves every capture in ../shared/peer-data/librenms/snmprec; for each,
the monitor discovers the device (sysObjectID + probing, over UDP), polls it with
the real SnmpCollector and compares every value LibreNMS expects for the classes
below with the reading that came from the same OID. The test fails on any
difference, on a wrong profile, and on coverage below the per-device threshold.

snmpsim drops root privileges to `nobody` and must then still import its own
standard library: a pyenv Python under root's home cannot, so it runs from a
virtual environment made with the distribution's /usr/bin/python3
(`.venv-snmpsim/` in the checkout, created on first use, git-ignored).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pysnmp.hlapi.v3arch.asyncio import (  # only for the readiness probe
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    get_cmd,
)
from servers import stop_process
from snmpd import free_udp_port

from collectors.profile import load_snmp_profile
from collectors.snmp.client import SnmpEngineHost
from collectors.snmp.collector import SnmpCollector
from collectors.snmp.discovery import discover
from collectors.snmp.plan import plan_profile
from dcim.inventory import DeviceConfig, PlacedDevice, SnmpConfig
from dcim.reading import Reading

# --- snmpsim serving recorded devices ---------------------------------------

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv-snmpsim"
SYSTEM_PYTHON = "/usr/bin/python3"
PACKAGES = ("snmpsim>=1.1", "pysmi>=1.4")
START_TIMEOUT_S = 60.0


class SnmpsimUnavailable(RuntimeError):
    """snmpsim cannot be set up here (no system Python, no venv module, no network)."""


def responder_binary() -> Path:
    """snmpsim-command-responder, installing it into .venv-snmpsim when missing."""
    binary = VENV / "bin" / "snmpsim-command-responder"
    if binary.exists():
        return binary
    if not Path(SYSTEM_PYTHON).exists():
        raise SnmpsimUnavailable(f"{SYSTEM_PYTHON} not found (apt-get install python3-venv)")
    try:
        subprocess.run(
            [SYSTEM_PYTHON, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=120
        )
        subprocess.run(
            [str(VENV / "bin" / "pip"), "install", "--quiet", *PACKAGES],
            check=True,
            capture_output=True,
            timeout=600,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(VENV, ignore_errors=True)
        out = getattr(exc, "stderr", b"") or b""
        raise SnmpsimUnavailable(
            f"cannot create {VENV}: {out.decode(errors='replace')[-800:]}"
        ) from None
    return binary


class Snmpsim:
    """One snmpsim process serving the given captures; community = file base name."""

    def __init__(self, captures: Iterable[Path]) -> None:
        self.captures = sorted(captures)
        self.port = 0
        # world-readable: snmpsim reads the data as `nobody` (pytest's tmp dirs are 0700)
        self.workdir = Path(tempfile.mkdtemp(prefix="dcim-snmpsim-"))
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = responder_binary()
        data, cache = self.workdir / "data", self.workdir / "cache"
        data.mkdir()
        cache.mkdir()
        for capture in self.captures:
            shutil.copy(capture, data / capture.name)
        for path in (self.workdir, data, *data.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)
        cache.chmod(0o777)  # the dropped-privilege process writes its index here
        self.port = free_udp_port()
        args = [
            str(binary),
            f"--data-dir={data}",
            f"--cache-dir={cache}",
            f"--agent-udpv4-endpoint=127.0.0.1:{self.port}",
        ]
        if os.geteuid() == 0:
            args += ["--process-user=nobody", "--process-group=nogroup"]
        log = (self.workdir / "snmpsim.log").open("wb")
        self._proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

    async def wait_ready(self, community: str) -> None:
        """Return once snmpsim answers a GET for `community` (it indexes files first)."""
        engine = SnmpEngine()
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while time.monotonic() < deadline:
                if self._proc is not None and self._proc.poll() is not None:
                    raise RuntimeError(f"snmpsim exited:\n{self.log()[-2000:]}")
                target = await UdpTransportTarget.create(
                    ("127.0.0.1", self.port), timeout=1, retries=0
                )
                error, _, _, _ = await get_cmd(
                    engine,
                    CommunityData(community),
                    target,
                    ContextData(),
                    ObjectType(ObjectIdentity("1.3.6.1.2.1.1.2.0")),
                )
                if not error:
                    return
            raise TimeoutError(
                f"snmpsim did not answer within {START_TIMEOUT_S:.0f}s:\n{self.log()}"
            )
        finally:
            engine.close_dispatcher()

    def log(self) -> str:
        path = self.workdir / "snmpsim.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        stop_process(proc)
        shutil.rmtree(self.workdir, ignore_errors=True)


# --- the comparison ---------------------------------------------------------

CANDIDATES = (
    REPO.parent / "shared" / "peer-data" / "librenms",
    Path("/work/shared/peer-data/librenms"),
)
PEER_DATA = next((path for path in CANDIDATES if path.is_dir()), CANDIDATES[0])

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

#: capture -> (profile discovery must choose, minimum share of comparable values matched)
DEVICES: dict[str, tuple[str, float]] = {
    "apc_smt750x-nmc2": ("apc-ups", 1.0),
    "apc_ap8959eu3": ("apc-rpdu2", 1.0),
    "apc_inrow-dx": ("apc-cooling", 1.0),
    "aos-emu2_ap9320": ("apc-ems", 1.0),
    "netagent2": ("megatec-netagent", 1.0),
    "eaton-mgeups_9px": ("eaton-mge-ups", 1.0),
    "eatonpdu_2": ("eaton-epdu", 1.0),
    "raritan-pdu_px2-temp": ("raritan-pdu2", 1.0),
    "sentry4": ("sentry4", 1.0),
    "sentry3": ("sentry3", 1.0),
    "liebert": ("liebert-pdu", 1.0),
    "vertiv-pdu_mn03edr1": ("vertiv-geist-pdu", 1.0),
    "schleifenbauer": ("schleifenbauer-spdm", 1.0),
    "stulz_wib8000": ("stulz-wib8000", 1.0),
    "akcp_serverprobe8": ("akcp-sensorprobe", 1.0),
    "sensatronics-ittm": ("sensatronics", 1.0),
    "deltaups": ("ups-mib-rfc1628", 1.0),
    "netmanplus_204": ("ups-mib-rfc1628", 1.0),
}

#: (capture, sensor OID) -> why LibreNMS's expected value is not what a correct monitor reads.
LIBRENMS_MISTAKES: dict[tuple[str, str], str] = {
    **{
        ("apc_inrow-dx", f"1.3.6.1.4.1.318.1.1.27.1.4.1.2.1.3.1.{row}"): (
            "no value in the capture (probe not connected); LibreNMS shows 0 °C"
        )
        for row in (34, 36, 40)
    },
    **{
        ("liebert", f"1.3.6.1.4.1.476.1.42.3.8.40.20.1.150.1.{branch}"): (
            "current available before the branch alarm: a headroom, not a measurement"
        )
        for branch in (1, 2, 3)
    },
    **{
        ("akcp_serverprobe8", f"1.3.6.1.4.1.3854.1.2.2.1.17.1.13.{port}"): (
            "probe offline (Online column 2): LibreNMS reads a stale raw column"
        )
        for port in (1, 2, 3, 4, 5)
    },
}

#: (capture, sensor class) -> factor from the monitor's unit to the unit LibreNMS stored.
UNIT_FACTORS: dict[tuple[str, str], float] = {
    ("apc_inrow-dx", "power"): 1 / 1000,  # LibreNMS keeps the unit's kW
}

#: Runtime is seconds in the vocabulary, minutes in LibreNMS.
CLASS_FACTORS = {"runtime": 1 / 60}


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
    missed: int = 0
    differing: int = 0
    excused: int = 0
    expected: int = 0

    @property
    def coverage(self) -> float:
        comparable = self.expected - self.excused
        return self.matched / comparable if comparable else 1.0


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


def _on_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def snmpsim() -> Iterator[Snmpsim]:
    if not PEER_DATA.is_dir():
        reason = f"peer data not found at {PEER_DATA}"
        if _on_ci():
            pytest.fail(f"{reason}; CI is set, so missing captures are a failure")
        pytest.skip(reason)
    server = Snmpsim((PEER_DATA / "snmprec").glob("*.snmprec"))
    try:
        server.start()
    except SnmpsimUnavailable as exc:
        server.stop()
        if _on_ci():
            pytest.fail(f"{exc}; CI is set, so a missing snmpsim is a failure")
        pytest.skip(str(exc))
    try:
        asyncio.run(server.wait_ready("sentry4"))
        yield server
    finally:
        server.stop()


def snmp_config(server: Snmpsim, community: str) -> SnmpConfig:
    return SnmpConfig.model_validate(
        {
            "host": "127.0.0.1",
            "port": server.port,
            "community": community,
            "timeout_s": 5,
            "retries": 1,
        }
    )


async def poll_capture(server: Snmpsim, name: str, profile: str) -> list[tuple[Reading, str]]:
    config = snmp_config(server, name)
    spec = load_snmp_profile(profile)
    device = DeviceConfig.model_validate(
        {"id": name, "kind": spec.kind, "profile": profile, "snmp": config.model_dump()}
    )
    placed = PlacedDevice(device, "lab", "", "", "", {"device": name})
    host = SnmpEngineHost()
    try:
        collector = SnmpCollector(placed, plan_profile(spec), host, device.snmp)  # type: ignore[arg-type]
        async with collector:
            return await collector.poll_with_sources()
    finally:
        host.close()


def compare(
    name: str, profile: str, polled: list[tuple[Reading, str]]
) -> tuple[Outcome, list[str]]:
    by_source: dict[str, Reading] = {}
    for reading, source in polled:
        by_source.setdefault(source, reading)
    outcome = Outcome(name, profile)
    problems: list[str] = []
    for sensor in expected_sensors(name):
        outcome.expected += 1
        if (name, sensor.oid) in LIBRENMS_MISTAKES:
            outcome.excused += 1
            continue
        found = by_source.get(sensor.oid)
        if found is None:
            outcome.missed += 1
            problems.append(
                f"missed {sensor.sensor_class} {sensor.oid} ({sensor.descr}) = {sensor.value}"
            )
            continue
        reading = found
        assert isinstance(reading.value, int | float), reading
        factor = UNIT_FACTORS.get(
            (name, sensor.sensor_class), CLASS_FACTORS.get(sensor.sensor_class, 1.0)
        )
        ours = float(reading.value) * factor
        if close(ours, sensor.value):
            outcome.matched += 1
        else:
            outcome.differing += 1
            problems.append(
                f"differs {sensor.sensor_class} {sensor.oid} ({sensor.descr}): "
                f"LibreNMS {sensor.value}, monitor {reading.metric}={reading.value} {reading.unit or ''}"
            )
    return outcome, problems


def coverage_table(outcomes: list[Outcome]) -> str:
    header = f"{'device':24} {'profile':20} {'matched':>7} {'missed':>6} {'differ':>6} {'excused':>7} {'expected':>8}"
    lines = [header, "-" * len(header)]
    for o in outcomes:
        lines.append(
            f"{o.device:24} {o.profile:20} {o.matched:>7} {o.missed:>6} {o.differing:>6} {o.excused:>7} {o.expected:>8}"
        )
    return "\n".join(lines)


async def test_every_capture_is_discovered_and_matches_librenms(snmpsim: Snmpsim) -> None:
    outcomes: list[Outcome] = []
    failures: list[str] = []
    for name, (profile, threshold) in DEVICES.items():
        found = await discover(snmp_config(snmpsim, name), poll=False)
        if found.profile != profile:
            failures.append(
                f"{name}: discovery chose {found.profile} ({found.reason}), want {profile}"
            )
            continue
        outcome, problems = compare(name, profile, await poll_capture(snmpsim, name, profile))
        outcomes.append(outcome)
        failures += [f"{name}: {problem}" for problem in problems if problem.startswith("differs")]
        if outcome.coverage < threshold:
            missed = [p for p in problems if p.startswith("missed")]
            failures.append(
                f"{name}: coverage {outcome.coverage:.0%} below {threshold:.0%}: "
                + "; ".join(missed)
            )
    print("\n" + coverage_table(outcomes))
    assert not failures, "\n".join(failures)


def test_every_capture_has_a_family() -> None:
    if not PEER_DATA.is_dir():
        pytest.skip(f"peer data not found at {PEER_DATA}")
    names = {path.stem for path in (PEER_DATA / "snmprec").glob("*.snmprec")}
    assert names == set(DEVICES), names ^ set(DEVICES)


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
    assert found == "# found: 2 inlet, 6 line, 12 phase, 2 unit; 34 readings", found
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


def test_choice_generalises_by_mib_and_falls_back_to_generic_mibs() -> None:
    from collectors.snmp.discovery import choose_profile, shipped_profiles

    profiles = shipped_profiles()
    unknown = "1.3.6.1.4.1.99999.1"
    profile, reason = choose_profile(unknown, set(), profiles)
    assert profile is None
    assert "unknown device" in reason
    assert "UPS-MIB" in reason
    assert "ENTITY-SENSOR-MIB" in reason
    profile, _ = choose_profile(unknown, {"1.3.6.1.2.1.33.1.2"}, profiles)
    assert profile is not None
    assert profile.name == "ups-mib-rfc1628"
    profile, _ = choose_profile(unknown, {"1.3.6.1.2.1.99.1.1"}, profiles)
    assert profile is not None
    assert profile.name == "entity-sensor"
    # a vendor MIB answering is not enough without the vendor's sysObjectID
    profile, _ = choose_profile(unknown, {"1.3.6.1.4.1.318.1.1.26.4"}, profiles)
    assert profile is None
    # one APC sysObjectID, four product families: the answering subtree decides
    apc = "1.3.6.1.4.1.318.1.3.4.99"
    for subtree, name in [
        ("1.3.6.1.4.1.318.1.1.26.4", "apc-rpdu2"),
        ("1.3.6.1.4.1.318.1.1.1.1", "apc-ups"),
        ("1.3.6.1.4.1.318.1.1.27.1.4.1", "apc-cooling"),
        ("1.3.6.1.4.1.318.1.1.10.3.13", "apc-ems"),
    ]:
        profile, _ = choose_profile(apc, {subtree}, profiles)
        assert profile is not None
        assert profile.name == name
