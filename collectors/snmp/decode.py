"""Turn raw SNMP values into vocabulary values. Pure functions, compiled once per field."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from collectors.snmp.profile import Conversion, SnmpField
from collectors.snmp.types import SnmpValue
from dcim.reading import MAX_STRING_VALUE, Value


class DecodeError(ValueError):
    """A raw value that cannot become this field's value (wrong type, out of range)."""


#: raw value, extra divisor (from a divisor/decimals column, else 1), °F flag -> value
Converter = Callable[[SnmpValue, float, bool], Value | None]


def _as_int(raw: SnmpValue) -> int:
    if isinstance(raw, int):
        return raw
    if isinstance(raw, bytes):
        # some cards send numbers as DISPLAY-STRINGs ("230", "23.5" handled by float path)
        text = raw.decode("ascii", "replace").strip()
        try:
            return int(text)
        except ValueError:
            raise DecodeError(f"expected a number, got {text[:40]!r}") from None
    raise DecodeError(f"expected a number, got {raw!r}")


def _as_number(raw: SnmpValue) -> float:
    if isinstance(raw, bytes):
        text = raw.decode("ascii", "replace").strip()
        try:
            number = float(text)
        except ValueError:
            raise DecodeError(f"expected a number, got {text[:40]!r}") from None
        if not math.isfinite(number):  # float() takes "NaN", "inf", "Infinity"
            raise DecodeError(f"expected a number, got {text[:40]!r} (not finite)")
        return number
    return float(_as_int(raw))


#: A decimal number inside text ("16A", "32 A", "rated 6.5 A"): its first match is the value.
_NUMBER_IN_TEXT = re.compile(rb"[-+]?\d+(?:\.\d+)?")


def _number_in_text(raw: SnmpValue) -> float:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "replace")
    if isinstance(raw, bytes):
        found = _NUMBER_IN_TEXT.search(raw)
        if found is None:
            text = raw.decode("ascii", "replace").strip()
            raise DecodeError(f"expected text with a number in it, got {text[:40]!r}")
        return float(found[0])
    raise DecodeError(f"expected text with a number in it, got {raw!r}")


def selector_key(raw: object) -> str | None:
    """A raw selector value (sensor type, unit text) as the text variants are keyed by."""
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace").strip("\x00 \t\r\n")
    if isinstance(raw, str):
        return raw.strip()
    return None


#: How a row's divisor column is read: a divisor, a number of decimal digits, or a
#: signed scale (negative divides by its magnitude, positive multiplies).
DivisorKind = Literal["divisor", "decimals", "signed_scale"]


def divisor_of(raw: object, kind: DivisorKind = "divisor") -> float | None:
    """A row's extra divisor from its divisor column, read as `kind` (None: unusable)."""
    if not isinstance(raw, int) or isinstance(raw, bool):
        return None
    if kind == "decimals":
        return 10.0**raw if 0 <= raw <= 9 else None
    if kind == "signed_scale":
        if raw < 0:
            return float(-raw)
        return 1.0 / raw if raw > 0 else None
    return float(raw) if raw > 0 else None


def compile_converter(field: Conversion, *, integer_metric: bool = False) -> Converter:
    """Build the raw -> value function for one profile field.

    `integer_metric` keeps unscaled values as int (counters, counts).
    Returns None for values the device marks as missing; raises DecodeError for
    values that are wrong (type, enum, plausibility range).
    """
    missing = frozenset(field.missing)
    low, high = field.valid_range if field.valid_range else (None, None)

    def check_range(value: float) -> float:
        if (low is not None and value < low) or (high is not None and value > high):
            raise DecodeError(f"{value:g} outside plausible range {low:g}..{high:g}")
        return value

    if field.type == "enum":
        mapping = dict(field.enum)

        def convert_enum(raw: SnmpValue, _divisor: float = 1.0, _f: bool = False) -> Value | None:
            code = _as_int(raw)
            if code in missing:
                return None
            try:
                return mapping[code]
            except KeyError:
                raise DecodeError(f"enum value {code} not in profile mapping") from None

        return convert_enum

    if field.type == "bool":
        true_values = frozenset(field.true_values)

        def convert_bool(raw: SnmpValue, _divisor: float = 1.0, _f: bool = False) -> Value | None:
            code = _as_int(raw)
            return None if code in missing else code in true_values

        return convert_bool

    if field.type == "string":

        def convert_string(raw: SnmpValue, _divisor: float = 1.0, _f: bool = False) -> Value | None:
            if isinstance(raw, bytes):
                text = raw.decode("utf-8", "replace").strip("\x00 \t\r\n")
            else:
                text = str(raw)
            return text[:MAX_STRING_VALUE]

        return convert_string

    scale, offset = field.scale, field.offset
    # 194 * 0.1 is 19.400000000000002 but 194 / 10 is 19.4: divide by exact decades
    divisor = round(1 / scale) if scale < 1 and math.isclose(1 / scale, round(1 / scale)) else 1
    multiplier = 1.0 if divisor != 1 else scale
    as_int = integer_metric and scale == int(scale) and offset == int(offset)
    always_fahrenheit = field.fahrenheit
    parse: Callable[[SnmpValue], float] = _number_in_text if field.number_in_text else _as_number

    def convert_number(
        raw: SnmpValue, extra: float = 1.0, fahrenheit: bool = False
    ) -> Value | None:
        number = raw if isinstance(raw, int) else parse(raw)
        if number in missing:
            return None
        total = divisor * extra
        value = (number * multiplier / total if total != 1 else number * multiplier) + offset
        if always_fahrenheit or fahrenheit:
            value = round((value - 32.0) * 5.0 / 9.0, 2)
        check_range(value)
        return int(value) if as_int and total == 1 else float(value)

    return convert_number


@dataclass(frozen=True, slots=True)
class CompiledField:
    """A profile field ready for the hot path."""

    field: SnmpField
    oid: tuple[int, ...]
    unit: str | None
    convert: Converter

    @property
    def metric(self) -> str:
        return self.field.metric
