"""SnmpCollector: polls one device with its profile's prebuilt plan."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType

from collectors.snmp.decode import DecodeError, DivisorKind, divisor_of, selector_key
from collectors.snmp.plan import Output, RollupPlan, SnmpPlan, TablePlan
from collectors.snmp.types import (
    Absent,
    Oid,
    Session,
    SessionHost,
    SnmpStatusError,
    SnmpValue,
    VarBind,
    oid_text,
)
from collectors.snmp.walk import ColumnWalker
from dcim.inventory import PlacedDevice, SnmpConfig, SnmpVersion
from dcim.plausible import ImplausibleValueError, check_value
from dcim.ratelimit import LogLimiter, held_back
from dcim.reading import EMPTY_TAGS, Reading, TagSet, now_ns

log = logging.getLogger(__name__)

Row = dict[int, SnmpValue]


class SnmpCollector:
    """One device: GETs for scalars, GETBULK walks for tables, decoded to readings."""

    def __init__(
        self, placed: PlacedDevice, plan: SnmpPlan, host: SessionHost, config: SnmpConfig
    ) -> None:
        self.device_id = placed.device.id
        self.tags = placed.tags
        self._plan = plan
        self._host = host
        self._config = config
        self._session: Session | None = None
        self._walker = ColumnWalker(
            self.device_id,
            max_repetitions=config.max_repetitions,
            use_getnext=config.version is SnmpVersion.V1,
        )
        self._row_tags: dict[tuple[str, Oid, str, int], Mapping[str, str]] = {}
        self._label_tags: dict[tuple[str, str], Mapping[str, str]] = {}
        self._scalar_tags: dict[int, Mapping[str, str]] = {}
        self._rollup_tags: dict[tuple[str, int], Mapping[str, str]] = {}
        self._bad_log = LogLimiter()
        self._ts = 0
        self._precedences: list[int] | None = None

    @property
    def max_repetitions(self) -> int:
        """GETBULK max-repetitions in use now (shrinks when the card struggles)."""
        return self._walker.max_repetitions

    async def __aenter__(self) -> SnmpCollector:
        self._session = await self._host.session(self.device_id, self._config)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._session = None

    async def poll(self) -> list[Reading]:
        """One poll cycle; raises CollectError subclasses when the device fails."""
        return await self._poll(None)

    async def poll_with_sources(self) -> list[tuple[Reading, str]]:
        """One poll; each reading with the numeric OID its value came from."""
        sources: list[str] = []
        readings = await self._poll(sources)
        return list(zip(readings, sources, strict=True))

    async def poll_explained(
        self,
    ) -> tuple[list[tuple[Reading, str]], list[tuple[Reading, str]]]:
        """One poll: (kept, superseded), each reading with its OID.

        Superseded readings are those a device running several profiles read twice:
        the same metric from a field of higher precedence was kept instead.
        """
        sources: list[str] = []
        superseded: list[tuple[Reading, str]] = []
        readings = await self._poll(sources, superseded)
        return list(zip(readings, sources, strict=True)), superseded

    async def _poll(
        self,
        sources: list[str] | None,
        superseded: list[tuple[Reading, str]] | None = None,
    ) -> list[Reading]:
        session = self._session
        if session is None:
            self._session = session = await self._host.session(self.device_id, self._config)
        # one timestamp per poll, the moment it started (one poll at a time per device)
        self._ts = now_ns()
        # what this poll could not deliver: the poller reports both per device
        self.values_missing = 0  # noSuchObject / noSuchInstance for a profile scalar
        self.values_invalid = 0  # answered, but undecodable or implausible
        readings: list[Reading] = []
        # several profiles: each reading's precedence, to keep one source per metric
        self._precedences = [] if self._plan.ranked else None
        if self._precedences is not None and sources is None:
            sources = []
        values: dict[Oid, SnmpValue] = {}
        for batch in self._plan.get_batches:
            for vb in await self._get(session, batch):
                values[vb.oid] = vb.value
        plan = self._plan
        # per °F switch of the plan: does its scalar say °F this poll?
        fahrenheit = tuple(
            isinstance(raw := values.get(oid), int) and raw in when
            for oid, when in plan.fahrenheit_switches
        )
        for number, scalar in enumerate(plan.scalars):
            if all(
                isinstance(values.get(oid, Absent.NO_SUCH_OBJECT), Absent) for oid in scalar.oids
            ):
                self.values_missing += 1
            for oid in scalar.oids:
                raw = values.get(oid, Absent.NO_SUCH_OBJECT)
                if not isinstance(raw, Absent):
                    tags = self._scalar_tags.get(number)
                    if tags is None:
                        tags = self._scalar_tags[number] = _merge(self.tags, scalar.output.tags)
                    source = oid_text(oid)
                    self._emit(
                        readings,
                        sources,
                        scalar.output,
                        raw,
                        divisor=1.0,
                        fahrenheit=fahrenheit,
                        tags=tags,
                        source=source,
                    )
                    break
        walked: dict[Oid, dict[Oid, SnmpValue]] = {}
        for table in plan.tables:
            missing = [oid for oid in table.walk_oids if oid not in walked]
            if missing:
                answered = bool(values) or bool(walked)
                walked.update(await self._walker.walk(session, missing, answered=answered))
            self._emit_table(table, walked, fahrenheit, readings, sources)
        if self._precedences is not None:
            assert sources is not None
            return _keep_highest(readings, sources, self._precedences, superseded)
        return readings

    async def _get(self, session: Session, oids: tuple[Oid, ...]) -> list[VarBind]:
        """GET; under SNMPv1 a noSuchName drops that OID and retries the rest."""
        remaining = oids
        while remaining:
            try:
                return await session.get(remaining)
            except SnmpStatusError as exc:
                if exc.status != 2 or self._config.version is not SnmpVersion.V1:
                    raise
                if not 1 <= exc.index <= len(remaining):
                    raise
                remaining = remaining[: exc.index - 1] + remaining[exc.index :]
        return []

    def _emit(
        self,
        out: list[Reading],
        sources: list[str] | None,
        output: Output,
        raw: SnmpValue,
        *,
        divisor: float,
        fahrenheit: tuple[bool, ...],
        tags: Mapping[str, str],
        source: str,
    ) -> None:
        if isinstance(raw, Absent):
            return
        try:
            switch = output.fahrenheit_switch
            value = output.convert(raw, divisor, switch is not None and fahrenheit[switch])
            if value is None:
                return
            value = check_value(output.metric, value)
        except (DecodeError, ImplausibleValueError) as exc:
            self.values_invalid += 1
            self._report_bad(output.metric, source, str(exc))
            return
        out.append(Reading(self.device_id, output.metric, value, output.unit, self._ts, tags))
        if sources is not None:
            sources.append(source)
        if self._precedences is not None:
            self._precedences.append(output.precedence)

    def _report_bad(self, metric: str, source: str, why: str) -> None:
        held = self._bad_log.allow(source)
        if held is None:
            return  # counted in device.values_invalid; the log says it at a bounded pace
        log.warning(
            "device %s: dropped %s from OID %s: %s%s",
            self.device_id,
            metric,
            source,
            why,
            held_back(held, self._bad_log.interval_s),
        )

    def _emit_table(
        self,
        table: TablePlan,
        walked: dict[Oid, dict[Oid, SnmpValue]],
        fahrenheit: tuple[bool, ...],
        out: list[Reading],
        sources: list[str] | None,
    ) -> None:
        rows: dict[Oid, Row] = {}
        for position, column_oid in enumerate(table.walk_oids):
            for index, raw in walked.get(column_oid, {}).items():
                rows.setdefault(index, {})[position] = raw
        # per rollup: the highest rank reached so far (-1: rows seen, none reached)
        reached: list[int | None] = [None] * len(table.rollups)
        for index in sorted(rows):
            row = rows[index]
            if table.require_column is not None:
                flag = row.get(table.require_column)
                # a row without the column is kept: only a stated "offline" drops it
                if flag is not None and (
                    not isinstance(flag, int) or flag not in table.require_values
                ):
                    continue
            label = ""
            if table.label_column is not None:
                label = _label(row.get(table.label_column))
            named = self._tags_from_label(table, label)
            for n, rollup in enumerate(table.rollups):
                rank = _rollup_rank(rollup, named, row.get(rollup.column))
                best = reached[n]
                if rank is not None and (best is None or rank > best):
                    reached[n] = rank
            index_text = oid_text(index)
            for column in table.columns:
                value = row.get(column.column)
                if value is None:
                    continue
                divisor = self._row_divisor(
                    row, column.divisor_column, column.divisor_kind, index_text
                )
                if divisor is None:
                    continue
                tags = self._tags_for_row(table, index, label, named, column.output)
                source = f"{column.oid_text}.{index_text}"
                self._emit(
                    out,
                    sources,
                    column.output,
                    value,
                    divisor=divisor,
                    fahrenheit=fahrenheit,
                    tags=tags,
                    source=source,
                )
            for switch in table.switched:
                switched = row.get(switch.column)
                if switched is None:
                    continue
                if switch.select_tag is not None:
                    key = named.get(switch.select_tag)
                elif switch.select_part is not None:
                    key = (
                        str(index[switch.select_part]) if switch.select_part < len(index) else None
                    )
                else:
                    assert switch.select_column is not None
                    key = selector_key(row.get(switch.select_column))
                output = switch.variants.get(key) if key is not None else None
                if output is None:
                    continue  # a sensor type or unit this profile does not map
                divisor = self._row_divisor(
                    row, switch.divisor_column, switch.divisor_kind, index_text
                )
                if divisor is None:
                    continue
                tags = self._tags_for_row(table, index, label, named, output)
                source = f"{switch.oid_text}.{index_text}"
                self._emit(
                    out,
                    sources,
                    output,
                    switched,
                    divisor=divisor,
                    fahrenheit=fahrenheit,
                    tags=tags,
                    source=source,
                )

        for n, rollup in enumerate(table.rollups):
            highest = reached[n]
            if highest is None:
                continue  # no usable stage row: no verdict
            stage = rollup.order[highest] if highest >= 0 else rollup.otherwise
            device_tags = self._rollup_tags.get((table.name, n))
            if device_tags is None:
                device_tags = _merge(self.tags, rollup.tags)
                self._rollup_tags[(table.name, n)] = device_tags
            out.append(Reading(self.device_id, rollup.metric, stage, None, self._ts, device_tags))
            if sources is not None:
                sources.append(rollup.oid_text)
            if self._precedences is not None:
                self._precedences.append(rollup.precedence)

    def _row_divisor(
        self, row: Row, column: int | None, kind: DivisorKind, index_text: str
    ) -> float | None:
        if column is None:
            return 1.0
        raw = row.get(column)
        if raw is None:
            return 1.0  # no divisor column on this row: the value is unscaled
        divisor = divisor_of(raw, kind)
        if divisor is None:
            self._report_bad("(divisor)", f"row {index_text}", f"unusable divisor {raw!r}")
        return divisor

    def _tags_from_label(self, table: TablePlan, label: str) -> Mapping[str, str]:
        """What the table's label rules say about a row by its name (first rule wins)."""
        if not table.label_rules:
            return EMPTY_TAGS
        key = (table.name, label)
        tags = self._label_tags.get(key)
        if tags is None:
            found: dict[str, str] = {}
            for pattern, rule_tags in table.label_rules:
                if pattern.search(label):
                    for name, value in rule_tags.items():
                        found.setdefault(name, value)
            tags = self._label_tags[key] = MappingProxyType(found)
        return tags

    def _tags_for_row(
        self,
        table: TablePlan,
        index: Oid,
        label: str,
        named: Mapping[str, str],
        output: Output,
    ) -> Mapping[str, str]:
        key = (table.name, index, label, id(output.tags))
        tags = self._row_tags.get(key)
        if tags is None:
            merged = dict(self.tags)
            merged[table.index_tag] = oid_text(index)
            if len(index) == len(table.index_parts):
                for name, part in zip(table.index_parts, index, strict=True):
                    if not name.startswith("_"):
                        merged[name] = str(part)
            if label:
                merged[table.label_tag] = label
            merged.update((k, v) for k, v in named.items() if not k.startswith("_"))
            merged.update(output.tags)
            tags = TagSet(merged)
            self._row_tags[key] = tags
        return tags


def _rollup_rank(rollup: RollupPlan, named: Mapping[str, str], raw: SnmpValue | None) -> int | None:
    """A row's stage rank when its stage is reached, -1 when not, None when it says nothing."""
    stage = named.get(rollup.select_tag)
    rank = rollup.rank.get(stage) if stage is not None else None
    if rank is None or not isinstance(raw, int) or isinstance(raw, bool):
        return None
    if raw in rollup.missing:
        return None
    return rank if raw in rollup.true_values else -1


def _keep_highest(
    readings: list[Reading],
    sources: list[str],
    precedences: list[int],
    superseded: list[tuple[Reading, str]] | None,
) -> list[Reading]:
    """Per metric, the readings of the highest precedence that gave one this poll.

    `sources` is filtered in place alongside (callers zip the two).
    """
    best: dict[str, int] = {}
    for reading, precedence in zip(readings, precedences, strict=True):
        if precedence > best.get(reading.metric, precedence - 1):
            best[reading.metric] = precedence
    kept: list[Reading] = []
    kept_sources: list[str] = []
    for reading, source, precedence in zip(readings, sources, precedences, strict=True):
        if precedence == best[reading.metric]:
            kept.append(reading)
            kept_sources.append(source)
        elif superseded is not None:
            superseded.append((reading, source))
    sources[:] = kept_sources
    return kept


def _merge(base: Mapping[str, str], extra: Mapping[str, str]) -> Mapping[str, str]:
    return TagSet({**base, **extra}) if extra else base


def _label(raw: SnmpValue | None) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace").strip("\x00 \t\r\n")
    if isinstance(raw, str):
        return raw.strip()
    return ""
