"""Request planning for one register map: pure, computed once per (profile, max_gap).

Fields of the same table that sit close together are read in one request:
a block grows while the next field starts at most `max_gap` unused registers
after it and the block stays within the protocol's limit (125 registers per
FC3/FC4 read, 2000 bits per FC1/FC2). For bit tables the gap is counted in
bits, 16 per register of `max_gap`, since a register costs 16 bits on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass

from collectors.modbus.decode import FieldCodec, compile_field
from collectors.modbus.profile import BIT_FUNCTIONS, Function, ModbusField, ModbusProfile
from dcim.vocabulary import load_vocabulary

MAX_REGISTERS = 125
MAX_BITS = 2000

#: Modbus function code of each table (read side).
FUNCTION_CODES: dict[str, int] = {"coils": 1, "discrete_inputs": 2, "holding": 3, "input": 4}


@dataclass(frozen=True, slots=True)
class PlannedField:
    """A field ready for the hot path: where it sits in its block and how to decode it."""

    field: ModbusField
    address: int  # as sent on the wire
    codec: FieldCodec
    unit: str | None

    @property
    def end(self) -> int:
        return self.address + self.field.registers


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: a table, a start address, a count, and the fields inside."""

    function: Function
    address: int
    count: int
    fields: tuple[PlannedField, ...]

    @property
    def code(self) -> int:
        return FUNCTION_CODES[self.function]

    @property
    def span(self) -> str:
        """`holding 0-9` style text for logs and --explain."""
        return f"{self.function} {self.address}-{self.address + self.count - 1}"

    def split(self) -> tuple[Block, ...]:
        """The block cut at every gap: for devices that refuse reads across unused registers."""
        runs: list[list[PlannedField]] = []
        end = -1
        for planned in self.fields:
            if runs and planned.address <= end:
                runs[-1].append(planned)
            else:
                runs.append([planned])
            end = max(end, planned.end)
        return tuple(_block(self.function, run) for run in runs)


def _block(function: Function, fields: list[PlannedField]) -> Block:
    start = min(f.address for f in fields)
    end = max(f.end for f in fields)
    return Block(function, start, end - start, tuple(fields))


@dataclass(frozen=True, slots=True)
class ModbusPlan:
    """What one poll of a device with this profile sends."""

    profile: ModbusProfile
    max_gap: int
    blocks: tuple[Block, ...]

    @property
    def naive_requests(self) -> int:
        """Requests without planning: one per field."""
        return len(self.profile.fields)

    def explain(self) -> str:
        """The plan as text, for `dcim poll --explain`."""
        p = self.profile
        lines = [
            f"profile {p.name}: address base {p.address_base}, order {p.order.value}, "
            f"max_gap {self.max_gap}: {len(p.fields)} fields in {len(self.blocks)} "
            f"request(s) per poll (one per field: {self.naive_requests})"
        ]
        for block in self.blocks:
            unit = "bits" if block.function in BIT_FUNCTIONS else "registers"
            lines.append(
                f"  FC{block.code} {block.span} ({block.count} {unit}, {len(block.fields)} fields)"
            )
            for planned in block.fields:
                f = planned.field
                where = f"@{planned.address}"
                if f.registers > 1:
                    where += f"-{planned.end - 1}"
                order = (f.order or p.order).value if f.registers > 1 else ""
                tags = " ".join(f"{k}={v}" for k, v in f.tags.items())
                lines.append(
                    f"    {where:<12} {f.type.value:<8} {order:<4} {f.metric} {tags}".rstrip()
                )
        return "\n".join(lines)


def plan_profile(profile: ModbusProfile, max_gap: int = 8) -> ModbusPlan:
    """Merge the profile's fields into as few reads as the protocol allows."""
    vocabulary = load_vocabulary()
    by_function: dict[Function, list[PlannedField]] = {}
    for field in profile.fields:
        spec = vocabulary.get(field.metric)
        planned = PlannedField(
            field,
            profile.wire_address(field),
            compile_field(field, spec.type, profile.order),
            spec.unit,
        )
        by_function.setdefault(field.function, []).append(planned)
    blocks: list[Block] = []
    for function in ("coils", "discrete_inputs", "holding", "input"):
        fields = sorted(by_function.get(function, []), key=lambda f: (f.address, f.end))
        if fields:
            blocks.extend(_merge(function, fields, max_gap))
    return ModbusPlan(profile, max_gap, tuple(blocks))


def unmerged(plan: ModbusPlan) -> ModbusPlan:
    """The same fields read one request each: the baseline planning is measured against."""
    blocks = tuple(_block(b.function, [f]) for b in plan.blocks for f in b.fields)
    return ModbusPlan(plan.profile, 0, blocks)


def _merge(function: Function, fields: list[PlannedField], max_gap: int) -> list[Block]:
    bits = function in BIT_FUNCTIONS
    limit = MAX_BITS if bits else MAX_REGISTERS
    gap = max_gap * 16 if bits else max_gap
    blocks: list[Block] = []
    current: list[PlannedField] = []
    start = end = 0
    for planned in fields:
        if current and planned.address - end <= gap and max(end, planned.end) - start <= limit:
            current.append(planned)
            end = max(end, planned.end)
            continue
        if current:
            blocks.append(_block(function, current))
        current, start, end = [planned], planned.address, planned.end
    blocks.append(_block(function, current))
    return blocks
