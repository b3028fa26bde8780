"""The standby generator: its controller's sequence, and the demo site serving it over Modbus.

The demo site's gen-1 is a DSE controller (map dse-gencomm) behind the site's
Modbus gateway. The monitor's ModbusCollector reads it with the shipped map while
the utility-outage and generator scenarios play on the hall model.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import pytest

from collectors.modbus.client import ModbusGateway
from collectors.modbus.collector import ModbusCollector
from collectors.modbus.plan import plan_profile
from collectors.modbus.profile import load_modbus_profile
from dcim.clock import ManualClock, SimClock
from dcim.inventory import DeviceConfig, ModbusConfig, PlacedDevice, load_config
from simulators.hall.generator import CRANK_ATTEMPTS, CRANK_S, GeneratorSet, GenState
from simulators.scenario import ScenarioPlayer, load_scenario
from simulators.site import Site

SITES = Path(__file__).resolve().parents[2] / "simulators" / "sites"


def run(gen: GeneratorSet, seconds: float, *, utility: bool, load_w: float = 0.0) -> None:
    for _ in range(int(seconds)):
        gen.step(1.0, utility, load_w)


def test_controller_starts_after_its_delay_carries_the_load_and_hands_it_back() -> None:
    gen = GeneratorSet(500_000.0, 1000.0, 900.0, start_delay_s=10, warmup_s=10)
    run(gen, 60, utility=True)
    assert not gen.running
    run(gen, 9, utility=False)
    assert gen.state is GenState.STOPPED  # a dip shorter than the start delay starts nothing
    run(gen, 1 + CRANK_S + 10, utility=False)
    assert gen.on_load
    assert gen.starts == 1
    fuel = gen.fuel_l
    run(gen, 3600, utility=False, load_w=250_000.0)
    # half load for an hour: 500 kW * (0.03 + 0.24 * 0.5) = 75 l
    assert fuel - gen.fuel_l == pytest.approx(75.0, rel=0.01)
    assert gen.energy_kwh == pytest.approx(250.0, rel=0.01)
    run(gen, gen.return_delay_s, utility=True)
    assert gen.state.value == "cooling_down"
    run(gen, gen.cooldown_s, utility=True)
    assert not gen.running


def test_failed_start_runs_dry_and_trip_are_shutdown_alarms() -> None:
    gen = GeneratorSet(500_000.0, 1000.0, 900.0, start_delay_s=10)
    gen.fail_to_start()
    run(gen, 10 + CRANK_S * CRANK_ATTEMPTS, utility=False)
    assert gen.state is GenState.FAULT
    assert gen.alarms == {"fail_to_start": "shutdown"}
    gen.reset()
    run(gen, 40, utility=False)
    assert gen.on_load
    gen.set_fuel(1.0)  # 10 l at full load (0.27 l/kWh * 500 kW = 135 l/h): about 4.5 min
    run(gen, 200, utility=False, load_w=500_000.0)
    assert gen.alarms == {"low_fuel_level": "warning"}
    run(gen, 100, utility=False, load_w=500_000.0)
    assert gen.state is GenState.FAULT
    assert gen.alarms == {"low_fuel_level": "shutdown"}
    gen.reset()
    gen.set_fuel(80)
    run(gen, 40, utility=False)
    gen.trip()
    assert not gen.running
    assert gen.alarms == {"high_coolant_temp": "shutdown"}


async def poll(site: Site, device: str) -> dict[str, object]:
    host, port, unit = site.modbus_address_of(device)
    config = ModbusConfig(host=host, port=port, unit_id=unit, retries=0)
    profile = load_modbus_profile(site.topology.placed[device].device.profile)
    placed = PlacedDevice(
        DeviceConfig(id=device, kind=profile.kind, profile=profile.name, modbus=config),
        "",
        "",
        "",
        "",
        MappingProxyType({"device": device}),
    )
    gateway = ModbusGateway(config)
    try:
        readings = await ModbusCollector(placed, plan_profile(profile), gateway, config).poll()
    finally:
        gateway.close()
    out: dict[str, object] = {}
    for r in readings:
        tag = r.tags.get("alarm") or r.tags.get("phase")
        out[f"{r.metric}[{tag}]" if tag else r.metric] = r.value
    return out


async def test_demo_site_serves_its_generator_over_modbus_through_an_outage() -> None:
    time = ManualClock(0.0)
    site = Site(load_config(SITES / "demo-site.yaml"), clock=SimClock(now_fn=time), seed=3)
    await site.start(port=0)
    try:
        player = ScenarioPlayer(site.model, load_scenario("generator-fuel-low"), site.clock.now())

        def at(seconds: float) -> None:
            time.now = seconds
            player.advance(site.clock.now())

        at(45)
        before = await poll(site, "gen-1")
        assert before["generator.state"] == "stopped"
        assert before["generator.mode"] == "auto"
        assert before["generator.mains_voltage_v[1]"] == 230.0
        assert before["generator.fuel_level_pct"] == 6.0
        assert before["generator.alarm[low_fuel_level]"] == "warning"
        assert before["generator.alarm[mains_failed]"] == "inactive"

        at(5 * 60)  # utility lost at 1 min: the set took the load
        running = await poll(site, "gen-1")
        assert running["generator.state"] == "running"
        assert running["generator.mains_voltage_v[1]"] == 0.0
        assert running["generator.alarm[mains_failed]"] == "indication"
        assert float(running["generator.power_w"]) > 50_000  # type: ignore[arg-type]
        assert site.model.ups_state("ups-a").output_source.name == "NORMAL"

        at(15 * 60)
        later = await poll(site, "gen-1")
        assert float(later["generator.fuel_level_pct"]) < 6.0  # type: ignore[arg-type]
        assert float(later["generator.energy_kwh"]) > float(running["generator.energy_kwh"])  # type: ignore[arg-type]
    finally:
        await site.aclose()
