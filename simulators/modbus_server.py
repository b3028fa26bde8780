"""A Modbus TCP front end for simulated devices: several unit ids behind one port.

Each unit is a `ValueSource` plus the name of a register map (profile). Nothing
is stored ahead: when a read arrives, the fields it covers are encoded from the
source's current values with the collector's own codec, so a client reads
exactly what the device model holds. The register span a profile uses (gaps
included, as on most devices) is readable; anything outside answers "illegal
data address", an unknown unit id "gateway target failed to respond" (0x0B),
and writes "illegal function" (the simulated devices take no commands).

Built on pymodbus' SimDevice server (its `action` hook runs per request).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import random
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusTcpServer, ModbusTlsServer
from pymodbus.simulator import DataType, SimData, SimDevice

from collectors.modbus.decode import EncodeError
from collectors.modbus.plan import MAX_BITS, MAX_REGISTERS, PlannedField, plan_profile
from collectors.modbus.profile import BIT_FUNCTIONS, load_modbus_profile
from dcim.clock import Clock
from dcim.reading import Value
from simulators.source import ValueSource

log = logging.getLogger(__name__)

_TABLE_OF_CODE = {1: "coils", 2: "discrete_inputs", 3: "holding", 4: "input"}
_ORDER = ("coils", "discrete_inputs", "holding", "input")  # SimDevice's tuple order

#: Test hook: called per request (unit, function code, address, count) before
#: encoding; a returned exception code is sent instead of data.
RequestHook = Callable[[int, int, int, int], ExcCodes | None]


@dataclass(frozen=True, slots=True)
class SeenRequest:
    unit: int
    function: int
    address: int
    count: int


class _Unit:
    """One unit id: its source and its fields, grouped by table."""

    def __init__(self, unit: int, profile: str, source: ValueSource) -> None:
        self.unit = unit
        self.source = source
        self.profile = load_modbus_profile(profile)
        plan = plan_profile(self.profile, max_gap=0)
        self.fields: dict[str, list[PlannedField]] = {name: [] for name in _ORDER}
        for block in plan.blocks:
            self.fields[block.function].extend(block.fields)
        self._reported: set[tuple[str, str]] = set()

    def span(self, table: str) -> tuple[int, int] | None:
        fields = self.fields[table]
        if not fields:
            return None
        return min(f.address for f in fields), max(f.end for f in fields)

    def encode(self, planned: PlannedField) -> list[int] | None:
        """The field's registers from the source's current value; None: leave as is."""
        field = planned.field
        try:
            if planned.codec.flags:
                states = {
                    name: bool(
                        self.source.value(field.metric, {**field.tags, field.flag_tag: name})
                    )
                    for _, name in planned.codec.flags
                }
                return planned.codec.encode_flags(states)
            value: Value | None = self.source.value(field.metric, field.tags)
            if value is None:
                missing = [m for m in field.missing if isinstance(m, int)]
                return planned.codec.raw.encode(missing[0]) if missing else None
            return planned.codec.encode(value)
        except (EncodeError, ValueError, TypeError) as exc:
            key = (field.metric, str(exc))
            if key not in self._reported:
                self._reported.add(key)
                log.warning(
                    "modbus sim unit %d (%s): cannot encode %s: %s",
                    self.unit,
                    self.source.device_id,
                    field.metric,
                    exc,
                )
            return None


def _fill_registers(
    unit: _Unit, table: str, registers: list[int], *, start: int, address: int, count: int
) -> None:
    for planned in unit.fields[table]:
        if planned.end <= address or planned.address >= address + count:
            continue
        encoded = unit.encode(planned)
        if encoded is None:
            continue
        mask = planned.codec.raw.mask
        for i, word in enumerate(encoded):
            index = planned.address - start + i
            registers[index] = (registers[index] & ~mask & 0xFFFF) | word


def _fill_bits(unit: _Unit, table: str, start_register: int, registers: list[int]) -> None:
    # non-shared bit tables pack 16 bits per register, bit 0 first
    base = start_register * 16
    for planned in unit.fields[table]:
        encoded = unit.encode(planned)
        if encoded is None:
            continue
        k = planned.address - base
        if encoded[0]:
            registers[k // 16] |= 1 << (k % 16)
        else:
            registers[k // 16] &= ~(1 << (k % 16))


def _tables(unit: _Unit) -> tuple[list[SimData], list[SimData], list[SimData], list[SimData]]:
    out: list[list[SimData]] = []
    for table in _ORDER:
        span = unit.span(table)
        start, end = span if span else (0, 1)  # an empty table still needs one entry
        out.append([_table(table, start, end)])
    return out[0], out[1], out[2], out[3]


def _table(table: str, start: int, end: int) -> SimData:
    # values as a list with count 1: pymodbus' layout check multiplies by count twice
    if table in BIT_FUNCTIONS:
        return SimData(start, values=[False] * (end - start), datatype=DataType.BITS)
    return SimData(start, values=[0] * (end - start), datatype=DataType.REGISTERS)


def _catch_all_tables(
    units: list[_Unit],
) -> tuple[list[SimData], list[SimData], list[SimData], list[SimData]]:
    """Tables for the absent-unit answer: from 0 to past every unit's map, plus one
    full read, so the usual addresses get 0x0B rather than "illegal address"."""
    out: list[list[SimData]] = []
    for table in _ORDER:
        ends = [span[1] for u in units if (span := u.span(table))]
        reach = MAX_BITS if table in BIT_FUNCTIONS else MAX_REGISTERS
        out.append([_table(table, 0, min(max(ends, default=0) + reach, 0xFFFF))])
    return out[0], out[1], out[2], out[3]


class ModbusSimServer:
    """A running server; `port` is the bound port, `requests` what it has seen."""

    def __init__(self, units: Mapping[int, tuple[str, ValueSource]]) -> None:
        self.units = {
            unit: _Unit(unit, profile, source) for unit, (profile, source) in units.items()
        }
        self.requests: list[SeenRequest] = []
        self.hook: RequestHook | None = None
        self.host = ""
        self.port = 0
        self._server: ModbusTcpServer | None = None

    def devices(self) -> list[SimDevice]:
        devices = [
            SimDevice(unit, simdata=_tables(u), action=self._action(u))
            for unit, u in self.units.items()
        ]
        if 0 not in self.units:
            # unit 0 is pymodbus' catch-all: answer as a gateway whose target is absent,
            tables = _catch_all_tables(list(self.units.values()))
            devices.append(SimDevice(0, simdata=tables, action=_absent_target))
        return devices

    def _action(self, unit: _Unit) -> Any:
        async def action(  # noqa: PLR0917 - pymodbus' SimAction signature
            function: int,
            start: int,
            address: int,
            count: int,
            registers: list[int],
            written: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            if written is not None:
                return ExcCodes.ILLEGAL_FUNCTION
            if self.hook is not None and (code := self.hook(unit.unit, function, address, count)):
                return code
            table = _TABLE_OF_CODE[function]
            if unit.span(table) is None:
                return ExcCodes.ILLEGAL_ADDRESS
            if table in BIT_FUNCTIONS:
                _fill_bits(unit, table, start, registers)
            else:
                _fill_registers(unit, table, registers, start=start, address=address, count=count)
            return None

        return action

    def _trace(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not sending and pdu.function_code in _TABLE_OF_CODE:
            self.requests.append(SeenRequest(pdu.dev_id, pdu.function_code, pdu.address, pdu.count))
        return pdu

    async def start(
        self, host: str, port: int, *, framer: str = "socket", sslctx: ssl.SSLContext | None = None
    ) -> None:
        common: dict[str, Any] = {"address": (host, port), "trace_pdu": self._trace}
        if sslctx is not None:
            server: ModbusTcpServer = ModbusTlsServer(self.devices(), sslctx=sslctx, **common)
        else:
            kind = FramerType.RTU if framer == "rtu" else FramerType.SOCKET
            server = ModbusTcpServer(self.devices(), framer=kind, **common)
        await server.serve_forever(background=True)
        self._server = server
        self.host = host
        listener: Any = server.transport  # an asyncio.Server for a listening endpoint
        self.port = int(listener.sockets[0].getsockname()[1])

    def kill(self) -> None:
        """Drop the listener and every connection at once, as a crashed device would."""
        if self._server is not None:
            self._server.close()

    async def close(self) -> None:
        """Stop listening and drop every client connection."""
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()  # type: ignore[no-untyped-call]

    def request_count(self, unit: int | None = None) -> int:
        return sum(1 for r in self.requests if unit is None or r.unit == unit)


async def _absent_target(*_: object) -> ExcCodes | None:
    return ExcCodes.GATEWAY_NO_RESPONSE


async def serve(
    units: Mapping[int, tuple[str, ValueSource]],
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    framer: str = "socket",
    sslctx: ssl.SSLContext | None = None,
) -> ModbusSimServer:
    """Serve `units` ({unit id: (profile name, source)}) on host:port (0: a free port).

    `framer="rtu"` speaks RTU frames over TCP (a serial gateway in transparent
    mode); `sslctx` makes it Modbus/TCP over TLS."""
    server = ModbusSimServer(units)
    await server.start(host, port, framer=framer, sslctx=sslctx)
    return server


# --- standalone demo devices (until the hall model feeds the front end) ----------


class _DemoDevice:
    """Values that drift on a slow sine with a little noise, from wall-clock time."""

    def __init__(self, device_id: str, clock: Clock = time.monotonic) -> None:
        self._id = device_id
        self._clock = clock
        self._t0 = clock()
        self._rng = random.Random(device_id)

    @property
    def device_id(self) -> str:
        return self._id

    def _wave(self, mean: float, amplitude: float, period_s: float = 600.0) -> float:
        t = self._clock() - self._t0
        noise = self._rng.gauss(0, amplitude * 0.05)
        return mean + amplitude * math.sin(2 * math.pi * t / period_s) + noise


class DemoCrac(_DemoDevice):
    """A chilled-water CRAC holding its room at about 24 °C return air."""

    def value(self, metric: str, tags: Mapping[str, str]) -> Value | None:
        ret = self._wave(24.0, 1.0)
        demand = max(0.0, min(100.0, 55 + 10 * (ret - 24.0)))
        values: dict[str, Value] = {
            "crac.return_air_temp_c": round(ret, 1),
            "crac.supply_air_temp_c": round(ret - 0.1 * demand, 1),
            "crac.return_humidity_pct": round(self._wave(45.0, 3.0, 900), 1),
            "crac.supply_humidity_pct": round(self._wave(52.0, 3.0, 900), 1),
            "crac.fan_speed_pct": round(40 + 0.5 * demand, 1),
            "crac.chilled_water_valve_pct": round(demand, 1),
            "crac.water_inlet_temp_c": round(self._wave(7.0, 0.3), 1),
            "crac.water_outlet_temp_c": round(self._wave(12.0, 0.5), 1),
            "crac.cooling_demand_pct": round(demand),
            "crac.cooling_output_w": round(1200 * demand),
            "crac.power_w": round(2000 + 60 * demand),
            "crac.airflow_m3h": round(100 * (40 + 0.5 * demand)) * 1.0,
            "crac.operating_mode": "cooling",
            "crac.alarms_active": 0,
            "crac.setpoint_temp_c": 24.0,
            "crac.humidity_setpoint_pct": 45.0,
            "crac.unit_on": True,
        }
        if metric == "crac.alarm":
            return False
        return values.get(metric)


class DemoUps(_DemoDevice):
    """A three-phase UPS on utility power at 35-45 % load."""

    def value(self, metric: str, tags: Mapping[str, str]) -> Value | None:
        load = self._wave(40.0, 5.0)
        current = 400_000 * load / 100 / (3 * 230)
        values: dict[str, Value] = {
            "ups.output_source": "normal",
            "ups.battery_status": "normal",
            "ups.battery_charge_pct": 100,
            "ups.battery_runtime_s": round(3600 * 40 / load),
            "ups.battery_voltage_v": round(self._wave(545.0, 0.5), 1),
            "ups.battery_current_a": 0.0,
            "ups.battery_temp_c": round(self._wave(25.0, 0.5, 1800), 1),
            "ups.on_battery_s": 0,
            "ups.input_voltage_v": round(self._wave(231.0, 2.0, 120), 1),
            "ups.input_frequency_hz": round(self._wave(50.0, 0.02, 60), 2),
            "ups.output_voltage_v": round(self._wave(230.0, 0.3, 120), 1),
            "ups.output_current_a": round(current, 1),
            "ups.load_pct": round(load),
            "ups.output_frequency_hz": 50.0,
            "ups.output_power_w": round(4000 * load),
            "ups.alarms_present": 0,
        }
        if metric == "ups.alarm_active":
            return False
        return values.get(metric)


class DemoMeter(_DemoDevice):
    """The facility meter: about 150 kW at the incomer, 100 kW of it IT (PUE ~1.5)."""

    def __init__(self, device_id: str, clock: Clock = time.monotonic) -> None:
        super().__init__(device_id, clock)
        self._energy = {"facility": 1_250_000.0, "it": 830_000.0}
        self._last = clock()

    def value(self, metric: str, tags: Mapping[str, str]) -> Value | None:
        scope = tags.get("scope", "facility")
        it_w = self._wave(100_000.0, 8_000.0)
        power = it_w * (1.5 if scope == "facility" else 1.0)
        now = self._clock()
        for name, share in (("facility", 1.5), ("it", 1.0)):
            self._energy[name] += it_w * share * (now - self._last) / 3_600_000
        self._last = now
        pf = 0.95 if scope == "facility" else 0.98
        values: dict[str, Value] = {
            "meter.voltage_v": round(self._wave(230.0, 1.5, 120), 2),
            "meter.current_a": round(power / (3 * 230 * pf), 2),
            "meter.power_w": round(power, 1),
            "meter.apparent_power_va": round(power / pf, 1),
            "meter.power_factor": pf,
            "meter.frequency_hz": round(self._wave(50.0, 0.02, 60), 3),
            "meter.energy_kwh": round(self._energy[scope], 2),
        }
        return values.get(metric)


def demo_units() -> dict[int, tuple[str, ValueSource]]:
    """Unit 1 a CRAC, unit 2 a UPS, unit 3 the facility meter."""
    return {
        1: ("sim-crac", DemoCrac("crac-1")),
        2: ("sim-ups", DemoUps("ups-1")),
        3: ("sim-power-meter", DemoMeter("meter-1")),
    }


async def _main(host: str, port: int, framer: str) -> None:
    units = demo_units()
    server = await serve(units, host, port, framer=framer)
    for unit, (profile, source) in units.items():
        print(f"modbus {framer} {host}:{server.port} unit {unit}: {source.device_id} ({profile})")
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the demo Modbus devices")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5020)
    parser.add_argument("--framer", choices=["socket", "rtu"], default="socket")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.host, args.port, args.framer))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
