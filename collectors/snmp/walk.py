"""Walking table columns the way a weak management card survives.

GETBULK with a max-repetitions that adapts per device: it starts from the
configured value, halves when the card times out or answers tooBig, and falls
back to GETNEXT when even one repetition is too much. The smaller value sticks
for later polls; a device that never answered in this poll gets no retries
(it is dead, not overloaded, and must not hold up the poll longer).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from collectors.snmp.types import Absent, Oid, Session, SnmpStatusError, SnmpValue, VarBind
from dcim.errors import DeviceProtocolError, DeviceTimeoutError

log = logging.getLogger(__name__)

#: Upper bound of request rounds per walk: a runaway agent that never ends its
#: table cannot keep a poll going forever.
MAX_TABLE_ROUNDS = 500

TOO_BIG = 1


class ColumnWalker:
    """Walks columns of one device; remembers how much the device can take."""

    def __init__(self, device_id: str, *, max_repetitions: int, use_getnext: bool) -> None:
        self.device_id = device_id
        self.max_repetitions = max(1, max_repetitions)
        self.use_getnext = use_getnext

    async def walk(
        self, session: Session, columns: Sequence[Oid], *, answered: bool = False
    ) -> dict[Oid, dict[Oid, SnmpValue]]:
        """Every (index -> value) of each column, walked side by side.

        `answered`: the device already answered in this poll, so a timeout
        means overload (ask less) rather than a dead device (give up).
        """
        found: dict[Oid, dict[Oid, SnmpValue]] = {column: {} for column in columns}
        cursors: list[Oid | None] = list(columns)
        for _ in range(MAX_TABLE_ROUNDS):
            active = [i for i, cursor in enumerate(cursors) if cursor is not None]
            if not active:
                return found
            request = [cursor for cursor in cursors if cursor is not None]
            try:
                answers = await self._request(session, request)
            except (DeviceTimeoutError, SnmpStatusError) as exc:
                if not self._shrink(exc, answered):
                    raise
                continue
            answered = True
            _absorb(answers, active, columns, cursors, found)
        msg = f"table walk did not end after {MAX_TABLE_ROUNDS} rounds"
        raise DeviceProtocolError(self.device_id, msg)

    async def _request(self, session: Session, request: list[Oid]) -> list[VarBind]:
        if self.use_getnext:
            return await session.get_next(request)
        return await session.get_bulk(request, self.max_repetitions)

    def _shrink(self, exc: Exception, answered: bool) -> bool:
        """Ask less next time; False when there is nothing left to try."""
        too_big = isinstance(exc, SnmpStatusError) and exc.status == TOO_BIG
        timed_out = isinstance(exc, DeviceTimeoutError)
        if not (too_big or (timed_out and answered)) or self.use_getnext:
            return False
        if self.max_repetitions > 1:
            self.max_repetitions //= 2
            log.info(
                "device %s: %s, GETBULK max-repetitions now %d",
                self.device_id,
                "tooBig" if too_big else "timeout",
                self.max_repetitions,
            )
        else:
            self.use_getnext = True
            log.info("device %s: GETBULK too much even for 1 row, using GETNEXT", self.device_id)
        return True


def _absorb(
    answers: Sequence[VarBind],
    active: list[int],
    columns: Sequence[Oid],
    cursors: list[Oid | None],
    found: dict[Oid, dict[Oid, SnmpValue]],
) -> None:
    """Spread answers (row-major over the active columns) into their columns."""
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
        found[prefix][vb.oid[len(prefix) :]] = vb.value
        cursors[column] = vb.oid
