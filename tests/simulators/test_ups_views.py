"""The APC PowerNet and Liebert GP UPS views, and SNMPv3 devices of a site.

`simulators/sites/ups-vendors.yaml` serves three UPSes driven by the same UPS model
on one agent: ups-apc (PowerNet-MIB, v2c), ups-liebert (LIEBERT-GP-POWER-MIB) and
ups-rfc (UPS-MIB) on SNMPv3 authPriv SHA-256 + AES, the context naming the device.
The monitor's real `SnmpCollector` polls each one with its shipped profile over
UDP, and every reading must equal the model's value within one count of what the
profile decodes. Discovery must pick each profile, net-snmp must walk the APC
view and read the v3 devices (and be refused with a wrong key).

The clock is driven by hand, so nothing moves between a poll and the check.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import MappingProxyType

import pytest

from collectors.snmp.client import SnmpHost
from collectors.snmp.collector import SnmpCollector
from collectors.snmp.discovery import discover
from collectors.snmp.plan import plan_profile
from collectors.snmp.profile import SnmpProfile, load_snmp_profile
from dcim.clock import ManualClock, SimClock
from dcim.inventory import DeviceConfig, PlacedDevice, iter_devices, load_config
from dcim.reading import Reading, Value
from simulators.hall.topology import TopologyError
from simulators.mibs.apc_ups import ApcUpsDevice
from simulators.mibs.liebert_ups import LiebertUpsDevice
from simulators.site import Site
from simulators.snmp_agent import serve
from simulators.ups import AlarmKind, BatteryStatus, UpsModel, UpsState
from simulators.ups_mib import UpsDevice

SITE_FILE = Path(__file__).resolve().parents[2] / "simulators" / "sites" / "ups-vendors.yaml"
UPSES = {"ups-apc": "apc-ups", "ups-liebert": "liebert-ups", "ups-rfc": "ups-mib-rfc1628"}
V3_ARGS = ["-v3", "-l", "authPriv", "-u", "dcim-monitor", "-a", "SHA-256", "-A", "sim-auth-key-1"]
V3_PRIV = ["-x", "AES", "-X", "sim-priv-key-1"]
LGP_CAPACITY = "1.3.6.1.4.1.476.1.42.3.5.1.19.0"  # lgpPwrBatteryCapacity
UPS_MIB_CHARGE = "1.3.6.1.2.1.33.1.2.4.0"  # upsEstimatedChargeRemaining


def steps(profile: SnmpProfile) -> dict[str, float]:
    """metric -> one count of the raw value the profile decodes (its scale)."""
    out: dict[str, float] = {}
    for field in profile.scalars:
        out[field.metric] = max(out.get(field.metric, 0.0), abs(field.scale))
    for table in profile.tables:
        for column in table.columns:
            out[column.metric] = max(out.get(column.metric, 0.0), abs(column.scale))
        for switched in table.switched:
            for variant in switched.variants.values():
                out[variant.metric] = max(out.get(variant.metric, 0.0), abs(variant.scale))
    return out


def matches(got: Value, want: Value, step: float) -> bool:
    if isinstance(want, bool | str) or isinstance(got, bool | str):
        return type(got) is type(want) and got == want
    return math.isclose(float(got), float(want), abs_tol=step + 1e-6 * max(abs(want), 1.0))


# --- what each vendor MIB says about the model's state -----------------------------

Expect = Callable[[UpsState, Reading], Value | None]


def _apc(s: UpsState, r: Reading) -> Value | None:
    """PowerNet's single-phase objects on a three-line model (see simulators/mibs/apc_ups.py)."""
    worst = max(s.output_lines, key=lambda line: line.percent_load)
    status = BatteryStatus.LOW if s.battery_status is BatteryStatus.DEPLETED else s.battery_status
    apc: dict[str, Value] = {
        "ups.battery_status": status.name.lower(),  # APC has no "depleted"
        "ups.internal_temp_c": s.battery_temperature_c,  # upsHighPrecBatteryTemperature
        "ups.input_voltage_v": s.input_lines[0].voltage_v,
        "ups.input_frequency_hz": s.input_lines[0].frequency_hz,
        "ups.output_voltage_v": worst.voltage_v,
        "ups.output_current_a": worst.current_a,
        "ups.battery_replace_needed": any(a.kind is AlarmKind.BATTERY_BAD for a in s.alarms),
    }
    return apc.get(r.metric)


def _liebert(s: UpsState, r: Reading) -> Value | None:
    """lgpPwrMeasurementPointTable rows are whole points, not lines."""
    if "point" not in r.tags:
        return None
    point: dict[str, Value] = {
        "ups.input_frequency_hz": s.input_lines[0].frequency_hz,
        "ups.output_apparent_power_va": sum(o.voltage_v * o.current_a for o in s.output_lines),
    }
    return point.get(r.metric)


#: profile -> the values that differ from the vocabulary view of the model (UpsView).
VENDOR: dict[str, Expect] = {"apc-ups": _apc, "liebert-ups": _liebert}


@dataclasses.dataclass
class Lab:
    site: Site
    time: ManualClock
    devices: dict[str, PlacedDevice]
    engine: SnmpHost

    def at(self, seconds: float) -> None:
        self.time.now = seconds
        self.site.sync()

    async def poll(self, device_id: str) -> list[Reading]:
        placed = self.devices[device_id]
        assert placed.device.snmp is not None
        plan = plan_profile(load_snmp_profile(placed.device.profile))
        async with SnmpCollector(placed, plan, self.engine, placed.device.snmp) as collector:
            return await collector.poll()

    def compare(self, device_id: str, readings: list[Reading]) -> tuple[Counter[str], list[str]]:
        profile = UPSES[device_id]
        step = steps(load_snmp_profile(profile))
        state = self.site.model.ups_state(device_id)
        seen: Counter[str] = Counter()
        problems = []
        for r in readings:
            vendor = VENDOR.get(profile)
            want = vendor(state, r) if vendor else None
            if want is None:
                want = self.site.sources[device_id].value(r.metric, r.tags)
            where = f"{device_id} {r.metric} {dict(r.tags)}"
            if want is None:
                problems.append(f"{where}: polled {r.value!r}, the model has no value")
            elif not matches(r.value, want, step.get(r.metric, 0.0)):
                problems.append(f"{where}: polled {r.value!r}, model {want!r}")
            else:
                seen[r.metric] += 1
        return seen, problems


def _served_at(site: Site, placed: PlacedDevice) -> PlacedDevice:
    assert placed.device.snmp is not None
    host, port, _ = site.address_of(placed.device.id)
    snmp = placed.device.snmp.model_copy(update={"host": host, "port": port, "timeout_s": 5.0})
    return dataclasses.replace(placed, device=placed.device.model_copy(update={"snmp": snmp}))


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    time = ManualClock(0.0)
    site = Site(load_config(SITE_FILE), clock=SimClock(now_fn=time), seed=11)
    await site.start("127.0.0.1", 0)
    engine = SnmpHost()
    try:
        devices = {p.device.id: _served_at(site, p) for p in iter_devices(site.config)}
        yield Lab(site, time, devices, engine)
    finally:
        engine.close()
        await site.aclose()


async def run(*argv: str) -> tuple[int, str]:
    """A net-snmp tool, without blocking the loop the agents answer from."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def value_of(readings: list[Reading], metric: str, **tags: str) -> Value:
    found = [
        r.value
        for r in readings
        if r.metric == metric and all(r.tags.get(k) == v for k, v in tags.items())
    ]
    assert len(found) == 1, (metric, tags, found)
    return found[0]


# --- the tests ---------------------------------------------------------------------

APC_METRICS = {
    "ups.output_source", "ups.battery_status", "ups.battery_replace_needed",
    "ups.battery_charge_pct", "ups.internal_temp_c", "ups.battery_runtime_s", "ups.on_battery_s",
    "ups.battery_voltage_v", "ups.input_voltage_v", "ups.input_frequency_hz",
    "ups.output_voltage_v", "ups.output_frequency_hz", "ups.load_pct", "ups.output_current_a",
}  # fmt: skip
LIEBERT_METRICS = {
    "ups.output_source", "ups.battery_status", "ups.battery_runtime_s",
    "ups.battery_charge_pct", "ups.on_battery_s", "ups.alarms_present",
    "ups.input_frequency_hz", "ups.output_frequency_hz", "ups.output_apparent_power_va",
    "ups.input_voltage_v", "ups.input_current_a", "ups.input_power_w",
    "ups.output_voltage_v", "ups.output_current_a", "ups.output_power_w", "ups.load_pct",
    "ups.battery_voltage_v",
}  # fmt: skip


async def test_vendor_views_polled_over_v2c_and_v3_match_the_model(lab: Lab) -> None:
    lab.at(0)
    before = {d: await lab.poll(d) for d in UPSES}
    for device, readings in before.items():
        seen, problems = lab.compare(device, readings)
        assert not problems, "\n".join(problems)
        assert seen.total() == len(readings) > 0
    assert set(Counter(r.metric for r in before["ups-apc"])) == APC_METRICS
    assert set(Counter(r.metric for r in before["ups-liebert"])) == LIEBERT_METRICS
    # per line, tagged by line, as UPS-MIB is
    liebert = before["ups-liebert"]
    assert {r.tags["line"] for r in liebert if r.metric == "ups.output_power_w"} == {"1", "2", "3"}
    for device in UPSES:
        assert value_of(before[device], "ups.output_source") == "normal"
    assert float(value_of(before["ups-apc"], "ups.load_pct")) > 20  # the rack's feed A load, shared
    assert float(value_of(liebert, "ups.load_pct", line="1")) > 40  # feed B alone

    lab.site.model.set_utility(False)
    lab.at(5 * 60)
    during = {d: await lab.poll(d) for d in UPSES}
    for device, readings in during.items():
        seen, problems = lab.compare(device, readings)
        assert not problems, "\n".join(problems)
        assert value_of(readings, "ups.output_source") == "battery"
        assert float(value_of(readings, "ups.battery_runtime_s")) < float(
            value_of(before[device], "ups.battery_runtime_s")
        )
    assert value_of(during["ups-liebert"], "ups.on_battery_s") == 300
    assert value_of(during["ups-apc"], "ups.on_battery_s") == 300  # upsBasicBatteryTimeOnBattery
    assert float(value_of(during["ups-liebert"], "ups.alarms_present")) >= 1
    assert value_of(during["ups-apc"], "ups.input_voltage_v") == 0

    lab.site.model.set_utility(True)
    lab.at(6 * 60)
    after = {d: await lab.poll(d) for d in UPSES}
    for device, readings in after.items():
        _, problems = lab.compare(device, readings)
        assert not problems, "\n".join(problems)
        assert value_of(readings, "ups.output_source") == "normal"


async def test_discovery_picks_each_vendor_profile(lab: Lab) -> None:
    for device, profile in UPSES.items():
        snmp = lab.devices[device].device.snmp
        assert snmp is not None
        found = await discover(snmp, host=lab.engine, poll=False)
        assert found.profile == profile, (device, found.reason)
    apc = await discover(lab.devices["ups-apc"].device.snmp, host=lab.engine)  # type: ignore[arg-type]
    assert apc.sys_object_id == "1.3.6.1.4.1.318.1.3.27"
    assert apc.readings == len(APC_METRICS)
    liebert = lab.devices["ups-liebert"].device.snmp
    assert liebert is not None
    assert (await discover(liebert, host=lab.engine)).counts == {"line": 3, "point": 2}


async def test_net_snmp_walks_the_apc_view_and_reads_v3_devices(lab: Lab) -> None:
    lab.at(0)
    host, port, community = lab.site.address_of("ups-apc")
    target = f"{host}:{port}"
    rc, out = await run("snmpwalk", "-On", "-v2c", "-c", community, target, "1.3.6.1.4.1.318")
    assert rc == 0, out
    walked = dict(re.findall(r"^(\.[\d.]+) = (.*)$", out, re.MULTILINE))
    state = lab.site.model.ups_state("ups-apc")
    assert walked[".1.3.6.1.4.1.318.1.1.1.4.1.1.0"] == "INTEGER: 2"  # upsBasicOutputStatus onLine
    charge = walked[".1.3.6.1.4.1.318.1.1.1.2.3.1.0"]  # upsHighPrecBatteryCapacity
    assert charge == f"Gauge32: {round(state.charge_percent * 10)}"
    runtime = walked[".1.3.6.1.4.1.318.1.1.1.2.2.3.0"]  # upsAdvBatteryRunTimeRemaining
    assert runtime.startswith(f"Timeticks: ({int(state.runtime_s * 100)})"), runtime
    assert len(walked) >= 25

    # v3 authPriv: the context picks the device on the shared port
    liebert = lab.site.model.ups_state("ups-liebert")
    rc, out = await run("snmpget", "-On", *V3_ARGS, *V3_PRIV, "-n", "ups-liebert", target,
                        LGP_CAPACITY)  # fmt: skip
    assert rc == 0, out
    assert out.strip() == f".{LGP_CAPACITY} = INTEGER: {round(liebert.charge_percent)}"
    rc, out = await run("snmpget", "-On", *V3_ARGS, *V3_PRIV, "-n", "ups-rfc", target,
                        UPS_MIB_CHARGE, LGP_CAPACITY)  # fmt: skip
    assert rc == 0, out
    rfc = round(lab.site.model.ups_state("ups-rfc").charge_percent)
    assert f".{UPS_MIB_CHARGE} = INTEGER: {rfc}" in out
    assert "No Such Object" in out  # UPS-MIB device: no Liebert objects
    wrong = [*V3_ARGS[:-1], "not-the-auth-key"]
    rc, out = await run("snmpget", "-r0", "-t1", *wrong, *V3_PRIV, "-n", "ups-liebert", target,
                        LGP_CAPACITY)  # fmt: skip
    assert rc != 0
    assert "Authentication failure" in out or "Timeout" in out, out


def test_a_v3_device_needs_a_servable_protocol_and_its_own_context(tmp_path: Path) -> None:
    text = SITE_FILE.read_text()
    site_file = tmp_path / "site.yaml"
    site_file.write_text(text.replace("context_name: ups-rfc", "context_name: ''"))
    with pytest.raises(TopologyError, match=r"ups-rfc: snmp\.v3\.context_name: empty"):
        Site(load_config(site_file))
    site_file.write_text(text.replace("priv_protocol: aes128", "priv_protocol: aes256", 1))
    with pytest.raises(TopologyError, match="'aes256' is not served by the simulator"):
        Site(load_config(site_file))
    other_key = text.replace("auth_key: sim-auth-key-1", "auth_key: other-auth-key", 1)
    site_file.write_text(other_key)
    with pytest.raises(TopologyError, match="'dcim-monitor' has other keys"):
        Site(load_config(site_file))


# --- the views on their own, on a single-phase model, down to a flat battery -------


def _placed(device_id: str, profile: str, port: int) -> PlacedDevice:
    device = DeviceConfig.model_validate(
        {
            "id": device_id,
            "kind": "ups",
            "profile": profile,
            "snmp": {"host": "127.0.0.1", "port": port, "community": device_id, "timeout_s": 5},
        }
    )
    return PlacedDevice(device, "", "", "", "", MappingProxyType({}))


async def test_single_phase_views_until_the_battery_is_flat() -> None:
    time = ManualClock(0.0)
    clock = SimClock(now_fn=time)
    models = {
        name: UpsModel(3000, 2700, 230, seed=5, start_s=clock.now(), base_load=0.9)
        for name in ("ups-apc", "ups-liebert")
    }
    devices: list[UpsDevice] = [
        ApcUpsDevice("ups-apc", models["ups-apc"], clock),
        LiebertUpsDevice("ups-liebert", models["ups-liebert"], clock),
    ]
    agent = await serve(devices)
    engine = SnmpHost()
    try:

        async def poll(name: str) -> list[Reading]:
            placed = _placed(name, UPSES[name], agent.port)
            assert placed.device.snmp is not None
            plan = plan_profile(load_snmp_profile(UPSES[name]))
            async with SnmpCollector(placed, plan, engine, placed.device.snmp) as collector:
                return await collector.poll()

        # single phase: PowerNet's scalars are the model's one line, exactly
        apc = await poll("ups-apc")
        s = models["ups-apc"].state()
        line = s.output_lines[0]
        assert value_of(apc, "ups.output_voltage_v") == pytest.approx(line.voltage_v, abs=0.1)
        assert value_of(apc, "ups.output_current_a") == pytest.approx(line.current_a, abs=0.1)
        assert value_of(apc, "ups.load_pct") == pytest.approx(line.percent_load, abs=0.1)
        assert value_of(apc, "ups.input_voltage_v") == pytest.approx(
            s.input_lines[0].voltage_v, abs=0.1
        )
        assert float(value_of(apc, "ups.load_pct")) > 85

        for model in models.values():
            model.set_utility(False)
        time.now = 4 * 3600  # far beyond any runtime at 90 % load
        apc, liebert = await poll("ups-apc"), await poll("ups-liebert")
        for model in models.values():
            model.advance_to(clock.now())
        assert models["ups-apc"].state().battery_status is BatteryStatus.DEPLETED
        assert value_of(apc, "ups.battery_status") == "low"  # APC has no "depleted"
        assert value_of(apc, "ups.output_source") == "none"  # upsBasicOutputStatus off(7)
        assert value_of(apc, "ups.battery_runtime_s") == 0
        assert value_of(liebert, "ups.battery_status") == "depleted"
        assert value_of(liebert, "ups.output_source") == "none"
        assert value_of(liebert, "ups.on_battery_s") == 4 * 3600
        assert value_of(liebert, "ups.load_pct", line="1") == 0
        assert value_of(apc, "ups.output_voltage_v") == 0
        flat = models["ups-apc"].state().battery_voltage_v
        assert value_of(apc, "ups.battery_voltage_v") == pytest.approx(flat, abs=0.1)
    finally:
        engine.close()
        agent.close()
