"""Adaptive GETBULK and one-request-per-OID planning.

The walker is driven by a scripted session here: no agent that can run in a test
answers tooBig or times out on demand for one request size and not another.
Everything else about walking is exercised against real agents in
test_snmp_collector.py and tests/profiles.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from collectors.snmp.decode import compile_converter
from collectors.snmp.plan import plan_profile
from collectors.snmp.profile import Conversion, parse_snmp_profile
from collectors.snmp.types import Absent, Oid, SnmpStatusError, VarBind
from collectors.snmp.walk import ColumnWalker
from dcim.errors import DeviceTimeoutError

COLUMN = (1, 3, 6, 1, 4, 1, 9, 1)
ROWS = 12


class ScriptedCard:
    """Answers GETBULK from a 12-row column, failing requests above `limit` rows."""

    device_id = "card"

    def __init__(self, limit: int, failure: str) -> None:
        self.limit = limit
        self.failure = failure
        self.requests: list[tuple[str, int]] = []

    def _after(self, oid: tuple[int, ...], count: int) -> list[VarBind]:
        rows = [(*COLUMN, i) for i in range(1, ROWS + 1)]
        later = [row for row in rows if row > oid][:count]
        out = [VarBind(row, row[-1] * 10) for row in later]
        if len(out) < count:
            out.append(VarBind((1, 3, 6, 1, 4, 1, 9, 2, 1), 0))  # next column: end
        return out

    async def get(self, oids: Sequence[Oid]) -> list[VarBind]:
        raise AssertionError("the walker never GETs")

    async def get_bulk(self, oids: Sequence[Oid], max_repetitions: int) -> list[VarBind]:
        self.requests.append(("bulk", max_repetitions))
        if max_repetitions > self.limit:
            if self.failure == "tooBig":
                raise SnmpStatusError("card", 1, 0)
            raise DeviceTimeoutError("card", "no answer")
        return self._after(oids[0], max_repetitions)

    async def get_next(self, oids: Sequence[Oid]) -> list[VarBind]:
        self.requests.append(("next", 1))
        return self._after(oids[0], 1)


@pytest.mark.parametrize("failure", ["tooBig", "timeout"])
async def test_max_repetitions_shrink_until_the_card_copes(failure: str) -> None:
    card = ScriptedCard(limit=3, failure=failure)
    walker = ColumnWalker("card", max_repetitions=3, use_getnext=False)
    first = await walker.walk(card, [COLUMN])
    assert len(first[COLUMN]) == ROWS  # an answer first: later timeouts mean overload
    card.limit = 1
    walker.max_repetitions = 8
    start = len(card.requests)
    # the device answered earlier in this poll (its scalars): a timeout is overload
    found = await walker.walk(card, [COLUMN], answered=True)
    assert found[COLUMN][(5,)] == 50
    assert len(found[COLUMN]) == ROWS
    assert walker.max_repetitions == 1  # and it sticks for later polls
    assert [size for _, size in card.requests[start : start + 4]] == [8, 4, 2, 1]


async def test_getnext_when_even_one_row_is_too_big() -> None:
    card = ScriptedCard(limit=0, failure="tooBig")
    walker = ColumnWalker("card", max_repetitions=2, use_getnext=False)
    found = await walker.walk(card, [COLUMN])
    assert len(found[COLUMN]) == ROWS
    assert walker.use_getnext
    assert card.requests[:2] == [("bulk", 2), ("bulk", 1)]
    assert all(kind == "next" for kind, _ in card.requests[2:])


async def test_a_dead_device_is_not_retried_with_smaller_requests() -> None:
    card = ScriptedCard(limit=0, failure="timeout")
    walker = ColumnWalker("card", max_repetitions=10, use_getnext=False)
    with pytest.raises(DeviceTimeoutError):
        await walker.walk(card, [COLUMN])
    assert card.requests == [("bulk", 10)]


PROFILE = """
name: shared
kind: pdu
scalars:
  - {metric: pdu.power_w, oid: 1.3.6.1.4.1.9.1.0}
  - {metric: pdu.apparent_power_va, oid: 1.3.6.1.4.1.9.1.0}
  - {metric: pdu.frequency_hz, oid: 1.3.6.1.4.1.9.2.0, fallback_oids: [1.3.6.1.4.1.9.1.0]}
tables:
  - name: a
    label_oid: 1.3.6.1.4.1.9.5.1.2
    columns:
      - {metric: pdu.outlet_current_a, oid: 1.3.6.1.4.1.9.5.1.3}
      - {metric: pdu.outlet_power_w, oid: 1.3.6.1.4.1.9.5.1.3}
"""


def test_each_oid_is_asked_once_per_poll() -> None:
    plan = plan_profile(parse_snmp_profile(PROFILE, "shared.yaml"))
    asked = [oid for batch in plan.get_batches for oid in batch]
    assert len(asked) == len(set(asked)) == 2
    assert plan.tables[0].walk_oids == (
        (1, 3, 6, 1, 4, 1, 9, 5, 1, 2),
        (1, 3, 6, 1, 4, 1, 9, 5, 1, 3),
    )


def test_conversions_missing_fahrenheit_and_decimal_digits() -> None:
    temp = compile_converter(
        Conversion(scale=0.1, fahrenheit=True, missing=[-1], valid_range=(-50, 150))
    )
    assert temp(745, 1.0, False) == pytest.approx(23.61)
    assert temp(-1, 1.0, False) is None
    text = compile_converter(Conversion(missing=[-999.9]))
    assert text(b"-999.9", 1.0, False) is None
    assert text(b"20.4", 1.0, False) == 20.4
    digits = compile_converter(Conversion())
    assert digits(3497, 1000.0, False) == 3.497
    assert Absent.NO_SUCH_OBJECT.value == "noSuchObject"
