"""The Modbus collector against real servers on loopback: the simulator front end
(every shipped register map), a stock pymodbus server with known registers, TLS
and RTU framing, exceptions, a dead server, timeouts."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymodbus.constants import ExcCodes

from collectors.modbus.client import (
    ModbusConnectError,
    ModbusExceptionError,
    ModbusTimeoutError,
)
from collectors.modbus.collector import ModbusCollector
from collectors.modbus.decode import DataType as T
from collectors.modbus.decode import Order as O
from collectors.modbus.decode import raw_codec
from collectors.modbus.plan import plan_profile
from collectors.modbus.profile import ModbusProfile, load_modbus_profile, parse_modbus_profile
from collectors.registry import CollectorFactory
from dcim.errors import CollectError
from dcim.poller import DevicePoller
from dcim.reading import Reading
from simulators.modbus_server import ModbusSimServer, serve
from tests.support.certs import self_signed
from tests.support.modbus_peers import build, by_key, known_source, placed, plain_server, same

PROFILES = [
    (1, "sim-crac", "crac"),
    (2, "sim-ups", "ups"),
    (3, "sim-power-meter", "meter"),
    (4, "eastron-sdm630", "meter"),
    (5, "generic-th-sensor", "sensor"),
]


@pytest.fixture
async def sim() -> AsyncIterator[ModbusSimServer]:
    """Every shipped register map as one unit id behind one port, with known values."""
    server = await serve({unit: (p, known_source(f"dev{unit}", p)) for unit, p, _ in PROFILES})
    yield server
    await server.close()


@pytest.fixture
def factory() -> Iterator[CollectorFactory]:
    f = CollectorFactory()
    yield f
    f.close()


def _modbus(port: int, unit: int, **extra: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port, "unit_id": unit, "timeout_s": 1.0, **extra}


@pytest.mark.parametrize(("unit", "profile", "kind"), PROFILES)
async def test_every_field_of_every_map_reads_back_what_the_device_holds(
    sim: ModbusSimServer, factory: CollectorFactory, unit: int, profile: str, kind: str
) -> None:
    collector = build(factory, placed(f"dev{unit}", kind, profile, _modbus(sim.port, unit)))
    async with collector:
        readings = await collector.poll()
    expected = sim.units[unit].source.values  # type: ignore[attr-defined]
    got = by_key(readings)
    assert set(got) == set(expected)
    wrong = {
        key: (expected[key], got[key]) for key in expected if not same(expected[key], got[key])
    }
    assert not wrong
    assert sim.request_count(unit) == len(factory.modbus_plan(profile, 8).blocks)


async def test_units_behind_one_gateway_share_one_connection(
    sim: ModbusSimServer, factory: CollectorFactory
) -> None:
    collectors = [
        build(factory, placed(f"dev{u}", k, p, _modbus(sim.port, u))) for u, p, k in PROFILES
    ]
    results = await asyncio.gather(*(c.poll() for c in collectors))
    assert all(results)
    gateway = factory.modbus_gateway(collectors[0]._gateway.config)
    assert all(c._gateway is gateway for c in collectors)
    assert gateway.connects == 1
    await asyncio.gather(*(c.poll() for c in collectors))
    assert gateway.connects == 1  # reused across polls


async def test_max_in_flight_opens_that_many_connections(sim: ModbusSimServer) -> None:
    factory = CollectorFactory()
    try:
        collectors = [
            build(factory, placed(f"dev{u}", k, p, _modbus(sim.port, u, max_in_flight=3)))
            for u, p, k in PROFILES[:3]
        ]
        await asyncio.gather(*(c.poll() for c in collectors))
        assert collectors[0]._gateway.connects == 3
    finally:
        factory.close()


def _collector(
    factory: CollectorFactory,
    profile: ModbusProfile,
    port: int,
    *,
    max_gap: int,
    device_id: str = "plain",
) -> ModbusCollector:
    """A collector for a profile that is not shipped (built by the test)."""
    device = placed(device_id, profile.kind, "unused", _modbus(port, 1))
    config = device.device.modbus
    assert config is not None
    return ModbusCollector(
        device, plan_profile(profile, max_gap=max_gap), factory.modbus_gateway(config), config
    )


# --- every data type x order against a stock pymodbus server -----------------------

_CASES: list[tuple[T, O, float | int]] = [
    (T.INT16, O.ABCD, -1234),
    (T.INT16, O.BADC, -1234),
    (T.UINT16, O.ABCD, 54321),
    (T.UINT16, O.DCBA, 54321),
    *[(t, o, v) for t, v in [(T.INT32, -123456789), (T.UINT32, 3_000_000_000)] for o in O],
    *[(t, o, v) for t, v in [(T.INT64, -(2**40) - 7), (T.UINT64, 2**50 + 3)] for o in O],
    *[(T.FLOAT32, o, 230.25) for o in O],
    *[(T.FLOAT64, o, -98765.4321) for o in O],
]


async def test_every_type_and_order_from_a_plain_pymodbus_server(
    factory: CollectorFactory,
) -> None:
    registers: dict[int, list[int]] = {}
    lines = ["name: all-types", "kind: meter", "address_base: 0", "fields:"]
    address = 0
    for dtype, order, value in _CASES:
        registers[address] = raw_codec(dtype, order).encode(value)
        # scaled by 1e-9 into meter.power_w's plausible range (the vocabulary refuses 2**50 W)
        lines.append(
            f"  - {{metric: meter.power_w, function: holding, address: {address}, scale: 1.0e-9, "
            f"type: {dtype.value}, order: {order.value}, tags: {{case: {dtype.value}-{order.value}}}}}"
        )
        address += len(registers[address])
    # a string (byte-swapped, as some controllers store text) and bit fields
    registers[address] = raw_codec(T.STRING, O.BADC, length=4).encode("COOLING")
    lines.append(
        f"  - {{metric: crac.operating_mode, address: {address}, type: string, length: 4, "
        f"order: BADC, enum: {{COOLING: cooling, IDLE: idle}}}}"
    )
    registers[address + 4] = [0b1010_0000_0000_0100]
    lines.append(f"  - {{metric: crac.unit_on, address: {address + 4}, type: bits, bit: 2}}")
    lines.append(
        f"  - {{metric: crac.alarm, address: {address + 4}, flags: {{13: fan_failure, 14: filter}}}}"
    )
    profile = parse_modbus_profile("\n".join(lines) + "\n", "all-types.yaml")
    server, port = await plain_server(registers)
    try:
        collector = _collector(factory, profile, port, max_gap=8)
        readings = await collector.poll()
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]
    powers = {r.tags["case"]: r.value for r in readings if r.metric == "meter.power_w"}
    for dtype, order, value in _CASES:
        assert powers[f"{dtype.value}-{order.value}"] == pytest.approx(value * 1e-9, rel=1e-7)
    rest = {
        (r.metric, r.tags.get("alarm")): r.value for r in readings if r.metric != "meter.power_w"
    }
    assert rest == {
        ("crac.operating_mode", None): "cooling",
        ("crac.unit_on", None): True,
        ("crac.alarm", "fan_failure"): True,
        ("crac.alarm", "filter"): False,
    }
    assert collector._gateway.requests == 1  # 66 registers, one read


# --- exceptions, dead servers, timeouts ---------------------------------------------


async def test_illegal_address_across_a_gap_splits_the_block_and_keeps_the_rest(
    factory: CollectorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    profile = parse_modbus_profile(
        "name: gappy\nkind: sensor\naddress_base: 0\nfields:\n"
        "  - {metric: sensor.temp_c, function: holding, address: 0, type: int16, scale: 0.1}\n"
        "  - {metric: sensor.humidity_pct, function: holding, address: 6, scale: 0.1}\n"
        "  - {metric: sensor.dew_point_c, function: holding, address: 40, type: int16}\n",
        "gappy.yaml",
    )
    # registers 1..5 do not exist on this device, nor does 40
    server, port = await plain_server({0: [215], 6: [480]})
    try:
        collector = _collector(factory, profile, port, max_gap=8, device_id="gappy")
        gateway = collector._gateway
        assert [b.span for b in collector.blocks] == ["holding 0-6", "holding 40-40"]
        with caplog.at_level(logging.INFO, logger="collectors.modbus"):
            first = await collector.poll()
            second = await collector.poll()
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]
    for readings in (first, second):
        assert {r.metric: r.value for r in readings} == {
            "sensor.temp_c": 21.5,
            "sensor.humidity_pct": 48.0,
        }
    assert [b.span for b in collector.blocks] == ["holding 0-0", "holding 6-6", "holding 40-40"]
    # poll 1: merged read refused, 2 pieces, the lone block refused; poll 2: 3 reads
    assert gateway.requests == 4 + 3
    bad = [r.getMessage() for r in caplog.records if "holding 40-40" in r.getMessage()]
    assert bad == [
        "device gappy unit 1 holding 40-40: unit 1 FC3 address 40 count 1: "
        "exception 2 (illegal data address) (its fields are skipped)"
    ]


async def test_busy_block_costs_only_its_fields_and_is_logged_once(
    sim: ModbusSimServer, factory: CollectorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    sim.hook = lambda unit, fc, _a, _c: ExcCodes.DEVICE_BUSY if (unit, fc) == (1, 4) else None
    collector = build(factory, placed("crac", "crac", "sim-crac", _modbus(sim.port, 1)))
    with caplog.at_level(logging.INFO, logger="collectors.modbus"):
        polls = [await collector.poll() for _ in range(3)]
        sim.hook = None
        recovered = await collector.poll()
    for readings in polls:
        assert {r.metric for r in readings} == {
            "crac.unit_on",
            "crac.alarm",
            "crac.setpoint_temp_c",
            "crac.humidity_setpoint_pct",
        }
    assert len(recovered) == 29
    messages = [r.getMessage() for r in caplog.records]
    busy = [m for m in messages if "server device busy" in m]
    assert busy == [
        "device crac unit 1 input 0-21: unit 1 FC4 address 0 count 22: "
        "exception 6 (server device busy) (its fields are skipped)"
    ]
    assert "device crac unit 1 input 0-21: answering again" in messages


async def test_unknown_unit_is_a_gateway_failure_and_the_others_still_answer(
    sim: ModbusSimServer, factory: CollectorFactory
) -> None:
    ghost = build(factory, placed("ghost", "crac", "sim-crac", _modbus(sim.port, 9)))
    ups = build(factory, placed("ups", "ups", "sim-ups", _modbus(sim.port, 2)))
    with pytest.raises(ModbusExceptionError, match="exception 11") as info:
        await ghost.poll()
    assert info.value.error_class == "gateway"
    assert len(await ups.poll()) == 34


async def test_server_dying_mid_poll_keeps_what_was_read_and_reconnects_later(
    sim: ModbusSimServer, factory: CollectorFactory
) -> None:
    collector = build(factory, placed("crac", "crac", "sim-crac", _modbus(sim.port, 1)))

    def die_on_discrete_inputs(_unit: int, fc: int, _a: int, _c: int) -> None:
        if fc == 2:
            sim.kill()  # listener and connections gone before the answer is sent

    sim.hook = die_on_discrete_inputs
    readings = await collector.poll()
    assert [r.metric for r in readings] == ["crac.unit_on"]  # the coil block came first
    with pytest.raises(ModbusConnectError, match="cannot connect"):
        await collector.poll()
    # the device comes back on the same port: the gateway opens a new connection
    units = {u: (sim.units[u].profile.name, sim.units[u].source) for u in sim.units}
    revived = await serve(units, port=sim.port)
    try:
        assert len(await collector.poll()) == 29
    finally:
        await revived.close()


async def test_a_silent_device_times_out_without_reading_every_block(
    silent_port: int, factory: CollectorFactory
) -> None:
    collector = build(
        factory,
        placed("mute", "crac", "sim-crac", _modbus(silent_port, 1, timeout_s=0.2, retries=0)),
    )
    with pytest.raises(ModbusTimeoutError) as info:
        await collector.poll()
    assert isinstance(info.value, CollectError)
    assert info.value.error_class == "timeout"
    assert collector._gateway.requests == 2  # 4 blocks planned; gave up after two timeouts


# --- transports ---------------------------------------------------------------------


async def test_rtu_framing_over_tcp(factory: CollectorFactory) -> None:
    server = await serve(
        {3: ("sim-power-meter", known_source("m", "sim-power-meter"))}, framer="rtu"
    )
    try:
        collector = build(
            factory,
            placed(
                "meter",
                "meter",
                "sim-power-meter",
                _modbus(server.port, 3, transport="rtu-over-tcp"),
            ),
        )
        readings = await collector.poll()
    finally:
        await server.close()
    assert by_key(readings) == pytest.approx(server.units[3].source.values)  # type: ignore[attr-defined]


async def test_modbus_tls_with_a_verified_server_certificate(
    tmp_path: Path, factory: CollectorFactory
) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = await serve({2: ("sim-ups", known_source("u", "sim-ups"))}, sslctx=context)
    try:
        good = build(
            factory,
            placed(
                "ups",
                "ups",
                "sim-ups",
                _modbus(server.port, 2, transport="tls", tls={"ca_file": str(cert)}),
            ),
        )
        readings = await good.poll()
        stranger = CollectorFactory()  # no CA given: the system store does not know this server
        try:
            untrusted = build(
                stranger, placed("ups2", "ups", "sim-ups", _modbus(server.port, 2, transport="tls"))
            )
            with pytest.raises(ModbusConnectError):
                await untrusted.poll()
        finally:
            stranger.close()
    finally:
        await server.close()
    assert len(readings) == 34
    assert load_modbus_profile("sim-ups").name == "sim-ups"


async def test_a_dead_unit_never_stops_the_others_in_the_poller(
    sim: ModbusSimServer, factory: CollectorFactory
) -> None:
    emitted: list[Reading] = []
    pollers = [
        DevicePoller(
            build(factory, placed(name, kind, profile, _modbus(sim.port, unit))),
            interval_s=60,
            emit=emitted.extend,
        )
        for name, kind, profile, unit in [
            ("ghost", "crac", "sim-crac", 9),
            ("ups", "ups", "sim-ups", 2),
        ]
    ]
    for poller in pollers:
        await poller.poll_once()
    up = {r.device_id: r.value for r in emitted if r.metric == "device.up"}
    assert up == {"ghost": False, "ups": True}
    assert pollers[0].last_error is not None
    assert pollers[0].last_error.error_class == "gateway"
    assert sum(1 for r in emitted if r.device_id == "ups" and r.metric.startswith("ups.")) == 34
