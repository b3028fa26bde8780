"""`dcim modbus preview` and `dcim modbus poll --explain`, run as a user runs them."""

from __future__ import annotations

import asyncio
import sys

from collectors.modbus.decode import DataType, Order, raw_codec
from collectors.modbus.preview import render_preview
from simulators.modbus_server import serve
from tests.support.modbus_peers import known_source


def test_preview_shows_the_plausible_reading_under_the_right_order() -> None:
    registers = [*raw_codec(DataType.FLOAT32, Order.CDAB).encode(230.25), 0, 0]
    text = render_preview(100, registers)
    row = next(line for line in text.splitlines() if line.startswith("100 ") and "float32" in line)
    cells = row.split()[2:]
    assert cells[1] == "230.25"  # the CDAB column
    assert "230.25" not in (cells[0], cells[2], cells[3])
    assert "64-bit at" in text
    assert text.splitlines()[1].startswith("100     0x")


async def _dcim(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dcim", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_preview_and_explain_against_the_simulator() -> None:
    source = known_source("m", "sim-power-meter")
    server = await serve({3: ("sim-power-meter", source)})
    try:
        target = ("--host", "127.0.0.1", "--port", str(server.port), "--unit", "3")
        preview = await _dcim(
            "modbus", "preview", *target, "--address", "0", "--count", "4", "--function", "input"
        )
        poll = await _dcim("modbus", "poll", *target, "--profile", "sim-power-meter", "--explain")
        dead = await _dcim(
            "modbus",
            "preview",
            "--host",
            "127.0.0.1",
            "--port",
            str(server.port),
            "--unit",
            "9",
            "--address",
            "0",
        )
    finally:
        await server.close()
    code, out, err = preview
    assert code == 0, err
    phase1 = source.values[("meter.voltage_v", (("phase", "1"), ("scope", "facility")))]
    row = next(line for line in out.splitlines() if line.startswith("0 ") and "float32" in line)
    assert row.split()[3] == f"{phase1:.7g}"  # CDAB column
    code, out, err = poll
    assert code == 0, err
    assert "15 fields in 2 request(s) per poll (one per field: 15)" in out
    assert "FC4 input 100-107 (8 registers, 4 fields)" in out
    assert out.rstrip().splitlines()[-1].startswith("15 readings, 2 request(s)")
    code, out, err = dead
    assert code == 1
    assert "exception 11 (gateway target device failed to respond)" in err
