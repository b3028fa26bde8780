"""The Modbus front end of the simulators, checked by mbpoll (a client nobody here
wrote), by a stock pymodbus client, and through the collector."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator, Mapping
from types import MappingProxyType

import pytest
from pymodbus.client import AsyncModbusTcpClient

from collectors.registry import CollectorFactory
from dcim.collector import Collector
from dcim.inventory import DeviceConfig, PlacedDevice
from dcim.reading import Reading, Value
from simulators.modbus_server import DemoCrac, DemoMeter, DemoUps, ModbusSimServer, serve
from simulators.source import ValueSource


class DictSource:
    """A device whose values the test sets; tags select per-line values."""

    def __init__(self, device_id: str, values: dict[str, Value]) -> None:
        self._id = device_id
        self.values = values

    @property
    def device_id(self) -> str:
        return self._id

    def value(self, metric: str, tags: Mapping[str, str]) -> Value | None:
        for key in (
            f"{metric}/{tags.get('line') or tags.get('alarm') or tags.get('phase')}",
            metric,
        ):
            if key in self.values:
                return self.values[key]
        return None


UPS_VALUES: dict[str, Value] = {
    "ups.output_source": "battery",
    "ups.battery_status": "low",
    "ups.battery_charge_pct": 37,
    "ups.battery_runtime_s": 86400 + 1234,  # needs both registers of the uint32
    "ups.battery_voltage_v": 512.3,
    "ups.battery_current_a": -12.5,
    "ups.battery_temp_c": 27.4,
    "ups.on_battery_s": 75,
    "ups.input_voltage_v": 0.0,
    "ups.output_voltage_v/1": 229.9,
    "ups.output_voltage_v/2": 230.4,
    "ups.output_voltage_v/3": 231.0,
    "ups.output_frequency_hz": 49.98,
    "ups.alarm_active/on_battery": True,
    "ups.alarm_active/low_battery": True,
    "ups.alarms_present": 2,
}
METER_VALUES: dict[str, Value] = {
    "meter.voltage_v/1": 231.5,
    "meter.voltage_v/2": 229.25,
    "meter.voltage_v/3": 230.75,
    "meter.power_w": 15123.5,
}


@pytest.fixture
async def sim() -> AsyncIterator[ModbusSimServer]:
    server = await serve(
        {
            2: ("sim-ups", DictSource("ups", UPS_VALUES)),
            3: ("sim-power-meter", DictSource("meter", METER_VALUES)),
        }
    )
    yield server
    await server.close()


def _mbpoll() -> str:
    path = shutil.which("mbpoll")
    if path:
        return path
    reason = "mbpoll not installed (apt-get install -y mbpoll)"
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{reason}; CI is set, so a missing client is a failure")
    pytest.skip(reason)


async def mbpoll(port: int, *args: str) -> tuple[int, dict[int, str], str]:
    """Run mbpoll once; (exit code, {reference: value text}, all output)."""
    proc = await asyncio.create_subprocess_exec(
        _mbpoll(),
        "-m", "tcp", "-p", str(port), "-1", "-o", "2", *args, "127.0.0.1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    text = out.decode()
    values = {int(m[1]): m[2] for m in re.finditer(r"^\[(\d+)\]:\s+(\S+)", text, re.M)}
    return proc.returncode or 0, values, text


async def test_mbpoll_reads_the_documented_ups_registers(sim: ModbusSimServer) -> None:
    code, regs, text = await mbpoll(sim.port, "-a", "2", "-t", "4", "-r", "1", "-c", "31")
    assert code == 0, text
    # the map as documented in sim-ups.yaml (1-based register numbers, as mbpoll's default)
    assert regs[1] == "4"  # output source: battery
    assert regs[2] == "2"  # battery status: low
    assert regs[3] == "37"  # charge %
    assert (int(regs[4]), int(regs[5])) == divmod(87634, 65536)  # runtime s, high word first
    assert regs[6] == "5123"  # battery V in 0.1 V
    assert regs[7] == str(65536 - 125)  # -12.5 A as int16 tenths
    assert regs[8] == "274"
    assert (regs[9], regs[10]) == ("0", "75")
    assert (regs[15], regs[16], regs[17]) == ("2299", "2304", "2310")
    assert regs[24] == "4998"  # 0.01 Hz
    assert regs[30] == "3"  # alarm word: bit 0 on battery, bit 1 low battery
    assert regs[31] == "2"
    assert regs[29] == "0"  # a gap register inside the map reads as 0
    code, regs, text = await mbpoll(sim.port, "-a", "2", "-t", "4:int", "-B", "-r", "4", "-c", "1")
    assert code == 0, text
    assert regs[4] == "87634"


async def test_mbpoll_reads_the_meter_floats_in_cdab_order(sim: ModbusSimServer) -> None:
    # mbpoll's default 32-bit float order is little-endian words (CDAB), -0: wire addresses
    code, regs, text = await mbpoll(
        sim.port, "-a", "3", "-0", "-t", "3:float", "-r", "0", "-c", "3"
    )
    assert code == 0, text
    assert [float(regs[i]) for i in (0, 2, 4)] == [231.5, 229.25, 230.75]
    code, regs, text = await mbpoll(
        sim.port, "-a", "3", "-0", "-t", "3:float", "-r", "12", "-c", "1"
    )
    assert code == 0, text
    assert float(regs[12]) == 15123.5


async def test_mbpoll_sees_an_absent_unit_as_a_failed_gateway_target(sim: ModbusSimServer) -> None:
    code, _, text = await mbpoll(sim.port, "-a", "9", "-t", "4", "-r", "1", "-c", "1")
    assert code != 0
    assert "Target device failed to respond" in text


async def test_values_are_encoded_at_request_time_and_the_map_bounds_hold(
    sim: ModbusSimServer,
) -> None:
    client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=2, retries=0)
    await client.connect()
    try:
        first = await client.read_holding_registers(2, count=1, device_id=2)
        UPS_VALUES["ups.battery_charge_pct"] = 36
        second = await client.read_holding_registers(2, count=1, device_id=2)
        outside = await client.read_holding_registers(31, count=1, device_id=2)
        coils = await client.read_coils(0, count=1, device_id=2)  # the UPS map has no coils
        write = await client.write_register(2, 99, device_id=2)
    finally:
        client.close()
        UPS_VALUES["ups.battery_charge_pct"] = 37
    assert (first.registers, second.registers) == ([37], [36])
    assert (outside.exception_code, coils.exception_code) == (2, 2)  # illegal data address
    assert write.exception_code == 1  # illegal function: the simulator takes no writes
    assert sim.request_count(2) == 4  # reads; the refused write is not a read


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_demo_devices_move_plausibly_and_every_field_decodes() -> None:
    clock = FakeClock()
    devices: dict[int, tuple[str, str, ValueSource]] = {
        1: ("sim-crac", "crac", DemoCrac("crac-1", clock)),
        2: ("sim-ups", "ups", DemoUps("ups-1", clock)),
        3: ("sim-power-meter", "meter", DemoMeter("meter-1", clock)),
    }
    server = await serve({u: (p, src) for u, (p, _, src) in devices.items()})
    factory = CollectorFactory()
    try:
        collectors: list[Collector] = []
        for unit, (profile, kind, _) in devices.items():
            device = DeviceConfig.model_validate(
                {
                    "id": f"d{unit}",
                    "kind": kind,
                    "profile": profile,
                    "modbus": {"host": "127.0.0.1", "port": server.port, "unit_id": unit},
                }
            )
            tags = MappingProxyType({"device": device.id})
            collectors.append(factory.build(PlacedDevice(device, "s", "r", "", "", tags)))
        before = [await c.poll() for c in collectors]
        clock.now = 150.0  # a quarter of the 10-minute wave later
        after = [await c.poll() for c in collectors]
    finally:
        factory.close()
        await server.close()
    # every field inside its plausible range (none dropped): CRAC 18+11 flags, UPS 24+10, meter 15
    assert [len(r) for r in before] == [29, 34, 15]
    assert [len(r) for r in after] == [29, 34, 15]

    def number(readings: list[list[Reading]], i: int, metric: str, **tags: str) -> float:
        for r in readings[i]:
            if r.metric == metric and all(r.tags.get(k) == v for k, v in tags.items()):
                assert isinstance(r.value, float)
                return r.value
        raise AssertionError(metric)

    b, a = before, after
    assert number(b, 0, "crac.return_air_temp_c") != number(a, 0, "crac.return_air_temp_c")
    energy = "meter.energy_kwh"
    assert number(a, 2, energy, scope="facility") > number(b, 2, energy, scope="facility")
    facility = number(a, 2, "meter.power_w", scope="facility")
    it = number(a, 2, "meter.power_w", scope="it")
    assert 1.4 < facility / it < 1.6  # PUE of the demo site
