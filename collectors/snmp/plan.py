"""Request planning for one SNMP profile: pure, computed once per profile."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from collectors.profile import SnmpField, SnmpProfile
from collectors.snmp.decode import CompiledField, compile_converter
from dcim.vocabulary import load_vocabulary

#: Var-binds per GET. 40 keeps a response of typical values well under one
#: Ethernet frame (1472 bytes of UDP payload), so no fragmentation or tooBig.
MAX_VARBINDS_PER_GET = 40


def parse_oid(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


@dataclass(frozen=True, slots=True)
class TablePlan:
    name: str
    index_tag: str
    label_tag: str
    label_oid: tuple[int, ...] | None
    columns: tuple[CompiledField, ...]

    @property
    def walk_oids(self) -> tuple[tuple[int, ...], ...]:
        """Column OIDs to walk together (label column first when there is one)."""
        label = (self.label_oid,) if self.label_oid else ()
        return label + tuple(column.oid for column in self.columns)


@dataclass(frozen=True, slots=True)
class SnmpPlan:
    """What one poll of a device with this profile sends."""

    get_batches: tuple[tuple[CompiledField, ...], ...]
    tables: tuple[TablePlan, ...]

    @property
    def request_count_hint(self) -> int:
        """PDUs per poll when each table fits in one GETBULK round."""
        return len(self.get_batches) + len(self.tables)


def _compile(field: SnmpField) -> CompiledField:
    spec = load_vocabulary().get(field.metric)
    convert = compile_converter(field, integer_metric=spec.type == "int")
    return CompiledField(field, parse_oid(field.oid), spec.unit, convert)


def _chunks(items: Sequence[CompiledField], size: int) -> tuple[tuple[CompiledField, ...], ...]:
    return tuple(tuple(items[start : start + size]) for start in range(0, len(items), size))


def plan_profile(profile: SnmpProfile, max_varbinds: int = MAX_VARBINDS_PER_GET) -> SnmpPlan:
    """Group scalars into as few GETs as allowed and tables into column walks."""
    scalars = [_compile(field) for field in profile.scalars]
    tables = tuple(
        TablePlan(
            name=table.name,
            index_tag=table.index_tag,
            label_tag=table.label_tag,
            label_oid=parse_oid(table.label_oid) if table.label_oid else None,
            columns=tuple(_compile(column) for column in table.columns),
        )
        for table in profile.tables
    )
    return SnmpPlan(get_batches=_chunks(scalars, max_varbinds), tables=tables)
