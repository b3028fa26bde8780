"""Request planning (pure) and register-map validation with line numbers."""

from __future__ import annotations

import pytest

from collectors.modbus.collector import ModbusCollector
from collectors.modbus.plan import MAX_BITS, MAX_REGISTERS, plan_profile, unmerged
from collectors.modbus.profile import available_modbus_profiles, parse_modbus_profile
from collectors.registry import CollectorFactory
from dcim.errors import ProfileError
from simulators.modbus_server import demo_units, serve
from tests.support.modbus_peers import build, placed


def profile(*fields: str, base: int = 0) -> str:
    head = f"name: t\nkind: sensor\naddress_base: {base}\nfields:\n"
    return head + "".join(f"  - {f}\n" for f in fields)


def spans(text: str, max_gap: int = 8) -> list[str]:
    return [b.span for b in plan_profile(parse_modbus_profile(text, "t.yaml"), max_gap).blocks]


def temp(address: int, function: str = "holding", kind: str = "int16") -> str:
    return f"{{metric: sensor.temp_c, function: {function}, address: {address}, type: {kind}}}"


def test_nearby_registers_merge_and_far_ones_do_not() -> None:
    text = profile(temp(10), temp(0), temp(19, kind="float32"), temp(30), temp(5, "input"))
    # 9 unused registers (1-9) after the first, 8 (11-18) before the float, 9 (21-29) after it
    assert spans(text, max_gap=8) == ["holding 0-0", "holding 10-20", "holding 30-30", "input 5-5"]
    assert spans(text, max_gap=9) == ["holding 0-30", "input 5-5"]
    assert spans(text, max_gap=0) == [
        "holding 0-0",
        "holding 10-10",
        "holding 19-20",
        "holding 30-30",
        "input 5-5",
    ]


def test_reads_stay_within_the_protocol_limits() -> None:
    registers = profile(*(temp(a) for a in range(0, 300, 4)))
    blocks = plan_profile(parse_modbus_profile(registers, "t.yaml"), 8).blocks
    assert max(b.count for b in blocks) <= MAX_REGISTERS
    assert [b.span for b in blocks] == ["holding 0-124", "holding 128-252", "holding 256-296"]
    coil = "{{metric: sensor.door_open, function: coils, address: {}, type: bool}}"
    bits = profile(*(coil.format(a) for a in range(0, 4100, 100)))
    blocks = plan_profile(parse_modbus_profile(bits, "t.yaml"), 8).blocks  # 128-bit gaps bridged
    assert max(b.count for b in blocks) <= MAX_BITS
    assert [b.span for b in blocks] == ["coils 0-1900", "coils 2000-3900", "coils 4000-4000"]


def test_one_based_maps_are_sent_zero_based_and_blocks_split_at_gaps() -> None:
    plan = plan_profile(parse_modbus_profile(profile(temp(1), temp(2), temp(7), base=1), "t"), 8)
    (block,) = plan.blocks
    assert block.span == "holding 0-6"
    assert [b.span for b in block.split()] == ["holding 0-1", "holding 6-6"]
    assert len(unmerged(plan).blocks) == 3
    explained = plan.explain()
    assert "3 fields in 1 request(s) per poll (one per field: 3)" in explained
    assert "FC3 holding 0-6 (7 registers, 3 fields)" in explained


def test_register_map_errors_name_the_line() -> None:
    text = profile(
        temp(0),
        "{metric: sensor.temp_c, function: coils, address: 3, type: int16}",
        "{metric: crac.operating_mode, address: 4, enum: {1: warp}}",
    )
    with pytest.raises(ProfileError) as info:
        parse_modbus_profile(text, "bad.yaml")
    message = str(info.value)
    assert message.startswith("bad.yaml: ")
    assert "fields[1]: coils hold single bits: type must be bool, not int16 (line 6)" in message
    assert "fields[2]: enum names ['warp'] are not values of crac.operating_mode" in message
    assert "(line 7)" in message
    with pytest.raises(ProfileError, match=r"address 0 is outside the 1-based address space"):
        parse_modbus_profile(profile(temp(0), base=1), "b1.yaml")


def test_shipped_maps_are_valid() -> None:
    names = available_modbus_profiles()
    assert {"sim-crac", "sim-ups", "sim-power-meter", "eastron-sdm630", "generic-th-sensor"} <= set(
        names
    )


async def test_the_server_sees_as_many_requests_as_the_plan_says() -> None:
    """Requests per poll before (one per field) and after planning, counted by the server."""
    server = await serve(demo_units())
    factory = CollectorFactory()
    seen: dict[str, tuple[int, int]] = {}
    try:
        for unit, (name, _) in demo_units().items():
            modbus = {"host": "127.0.0.1", "port": server.port, "unit_id": unit}
            device = placed(name, "crac", name, modbus)
            assert device.device.modbus is not None
            planned = build(factory, device)
            naive = ModbusCollector(
                device, unmerged(planned.plan), planned._gateway, device.device.modbus
            )
            counts = []
            for collector in (naive, planned):
                before = server.request_count(unit)
                readings = await collector.poll()
                counts.append(server.request_count(unit) - before)
                assert readings
            seen[name] = (counts[0], counts[1])
    finally:
        factory.close()
        await server.close()
    assert seen == {"sim-crac": (19, 4), "sim-ups": (25, 1), "sim-power-meter": (15, 2)}


def test_modbus_config_tls_port_and_section() -> None:
    from pydantic import ValidationError

    from dcim.inventory import ModbusConfig

    assert ModbusConfig(host="gw", transport="tls").port == 802
    assert ModbusConfig(host="gw").port == 502
    assert ModbusConfig(host="gw", transport="tls", port=8802).port == 8802
    with pytest.raises(ValidationError, match="a tls section needs transport tls"):
        ModbusConfig.model_validate({"host": "gw", "tls": {"insecure_skip_verify": True}})
