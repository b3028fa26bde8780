"""SnmpCollector: polls one device with its profile's prebuilt plan."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from collectors.snmp.client import (
    Absent,
    SnmpEngineHost,
    SnmpSession,
    SnmpStatusError,
    VarBind,
    build_object_names,
)
from collectors.snmp.decode import CompiledField, DecodeError
from collectors.snmp.plan import SnmpPlan, TablePlan
from dcim.errors import DeviceProtocolError
from dcim.inventory import PlacedDevice, SnmpConfig, SnmpVersion
from dcim.reading import Reading, now_ns

log = logging.getLogger(__name__)

#: Upper bound of GETBULK rounds per table per poll: a runaway agent that never
#: ends its table cannot keep a poll going forever.
MAX_TABLE_ROUNDS = 200


class SnmpCollector:
    """One device: GETs for scalars, GETBULK walks for tables, decoded to readings."""

    def __init__(
        self, placed: PlacedDevice, plan: SnmpPlan, host: SnmpEngineHost, config: SnmpConfig
    ) -> None:
        self.device_id = placed.device.id
        self.tags = placed.tags
        self._plan = plan
        self._host = host
        self._config = config
        self._session: SnmpSession | None = None
        self._get_var_binds = [
            build_object_names([field.oid for field in batch]) for batch in plan.get_batches
        ]
        self._row_tags: dict[tuple[str, str, str], Mapping[str, str]] = {}
        self._reported_bad: set[tuple[tuple[int, ...], str]] = set()

    async def __aenter__(self) -> SnmpCollector:
        self._session = await self._host.session(self.device_id, self._config)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._session = None

    async def poll(self) -> list[Reading]:
        """One poll cycle; raises CollectError subclasses when the device fails."""
        session = self._session
        if session is None:
            self._session = session = await self._host.session(self.device_id, self._config)
        ts = now_ns()
        readings: list[Reading] = []
        for batch, var_binds in zip(self._plan.get_batches, self._get_var_binds, strict=True):
            answers = await self._get(session, var_binds)
            by_oid = {vb.oid: vb.value for vb in answers}
            for field in batch:
                raw = by_oid.get(field.oid, Absent.NO_SUCH_OBJECT)
                self._append(readings, field, raw, ts, self.tags)
        for table in self._plan.tables:
            await self._walk_table(session, table, ts, readings)
        return readings

    async def _get(self, session: SnmpSession, var_binds: list[tuple[Any, Any]]) -> list[VarBind]:
        """GET; under SNMPv1 a noSuchName drops that OID and retries the rest."""
        remaining = list(var_binds)
        while remaining:
            try:
                return await session.get(remaining)
            except SnmpStatusError as exc:
                if exc.status != 2 or self._config.version is not SnmpVersion.V1:
                    raise
                if not 1 <= exc.index <= len(remaining):
                    raise
                del remaining[exc.index - 1]
        return []

    def _append(
        self,
        out: list[Reading],
        field: CompiledField,
        raw: object,
        ts: int,
        tags: Mapping[str, str],
    ) -> None:
        if isinstance(raw, Absent):
            return
        try:
            value = field.convert(raw)  # type: ignore[arg-type]
        except DecodeError as exc:
            self._report_bad(field, str(exc))
            return
        if value is None:
            return
        out.append(Reading(self.device_id, field.field.metric, value, field.unit, ts, tags))

    def _report_bad(self, field: CompiledField, why: str) -> None:
        key = (field.oid, why)
        if key in self._reported_bad:
            return
        self._reported_bad.add(key)
        log.warning(
            "device %s: dropped %s from OID %s: %s",
            self.device_id,
            field.field.metric,
            field.field.oid,
            why,
        )

    async def _walk_table(
        self, session: SnmpSession, table: TablePlan, ts: int, out: list[Reading]
    ) -> None:
        columns = table.walk_oids
        rows: dict[tuple[int, ...], dict[int, object]] = {}
        cursors: list[tuple[int, ...] | None] = list(columns)
        use_next = self._config.version is SnmpVersion.V1
        for _ in range(MAX_TABLE_ROUNDS):
            active = [i for i, cursor in enumerate(cursors) if cursor is not None]
            if not active:
                break
            request = build_object_names([cursors[i] for i in active])  # type: ignore[misc]
            repetitions = 1 if use_next else self._config.max_repetitions
            answers = await (
                session.get_next(request) if use_next else session.get_bulk(request, repetitions)
            )
            self._absorb(answers, active, columns, cursors, rows)
        else:
            msg = f"table {table.name} did not end after {MAX_TABLE_ROUNDS} rounds"
            raise DeviceProtocolError(self.device_id, msg)
        self._emit_rows(table, rows, ts, out)

    @staticmethod
    def _absorb(
        answers: Sequence[VarBind],
        active: list[int],
        columns: Sequence[tuple[int, ...]],
        cursors: list[tuple[int, ...] | None],
        rows: dict[tuple[int, ...], dict[int, object]],
    ) -> None:
        """Spread GETBULK answers (row-major over the active columns) into rows."""
        width = len(active)
        for position, vb in enumerate(answers):
            column = active[position % width]
            cursor = cursors[column]
            if cursor is None:
                continue
            prefix = columns[column]
            if (
                vb.value is Absent.END_OF_MIB_VIEW
                or vb.oid[: len(prefix)] != prefix
                or vb.oid <= cursor
            ):
                cursors[column] = None  # column finished (or agent went backwards)
                continue
            rows.setdefault(vb.oid[len(prefix) :], {})[column] = vb.value
            cursors[column] = vb.oid

    def _emit_rows(
        self,
        table: TablePlan,
        rows: dict[tuple[int, ...], dict[int, object]],
        ts: int,
        out: list[Reading],
    ) -> None:
        offset = 1 if table.label_oid else 0
        for index in sorted(rows):
            values = rows[index]
            index_text = ".".join(str(part) for part in index)
            label = ""
            if offset:
                raw_label = values.get(0)
                if isinstance(raw_label, bytes):
                    label = raw_label.decode("utf-8", "replace").strip("\x00 ")
            tags = self._tags_for_row(table, index_text, label)
            for position, field in enumerate(table.columns):
                if position + offset in values:
                    self._append(out, field, values[position + offset], ts, tags)

    def _tags_for_row(self, table: TablePlan, index: str, label: str) -> Mapping[str, str]:
        key = (table.name, index, label)
        tags = self._row_tags.get(key)
        if tags is None:
            merged = dict(self.tags)
            merged[table.index_tag] = index
            if label:
                merged[table.label_tag] = label
            tags = MappingProxyType(merged)
            self._row_tags[key] = tags
        return tags
