"""Request planning for one SNMP profile: pure, computed once per profile.

The plan is what the hot path runs: each OID appears once in the GETs or the
table walks however many fields read it, every conversion is a prebuilt
function, and table rows pick their metric from prebuilt dictionaries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from collectors.snmp.decode import CompiledField, Converter, DivisorKind, compile_converter
from collectors.snmp.profile import (
    Condition,
    Conversion,
    Rollup,
    SnmpField,
    SnmpProfile,
    SnmpTable,
    SwitchedColumn,
)
from collectors.snmp.types import Oid, oid_text, parse_oid
from dcim.reading import EMPTY_TAGS
from dcim.vocabulary import load_vocabulary

#: Var-binds per GET. 40 keeps a response of typical values well under one
#: Ethernet frame (1472 bytes of UDP payload), so no fragmentation or tooBig.
MAX_VARBINDS_PER_GET = 40


@dataclass(frozen=True, slots=True)
class Output:
    """One metric a value turns into: name, unit, converter and fixed tags."""

    metric: str
    unit: str | None
    convert: Converter
    tags: Mapping[str, str]
    #: °F while the plan's switch at this position says so (None: a fixed unit).
    fahrenheit_switch: int | None
    #: Of several fields giving this metric on one device, the highest precedence's stay.
    precedence: int = 0


@dataclass(frozen=True, slots=True)
class ScalarPlan:
    """A scalar field: its OID and lower-precision fallbacks, in preference order."""

    oids: tuple[Oid, ...]
    output: Output


@dataclass(frozen=True, slots=True)
class ColumnPlan:
    """A table column with a fixed metric; positions index the table's walk columns."""

    column: int
    oid_text: str
    output: Output
    divisor_column: int | None
    divisor_kind: DivisorKind


@dataclass(frozen=True, slots=True)
class SwitchPlan:
    """A table column whose metric is chosen per row (by index part or another column)."""

    column: int
    oid_text: str
    select_part: int | None
    select_column: int | None
    #: A tag the table's label rules give the row (names may start with `_`).
    select_tag: str | None
    variants: Mapping[str, Output]
    divisor_column: int | None
    divisor_kind: DivisorKind


@dataclass(frozen=True, slots=True)
class RollupPlan:
    """One device reading from several rows: the highest `order` stage whose row is on."""

    column: int
    oid_text: str
    metric: str
    select_tag: str
    #: stage -> rank (position in the profile's order)
    rank: Mapping[str, int]
    order: tuple[str, ...]
    otherwise: str
    true_values: frozenset[int]
    missing: frozenset[int]
    tags: Mapping[str, str]
    precedence: int = 0


@dataclass(frozen=True, slots=True)
class TablePlan:
    name: str
    index_tag: str
    index_parts: tuple[str, ...]
    label_tag: str
    label_column: int | None
    #: (case-insensitive pattern, tags) in order: the first rule setting a tag wins.
    label_rules: tuple[tuple[re.Pattern[str], Mapping[str, str]], ...]
    require_column: int | None
    require_values: frozenset[int]
    #: Every column the table needs (values, labels, selectors, divisors), each once.
    walk_oids: tuple[Oid, ...]
    columns: tuple[ColumnPlan, ...]
    switched: tuple[SwitchPlan, ...]
    rollups: tuple[RollupPlan, ...] = ()


@dataclass(frozen=True, slots=True)
class SnmpPlan:
    """What one poll of a device with this profile sends."""

    profile: str
    #: Unique scalar OIDs (fields, fallbacks, the °F switch) in GET-sized batches.
    get_batches: tuple[tuple[Oid, ...], ...]
    scalars: tuple[ScalarPlan, ...]
    #: (scalar OID, values meaning °F): each profile's temperature-unit switch, once.
    fahrenheit_switches: tuple[tuple[Oid, frozenset[int]], ...]
    tables: tuple[TablePlan, ...]
    #: Several profiles make this plan, or one profile ranks its own fields: per metric,
    #: only the highest precedence's readings stay.
    ranked: bool = False

    @property
    def request_count_hint(self) -> int:
        """PDUs per poll when each table fits in one GETBULK round."""
        return len(self.get_batches) + len(self.tables)


class _Switches:
    """The °F switches a plan reads: the profile's own and its fields' (composition)."""

    def __init__(self, default: Condition | None) -> None:
        self.default = default
        self.conditions: list[tuple[Oid, frozenset[int]]] = []

    def position(self, conversion: Conversion) -> int | None:
        condition = conversion.fahrenheit_when or self.default
        if not conversion.fahrenheit or condition is None:
            return None  # a fixed unit (°C, or always °F)
        key = (parse_oid(condition.oid), frozenset(condition.values))
        if key not in self.conditions:
            self.conditions.append(key)
        return self.conditions.index(key)


def _output(conversion: Conversion, metric: str, switches: _Switches) -> Output:
    spec = load_vocabulary().get(metric)
    switch = switches.position(conversion)
    fixed_unit = conversion
    if switch is not None:
        # the °F decision is made per poll from the switch scalar
        fixed_unit = conversion.model_copy(update={"fahrenheit": False})
    convert = compile_converter(fixed_unit, integer_metric=spec.type == "int")
    tags = MappingProxyType(dict(conversion.tags)) if conversion.tags else EMPTY_TAGS
    return Output(
        metric,
        spec.unit,
        convert,
        tags,
        switch,
        conversion.precedence or 0,
    )


def compile_field(field: SnmpField) -> CompiledField:
    """A single field compiled on its own (tools and tests)."""
    spec = load_vocabulary().get(field.metric)
    convert = compile_converter(field, integer_metric=spec.type == "int")
    return CompiledField(field, parse_oid(field.oid), spec.unit, convert)


class _Columns:
    """Assigns each distinct column OID of a table one position."""

    def __init__(self) -> None:
        self.oids: list[Oid] = []

    def position(self, text: str | None) -> int | None:
        if text is None:
            return None
        oid = parse_oid(text)
        if oid not in self.oids:
            self.oids.append(oid)
        return self.oids.index(oid)


def _divisor(field: SnmpField | SwitchedColumn) -> tuple[str | None, DivisorKind]:
    """The column holding a row's divisor, and how to read it."""
    if field.decimals_oid is not None:
        return field.decimals_oid, "decimals"
    if field.signed_scale_oid is not None:
        return field.signed_scale_oid, "signed_scale"
    return field.divisor_oid, "divisor"


def _plan_table(table: SnmpTable, switches: _Switches) -> TablePlan:
    columns = _Columns()
    label = columns.position(table.label_oid)
    require = columns.position(table.require.oid if table.require else None)
    fixed = []
    for field in table.columns:
        position = columns.position(field.oid)
        assert position is not None
        divisor_text, kind = _divisor(field)
        fixed.append(
            ColumnPlan(
                column=position,
                oid_text=oid_text(parse_oid(field.oid)),
                output=_output(field, field.metric, switches),
                divisor_column=columns.position(divisor_text),
                divisor_kind=kind,
            )
        )
    switched = []
    for column in table.switched:
        position = columns.position(column.oid)
        assert position is not None
        divisor_text, kind = _divisor(column)
        switched.append(
            SwitchPlan(
                column=position,
                oid_text=oid_text(parse_oid(column.oid)),
                select_part=(
                    table.index_parts.index(column.select_index)
                    if column.select_index is not None
                    else None
                ),
                select_column=columns.position(column.select_oid),
                select_tag=column.select_tag,
                variants=MappingProxyType(
                    {
                        key: _output(variant, variant.metric, switches)
                        for key, variant in column.variants.items()
                    }
                ),
                divisor_column=columns.position(divisor_text),
                divisor_kind=kind,
            )
        )
    rollups = []
    for rollup in table.rollups:
        position = columns.position(rollup.oid)
        assert position is not None
        rollups.append(
            RollupPlan(
                column=position,
                oid_text=oid_text(parse_oid(rollup.oid)),
                metric=rollup.metric,
                select_tag=rollup.select_tag,
                rank=MappingProxyType({stage: n for n, stage in enumerate(rollup.order)}),
                order=tuple(rollup.order),
                otherwise=rollup.otherwise,
                true_values=frozenset(rollup.true_values),
                missing=frozenset(rollup.missing),
                tags=MappingProxyType(dict(rollup.tags)) if rollup.tags else EMPTY_TAGS,
                precedence=rollup.precedence or 0,
            )
        )
    return TablePlan(
        name=table.name,
        index_tag=table.index_tag,
        index_parts=tuple(table.index_parts),
        label_tag=table.label_tag,
        label_column=label,
        label_rules=tuple(
            (re.compile(rule.match, re.IGNORECASE), MappingProxyType(dict(rule.tags)))
            for rule in table.label_rules
        ),
        require_column=require,
        require_values=frozenset(table.require.values if table.require else ()),
        walk_oids=tuple(columns.oids),
        columns=tuple(fixed),
        switched=tuple(switched),
        rollups=tuple(rollups),
    )


def _batches(oids: Sequence[Oid], size: int) -> tuple[tuple[Oid, ...], ...]:
    return tuple(tuple(oids[start : start + size]) for start in range(0, len(oids), size))


def plan_profile(profile: SnmpProfile, max_varbinds: int = MAX_VARBINDS_PER_GET) -> SnmpPlan:
    """Group scalars into as few GETs as allowed and tables into column walks."""
    switches = _Switches(profile.fahrenheit_when)
    get_oids: list[Oid] = []

    def ask(oid: Oid) -> Oid:
        if oid not in get_oids:
            get_oids.append(oid)
        return oid

    scalars = tuple(
        ScalarPlan(
            oids=tuple(ask(parse_oid(text)) for text in (field.oid, *field.fallback_oids)),
            output=_output(field, field.metric, switches),
        )
        for field in profile.scalars
    )
    tables = tuple(_plan_table(table, switches) for table in profile.tables)
    for oid, _ in switches.conditions:
        ask(oid)
    return SnmpPlan(
        profile=profile.name,
        get_batches=_batches(get_oids, max_varbinds),
        scalars=scalars,
        fahrenheit_switches=tuple(switches.conditions),
        tables=tables,
        ranked=len(profile.parts) > 1 or _sets_precedence(profile),
    )


def _sets_precedence(profile: SnmpProfile) -> bool:
    """Does one profile rank its own fields (the same quantity at two resolutions)?"""
    ranked: list[Conversion | Rollup] = list(profile.scalars)
    for table in profile.tables:
        ranked += table.columns
        ranked += [v for column in table.switched for v in column.variants.values()]
        ranked += table.rollups
    return any(field.precedence is not None for field in ranked)
