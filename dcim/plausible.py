"""One check for every decoded value, polled, pushed or trapped: finite, typed, plausible.

Protocol decoders apply their own per-field rules first (a profile's scale and
`valid_range`); this is the last gate before a value becomes a Reading, with the
vocabulary's type and physical range (`range:` in vocabulary.yaml), so a trap, an
MQTT message and an SNMP poll cannot disagree about what a sane value is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from dcim.reading import Value
from dcim.vocabulary import load_vocabulary


class ImplausibleValueError(ValueError):
    """A decoded value that must not be stored; `reason` is a short counter key."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(detail)


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str
    low: float
    high: float
    values: frozenset[str]


@cache
def _rule(metric: str) -> _Rule | None:
    spec = load_vocabulary().metrics.get(metric)
    if spec is None:
        return None
    low, high = spec.range if spec.range is not None else (-math.inf, math.inf)
    return _Rule(spec.type, low, high, frozenset(spec.values))


def check_value(metric: str, value: Value) -> Value:
    """`value` as the metric's type (an integral float becomes an int for int metrics).

    Raises ImplausibleValueError (reason `not_finite`, `wrong_type`, `out_of_range`,
    `unknown_enum`) for a value that must not be stored.
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise ImplausibleValueError("not_finite", f"{metric}: value is {value}")
    rule = _rule(metric)
    if rule is None:
        return value
    kind = rule.kind
    if kind in ("float", "int"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ImplausibleValueError("wrong_type", f"{metric}: expected a number, got {value!r}")
        if not rule.low <= value <= rule.high:
            raise ImplausibleValueError(
                "out_of_range",
                f"{metric}: {value:g} outside plausible range {rule.low:g}..{rule.high:g}",
            )
        if kind == "int" and isinstance(value, float):
            if not value.is_integer():
                raise ImplausibleValueError("wrong_type", f"{metric}: {value:g} is not whole")
            return int(value)
        return value
    if kind == "bool" and not isinstance(value, bool):
        raise ImplausibleValueError("wrong_type", f"{metric}: expected true/false, got {value!r}")
    if kind == "enum" and value not in rule.values:
        raise ImplausibleValueError("unknown_enum", f"{metric}: {value!r} is not a known value")
    return value
