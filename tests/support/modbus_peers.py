"""Helpers for Modbus tests: value sources with known values, a plain pymodbus server,
collectors built the way the monitor builds them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from collectors.modbus.collector import ModbusCollector
from collectors.modbus.decode import DataType as FieldType
from collectors.modbus.profile import ModbusField, ModbusProfile, load_modbus_profile
from collectors.registry import CollectorFactory
from dcim.inventory import DeviceConfig, PlacedDevice
from dcim.reading import Reading, Value
from dcim.vocabulary import load_vocabulary


def tag_key(tags: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(tags.items()))


class KnownSource:
    """A ValueSource answering from a table {(metric, tags): value}."""

    def __init__(
        self, device_id: str, values: dict[tuple[str, tuple[tuple[str, str], ...]], Value]
    ):
        self._id = device_id
        self.values = values

    @property
    def device_id(self) -> str:
        return self._id

    def value(self, metric: str, tags: Mapping[str, str]) -> Value | None:
        return self.values.get((metric, tag_key(tags)))


def _sample(field: ModbusField, index: int) -> Value:
    """A value the field can carry exactly, different per field, inside its plausible range."""
    spec = load_vocabulary().get(field.metric)
    if field.enum:
        names = list(field.enum.values())
        return names[index % len(names)]
    if spec.type == "bool":
        return index % 2 == 0
    low, high = field.valid_range or (0.0, 1000.0)
    fraction = (0.2 + 0.6 * ((index * 37) % 100) / 100) if field.type is not FieldType.BITS else 0
    value = low + (high - low) * fraction
    step = abs(field.scale)
    value = round(round(value / step) * step, 6)
    return round(value) if spec.type == "int" else float(value)


def known_values(profile: ModbusProfile) -> dict[tuple[str, tuple[tuple[str, str], ...]], Value]:
    """One known value per field (per flag for alarm words)."""
    values: dict[tuple[str, tuple[tuple[str, str], ...]], Value] = {}
    for index, field in enumerate(profile.fields):
        if field.flags:
            for bit, name in field.flags.items():
                values[(field.metric, tag_key({**field.tags, field.flag_tag: name}))] = bit % 3 == 0
        else:
            values[(field.metric, tag_key(field.tags))] = _sample(field, index)
    return values


def known_source(device_id: str, profile: str) -> KnownSource:
    return KnownSource(device_id, known_values(load_modbus_profile(profile)))


def placed(device_id: str, kind: str, profile: str, modbus: dict[str, Any]) -> PlacedDevice:
    device = DeviceConfig.model_validate(
        {"id": device_id, "kind": kind, "profile": profile, "modbus": modbus}
    )
    return PlacedDevice(device, "s", "r", "", "", MappingProxyType({"device": device_id}))


def build(factory: CollectorFactory, device: PlacedDevice) -> ModbusCollector:
    collector = factory.build(device)
    assert isinstance(collector, ModbusCollector)
    return collector


def by_key(readings: list[Reading]) -> dict[tuple[str, tuple[tuple[str, str], ...]], Value]:
    """Readings keyed like a KnownSource (device tag left out)."""
    out = {}
    for r in readings:
        tags = {k: v for k, v in r.tags.items() if k != "device"}
        out[(r.metric, tag_key(tags))] = r.value
    return out


def same(expected: Value, got: Value) -> bool:
    if isinstance(expected, float) and isinstance(got, float):
        return math.isclose(expected, got, rel_tol=1e-6, abs_tol=1e-9)
    return expected == got and type(expected) is type(got)


async def plain_server(
    registers: dict[int, list[int]], invalid_gaps: bool = True
) -> tuple[ModbusTcpServer, int]:
    """A stock pymodbus server (unit 1) holding `registers` {address: [words]} in a
    shared table (the same words for holding and input reads); addresses not
    given are invalid and answer "illegal data address"."""
    blocks = [
        SimData(address, values=words, datatype=DataType.REGISTERS)
        for address, words in sorted(registers.items())
    ]
    server = ModbusTcpServer([SimDevice(1, simdata=blocks)], address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    listener: Any = server.transport
    return server, int(listener.sockets[0].getsockname()[1])
