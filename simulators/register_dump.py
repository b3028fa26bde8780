"""A Modbus TCP server that serves a register dump: raw register values from a data file.

A dump is what a device holds, register by register, written down from the
vendor's documentation (its worked examples, or its table's encoding applied to
plausible values) or captured from a real device. Serving it lets a register map
be checked through the production collector with nothing but the file:

    profile: abb-m4m                 # the register map it is meant for
    device: ABB M4M 30 (Modbus RTU)
    source: ABB M4M Modbus manual, register table and its reading example
    unit_id: 1
    registers:                       # addresses as sent on the wire (0-based)
      holding:
        0x5B00: [0x0000, 0x08FC]     # from here on, one word per register
      input: {}
      coils: {0: [1, 0, 1]}          # bit tables: one 0/1 per coil
    expect:                          # what the map must decode (optional)
      - {metric: meter.voltage_v, tags: {phase: "1"}, value: 230.0}

Each table is served from its lowest to its highest dumped address; registers
inside that span the dump does not give read as 0, anything outside answers
"illegal data address", and writes are refused ("illegal function"), as a
read-only device would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from dcim.errors import DcimError
from dcim.yamlsource import YamlSourceError, line_of, load_yaml_with_lines

TABLES = ("coils", "discrete_inputs", "holding", "input")
_BIT_TABLES = frozenset({"coils", "discrete_inputs"})
MAX_ADDRESS = 0xFFFF


class DumpError(DcimError):
    """A dump file that cannot be served; each problem names its line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


@dataclass(frozen=True, slots=True)
class Expected:
    """One reading the map must produce from the dump."""

    metric: str
    tags: Mapping[str, str]
    value: Any
    line: int | None = None


@dataclass(frozen=True, slots=True)
class RegisterDump:
    source: str
    profile: str
    device: str
    unit_id: int
    #: table -> {wire address: word (registers) or 0/1 (bits)}
    tables: Mapping[str, Mapping[int, int]]
    expect: tuple[Expected, ...] = ()
    description: str = ""
    notes: Mapping[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return sum(len(values) for values in self.tables.values())

    def span(self, table: str) -> tuple[int, int] | None:
        """(first, last + 1) address of a table, None when the dump has none."""
        values = self.tables.get(table)
        if not values:
            return None
        return min(values), max(values) + 1


def _address(raw: object) -> int:
    if isinstance(raw, bool):
        raise ValueError("an address is a number")
    if isinstance(raw, str):
        return int(raw, 0)
    if isinstance(raw, int):
        return raw
    raise ValueError(f"{raw!r} is not an address")


def _table(name: str, raw: object, lines: dict[Any, int], problems: list[str]) -> dict[int, int]:
    def problem(path: tuple[Any, ...], message: str) -> None:
        line = lines.get(("registers", name, *path)) or line_of(
            lines, ("registers", name, *(str(p) for p in path))
        )
        problems.append(f"registers.{name}: {message}" + (f" (line {line})" if line else ""))

    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problem((), "expected {address: [words...]}")
        return {}
    limit = 1 if name in _BIT_TABLES else 0xFFFF
    out: dict[int, int] = {}
    for key, words in raw.items():
        try:
            start = _address(key)
        except ValueError as exc:
            problem((key,), str(exc))
            continue
        for offset, word in enumerate(words if isinstance(words, list) else [words]):
            address = start + offset
            if isinstance(word, bool) or not isinstance(word, int) or not 0 <= word <= limit:
                problem((key,), f"address {address}: {word!r} is not a value 0..{limit}")
                continue
            if not 0 <= address <= MAX_ADDRESS:
                problem((key,), f"address {address} is outside 0..65535")
                continue
            if address in out:
                problem((key,), f"address {address} is given twice")
            out[address] = word
    return out


def parse_dump(text: str, source: str = "<dump>") -> RegisterDump:
    """Validate a dump's text; DumpError lists each problem with its line."""
    try:
        data, lines = load_yaml_with_lines(text, source)
    except YamlSourceError as exc:
        raise DumpError(source, [str(exc).removeprefix(f"{source}: ")]) from None
    if not isinstance(data, dict):
        raise DumpError(source, ["a dump is a mapping with profile, registers and expect"])
    problems: list[str] = []
    known = {"profile", "device", "source", "description", "unit_id", "registers", "expect"}
    for key in sorted(set(data) - known, key=str):
        line = line_of(lines, (key,))
        problems.append(f"unknown key {key!r}" + (f" (line {line})" if line else ""))
    registers = data.get("registers")
    if not isinstance(registers, dict):
        problems.append("registers: a mapping of tables (holding, input, coils, discrete_inputs)")
        registers = {}
    for name in registers:
        if name not in TABLES:
            line = line_of(lines, ("registers", name))
            problems.append(
                f"registers.{name}: not a table ({', '.join(TABLES)})"
                + (f" (line {line})" if line else "")
            )
    tables = {name: _table(name, registers.get(name), lines, problems) for name in TABLES}
    expect: list[Expected] = []
    for i, raw in enumerate(data.get("expect") or []):
        if not isinstance(raw, dict) or "metric" not in raw or "value" not in raw:
            line = line_of(lines, ("expect", i))
            problems.append(
                f"expect[{i}]: expected {{metric, value, tags}}"
                + (f" (line {line})" if line else "")
            )
            continue
        tags = {str(k): str(v) for k, v in (raw.get("tags") or {}).items()}
        expect.append(
            Expected(str(raw["metric"]), tags, raw["value"], line_of(lines, ("expect", i)))
        )
    unit = data.get("unit_id", 1)
    if isinstance(unit, bool) or not isinstance(unit, int) or not 0 <= unit <= 255:
        problems.append(f"unit_id: {unit!r} is not 0..255")
        unit = 1
    if not any(tables.values()):
        problems.append("registers: the dump holds no register")
    if problems:
        raise DumpError(source, problems)
    return RegisterDump(
        source,
        str(data.get("profile", "")),
        str(data.get("device", "")),
        unit,
        tables,
        tuple(expect),
        str(data.get("description", "") or data.get("source", "")),
    )


def load_dump(path: str | Path) -> RegisterDump:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DumpError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
    return parse_dump(text, str(path))


def _sim_tables(
    dump: RegisterDump,
) -> tuple[list[SimData], list[SimData], list[SimData], list[SimData]]:
    out: list[list[SimData]] = []
    for name in TABLES:
        span = dump.span(name)
        bits = name in _BIT_TABLES
        values: Mapping[int, int] = dump.tables.get(name, {})
        # an empty table still needs an entry; reads of it are refused in the action
        start, end = span if span is not None else (0, 1)
        if bits:
            data = SimData(
                start,
                values=[bool(values.get(a, 0)) for a in range(start, end)],
                datatype=DataType.BITS,
            )
        else:
            data = SimData(
                start,
                values=[values.get(a, 0) for a in range(start, end)],
                datatype=DataType.REGISTERS,
            )
        out.append([data])
    return out[0], out[1], out[2], out[3]


_CODE_TABLE = {1: "coils", 2: "discrete_inputs", 3: "holding", 4: "input"}


class DumpServer:
    """Serves one dump as one unit id; `port` is the bound port once started."""

    def __init__(self, dump: RegisterDump, unit_id: int | None = None) -> None:
        self.dump = dump
        self.unit_id = dump.unit_id if unit_id is None else unit_id
        self.host = ""
        self.port = 0
        self._server: ModbusTcpServer | None = None

    async def _action(  # noqa: PLR0917 - pymodbus' SimAction signature
        self,
        function: int,
        start: int,
        address: int,
        count: int,
        registers: list[int],
        written: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        del start, registers
        if written is not None:
            return ExcCodes.ILLEGAL_FUNCTION
        span = self.dump.span(_CODE_TABLE.get(function, ""))
        if span is None or address < span[0] or address + count > span[1]:
            return ExcCodes.ILLEGAL_ADDRESS
        return None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        device = SimDevice(self.unit_id, simdata=_sim_tables(self.dump), action=self._action)
        server = ModbusTcpServer([device], address=(host, port))
        await server.serve_forever(background=True)
        self._server = server
        self.host = host
        listener: Any = server.transport
        self.port = int(listener.sockets[0].getsockname()[1])

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()  # type: ignore[no-untyped-call]

    async def __aenter__(self) -> DumpServer:
        if self._server is None:
            await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def _main(path: Path, host: str, port: int) -> None:
    dump = load_dump(path)
    server = DumpServer(dump)
    await server.start(host, port)
    print(
        f"modbus tcp:{host}:{server.port} unit {server.unit_id}: {len(dump)} register(s) "
        f"of {dump.device or path.name} (map {dump.profile or '?'})"
    )
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a Modbus register dump")
    parser.add_argument("dump", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5020)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.dump, args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
