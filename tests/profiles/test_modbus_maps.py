"""Every shipped vendor register map, polled by the production collector from a register dump.

Each `modbus_dumps/<map>.yaml` holds the registers a device of that vendor would
hold, written from the vendor's register table (its types, word order, scaling
and "not available" codes) at known readings, and the readings the map must give.
`simulators.register_dump` serves it on pymodbus' TCP server and the monitor's own
ModbusCollector polls it through its gateway, so a wrong address, type, order or
scale shows as a wrong or missing reading. `dcim profile test --registers` is the
same path from the command line.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from types import MappingProxyType

import pytest

from collectors.modbus.client import ModbusGateway
from collectors.modbus.collector import ModbusCollector
from collectors.modbus.plan import plan_profile
from collectors.modbus.profile import load_modbus_profile
from dcim.inventory import DeviceConfig, ModbusConfig, PlacedDevice
from dcim.reading import Reading
from simulators.register_dump import DumpError, DumpServer, load_dump, parse_dump

ROOT = Path(__file__).resolve().parents[2]
DUMPS = Path(__file__).parent / "modbus_dumps"
MAPS = ROOT / "collectors" / "profiles" / "modbus"
#: Maps of our own simulators (tested against them in tests/simulators).
SIMULATOR_MAPS = {"sim-crac", "sim-power-meter", "sim-ups", "generic-th-sensor"}


async def poll_dump(path: Path, profile_name: str | None = None) -> list[Reading]:
    dump = load_dump(path)
    profile = load_modbus_profile(profile_name or dump.profile)
    async with DumpServer(dump) as server:
        config = ModbusConfig(host="127.0.0.1", port=server.port, unit_id=dump.unit_id, retries=0)
        placed = PlacedDevice(
            DeviceConfig.model_validate(
                {
                    "id": "dut",
                    "kind": profile.kind,
                    "profile": profile.name,
                    "modbus": config.model_dump(),
                }
            ),
            "lab",
            "hall",
            "",
            "",
            MappingProxyType({"device": "dut"}),
        )
        gateway = ModbusGateway(config)
        try:
            return await ModbusCollector(placed, plan_profile(profile), gateway, config).poll()
        finally:
            gateway.close()


def _key(metric: str, tags: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return metric, tuple(sorted(tags.items()))


def test_every_vendor_map_has_a_dump() -> None:
    maps = {p.stem for p in MAPS.glob("*.yaml")} - SIMULATOR_MAPS
    dumps = {load_dump(p).profile for p in DUMPS.glob("*.yaml")}
    assert maps <= dumps, f"maps without a register dump: {sorted(maps - dumps)}"


@pytest.mark.parametrize("path", sorted(DUMPS.glob("*.yaml")), ids=lambda p: p.stem)
async def test_map_decodes_its_dump(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    dump = load_dump(path)
    assert dump.expect, "a dump says what the map must read from it"
    with caplog.at_level(logging.WARNING, logger="collectors.modbus.collector"):
        readings = await poll_dump(path)
    dropped = [r.getMessage() for r in caplog.records]
    assert not dropped, dropped
    got = {
        _key(r.metric, {k: v for k, v in r.tags.items() if k not in ("device", "site", "room")}): r
        for r in readings
    }
    for expected in dump.expect:
        key = _key(expected.metric, dict(expected.tags))
        assert key in got, f"line {expected.line}: no reading {key}; got {sorted(got)}"
        value = got[key].value
        if isinstance(expected.value, float) and not isinstance(value, str | bool):
            assert math.isclose(float(value), expected.value, rel_tol=1e-6, abs_tol=1e-9), (
                f"line {expected.line}: {key} = {value}, expected {expected.value}"
            )
        else:
            assert value == expected.value, f"line {expected.line}: {key} = {value!r}"
    # nothing beyond what the dump expects: "not available" codes give no reading
    assert len(got) == len(dump.expect), sorted(
        set(got) - {_key(e.metric, dict(e.tags)) for e in dump.expect}
    )


def test_dump_errors_name_the_line() -> None:
    text = "profile: x\nregisters:\n  holding:\n    10: [1, 70000]\n  inputs: {}\nexpect:\n  - 3\n"
    with pytest.raises(DumpError) as err:
        parse_dump(text, "bad.yaml")
    problems = err.value.problems
    assert any("address 11: 70000 is not a value 0..65535 (line 4)" in p for p in problems)
    assert any("registers.inputs: not a table" in p and "(line 5)" in p for p in problems)
    assert any("expect[0]" in p and "(line 7)" in p for p in problems)


def test_profile_test_command_serves_a_dump_and_flags_implausible_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dcim.cli import main

    source = DUMPS / "abb-m4m.yaml"
    code = main(["profile", "test", str(MAPS / "abb-m4m.yaml"), "--registers", str(source)])
    out = capsys.readouterr().out
    assert code == 0, out
    line = next(row for row in out.splitlines() if row.startswith("meter.frequency_hz"))
    assert "49.98" in line
    assert "modbus:holding 23340" in line  # 0x5B2C, where it was read
    assert "# 10 reading(s), 0 value(s) dropped" in out
    assert "NOTE" in out
    assert "holding 23300-23301" in out

    # the same dump with 80 Hz in the frequency register: outside the map's range
    text = source.read_text().replace("23340: 0x1386", "23340: 0x1F40")
    assert text != source.read_text()
    bad = tmp_path / "abb-80hz.yaml"
    bad.write_text(text)
    code = main(["profile", "test", str(MAPS / "abb-m4m.yaml"), "--registers", str(bad)])
    out = capsys.readouterr().out
    assert code == 1
    flag = next(row for row in out.splitlines() if row.startswith("FLAG"))
    assert "meter.frequency_hz" in flag
    assert "80 outside plausible range 40..70" in flag
