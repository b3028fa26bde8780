"""The Modbus value codec: registers <-> values, both ways, shared by collector and simulator.

Two layers, both compiled once per field into closures over precomputed
`struct.Struct` objects:

* `RawCodec` turns a register slice into a raw number/string/bool and back
  (data type, byte/word order, bit field). `dcim modbus preview` uses it alone.
* `FieldCodec` adds what a profile field says: scale and offset, enum maps,
  bit-flag maps, "not available" sentinels and a plausibility range, and yields
  a vocabulary value.

Orders name the bytes of a 32-bit value A (most significant) .. D as they appear
on the wire, register by register: ABCD is big-endian (Modbus' own), CDAB swaps
words (many energy meters), BADC swaps the bytes inside each word, DCBA is
fully little-endian. 64-bit values extend the same rule to four words. For
16-bit values only the byte swap matters; strings ignore word order.

pymodbus' `convert_from_registers` knows only big/little word order (no byte
swap, no bit fields, no scaling), so the byte shuffling is done here with
`struct`, which does it in C.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from dcim.reading import MAX_STRING_VALUE, Value

if TYPE_CHECKING:
    from collectors.modbus.profile import ModbusField


class DataType(StrEnum):
    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"
    BITS = "bits"


class Order(StrEnum):
    ABCD = "ABCD"
    CDAB = "CDAB"
    BADC = "BADC"
    DCBA = "DCBA"


#: struct code and register count of each fixed-width numeric type.
NUMERIC: dict[DataType, tuple[str, int]] = {
    DataType.INT16: ("h", 1),
    DataType.UINT16: ("H", 1),
    DataType.INT32: ("i", 2),
    DataType.UINT32: ("I", 2),
    DataType.INT64: ("q", 4),
    DataType.UINT64: ("Q", 4),
    DataType.FLOAT32: ("f", 2),
    DataType.FLOAT64: ("d", 4),
}

# (register byte order, value byte order) for struct: packing the registers with
# the first and unpacking the bytes with the second undoes the device's order.
_ENDIAN: dict[Order, tuple[str, str]] = {
    Order.ABCD: (">", ">"),
    Order.CDAB: ("<", "<"),
    Order.BADC: ("<", ">"),
    Order.DCBA: (">", "<"),
}

Raw = int | float | str | bool


class DecodeError(ValueError):
    """Registers that cannot become this field's value (range, enum, garbage)."""


class EncodeError(ValueError):
    """A value the field's registers cannot hold (type, range, unknown enum name)."""


@dataclass(frozen=True, slots=True)
class RawCodec:
    """Registers <-> raw value for one type and order.

    `mask` is the part of each register the field owns: 0xFFFF, or the bits of
    a bit field, so an encoder can merge several bit fields into one register.
    """

    dtype: DataType
    order: Order
    registers: int
    decode: Callable[[Sequence[int]], Raw]
    encode: Callable[[Raw], list[int]]
    mask: int = 0xFFFF


def _numeric_codec(dtype: DataType, order: Order) -> RawCodec:
    code, count = NUMERIC[dtype]
    reg_end, val_end = _ENDIAN[order]
    regs = struct.Struct(f"{reg_end}{count}H")
    value = struct.Struct(f"{val_end}{code}")
    is_float = code in "fd"

    def decode(registers: Sequence[int]) -> Raw:
        result: Raw = value.unpack(regs.pack(*registers[:count]))[0]
        return _shortest_float32(result) if code == "f" else result  # type: ignore[arg-type]

    def encode(raw: Raw) -> list[int]:
        try:
            data = value.pack(float(raw) if is_float else _exact_int(raw))
        except (struct.error, OverflowError):
            raise EncodeError(f"{raw!r} does not fit {dtype.value}") from None
        return list(regs.unpack(data))

    return RawCodec(dtype, order, count, decode, encode)


_FLOAT32 = struct.Struct(">f")


def _shortest_float32(number: float) -> float:
    """The shortest decimal that is the same float32: 230.1, not 230.10000610351562."""
    if not math.isfinite(number):
        return number
    bits = _FLOAT32.pack(number)
    for digits in (6, 7, 8):
        candidate = float(f"{number:.{digits}g}")
        if _FLOAT32.pack(candidate) == bits:
            return candidate
    return number


def _exact_int(raw: Raw) -> int:
    if isinstance(raw, str):
        raise EncodeError(f"{raw!r} is not a number")
    if isinstance(raw, float) and not raw.is_integer():
        raise EncodeError(f"{raw!r} is not an integer")
    return int(raw)


def _string_codec(order: Order, length: int) -> RawCodec:
    swap = order in (Order.BADC, Order.DCBA)
    regs = struct.Struct(f"{'<' if swap else '>'}{length}H")

    def decode(registers: Sequence[int]) -> Raw:
        data = regs.pack(*registers[:length])
        text = data.split(b"\x00", 1)[0].decode("latin-1")
        return text.strip(" \t\r\n")[:MAX_STRING_VALUE]  # devices pad with spaces

    def encode(raw: Raw) -> list[int]:
        data = str(raw).encode("latin-1", "replace")
        if len(data) > 2 * length:
            raise EncodeError(f"{raw!r} is longer than {2 * length} characters")
        return list(regs.unpack(data.ljust(2 * length, b"\x00")))

    return RawCodec(DataType.STRING, order, length, decode, encode)


def _bits_codec(order: Order, bit: int, width: int) -> RawCodec:
    word = _numeric_codec(DataType.UINT16, order)
    field_mask = (1 << width) - 1

    def decode(registers: Sequence[int]) -> Raw:
        return (int(word.decode(registers)) >> bit) & field_mask

    def encode(raw: Raw) -> list[int]:
        number = _exact_int(raw)
        if not 0 <= number <= field_mask:
            raise EncodeError(f"{raw!r} does not fit {width} bit(s)")
        return word.encode(number << bit)

    mask = word.encode(field_mask << bit)[0]
    return RawCodec(DataType.BITS, order, 1, decode, encode, mask)


def _bool_codec() -> RawCodec:
    # a coil / discrete input (0 or 1), or a whole register used as a flag
    def decode(registers: Sequence[int]) -> Raw:
        return registers[0] != 0

    def encode(raw: Raw) -> list[int]:
        return [1 if raw else 0]

    return RawCodec(DataType.BOOL, Order.ABCD, 1, decode, encode)


def raw_codec(
    dtype: DataType, order: Order = Order.ABCD, *, length: int = 1, bit: int = 0, width: int = 1
) -> RawCodec:
    """The codec of one data type in one order; `length` (registers) is for strings,
    `bit`/`width` place a bit field inside one 16-bit register."""
    if dtype is DataType.BOOL:
        return _bool_codec()
    if dtype is DataType.STRING:
        return _string_codec(order, length)
    if dtype is DataType.BITS:
        if not (0 <= bit <= 15 and 1 <= width <= 16 - bit):
            msg = f"bit field {bit}+{width} does not fit a 16-bit register"
            raise ValueError(msg)
        return _bits_codec(order, bit, width)
    return _numeric_codec(dtype, order)


# --- field level ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldCodec:
    """One profile field compiled: registers -> vocabulary value and back.

    `decode` returns None for a "not available" value and raises DecodeError for
    an implausible one. For a bit-flag field, `decode_flags` gives each named
    flag's state and `encode_flags` builds the word from them.
    """

    raw: RawCodec
    decode: Callable[[Sequence[int]], Value | None]
    encode: Callable[[Value], list[int]]
    flags: tuple[tuple[int, str], ...] = ()

    def decode_flags(self, registers: Sequence[int]) -> list[tuple[str, bool]]:
        word = int(self.raw.decode(registers))
        return [(name, bool(word >> bit & 1)) for bit, name in self.flags]

    def encode_flags(self, states: Mapping[str, bool]) -> list[int]:
        word = 0
        for bit, name in self.flags:
            if states.get(name):
                word |= 1 << bit
        return self.raw.encode(word)


def compile_field(field: ModbusField, metric_type: str, order: Order) -> FieldCodec:
    """Compile a profile field; `metric_type` is its vocabulary type, `order` the
    profile's default used when the field states none."""
    raw = raw_codec(
        field.type,
        field.order or order,
        length=field.length,
        bit=field.bit,
        width=field.width,
    )
    flags = tuple(sorted(field.flags.items()))
    if flags:
        return FieldCodec(raw, _no_scalar, _no_scalar_encode, flags)
    if field.enum:
        decode, encode = _enum_pair(field, raw)
    elif metric_type == "bool":
        decode, encode = _bool_pair(field, raw)
    elif raw.dtype is DataType.STRING:
        decode, encode = _string_pair(raw)
    else:
        decode, encode = _number_pair(field, raw, as_int=metric_type == "int")
    return FieldCodec(raw, decode, encode)


def _no_scalar(_: object) -> Value | None:
    raise TypeError("a bit-flag field has no single value: use decode_flags")


def _no_scalar_encode(_: object) -> list[int]:
    raise TypeError("a bit-flag field has no single value: use encode_flags")


Decoder = Callable[[Sequence[int]], Value | None]
Encoder = Callable[[Value], list[int]]


def _missing_set(field: ModbusField) -> frozenset[int | str]:
    return frozenset(field.missing)


def _enum_pair(field: ModbusField, raw: RawCodec) -> tuple[Decoder, Encoder]:
    mapping = dict(field.enum)
    reverse = {name: code for code, name in mapping.items()}
    missing = _missing_set(field)

    def decode(registers: Sequence[int]) -> Value | None:
        code = raw.decode(registers)
        if code in missing:
            return None
        try:
            return mapping[code]  # type: ignore[index]
        except KeyError:
            raise DecodeError(f"value {code!r} not in the enum map") from None

    def encode(value: Value) -> list[int]:
        try:
            return raw.encode(reverse[str(value)])
        except KeyError:
            raise EncodeError(f"{value!r} not in the enum map") from None

    return decode, encode


def _bool_pair(field: ModbusField, raw: RawCodec) -> tuple[Decoder, Encoder]:
    missing = _missing_set(field)
    true_raw = field.true_value

    def decode(registers: Sequence[int]) -> Value | None:
        code = raw.decode(registers)
        if code in missing:
            return None
        return code == true_raw if true_raw is not None else bool(code)

    def encode(value: Value) -> list[int]:
        if true_raw is not None:
            return raw.encode(true_raw if value else 0)
        return raw.encode(1 if value else 0)

    return decode, encode


def _string_pair(raw: RawCodec) -> tuple[Decoder, Encoder]:
    def decode(registers: Sequence[int]) -> Value | None:
        return str(raw.decode(registers)) or None

    def encode(value: Value) -> list[int]:
        return raw.encode(str(value))

    return decode, encode


def _number_pair(field: ModbusField, raw: RawCodec, *, as_int: bool) -> tuple[Decoder, Encoder]:
    scale, offset = field.scale, field.offset
    # 194 * 0.1 is 19.400000000000002 but 194 / 10 is 19.4: divide by exact decades
    inverse = 1 / scale
    divisor = round(inverse) if scale < 1 and math.isclose(inverse, round(inverse)) else None
    low, high = field.valid_range if field.valid_range else (-math.inf, math.inf)
    missing = _missing_set(field)
    is_float = raw.dtype in (DataType.FLOAT32, DataType.FLOAT64)

    def decode(registers: Sequence[int]) -> Value | None:
        number = raw.decode(registers)
        if number in missing:
            return None
        if isinstance(number, float) and math.isnan(number):
            return None  # many devices send NaN for "no value"
        value = (number / divisor if divisor else number * scale) + offset  # type: ignore[operator]
        if not low <= value <= high:
            raise DecodeError(f"{value:g} outside plausible range {low:g}..{high:g}")
        if as_int:
            return round(value)
        return float(value)

    def encode(value: Value) -> list[int]:
        if isinstance(value, str):
            raise EncodeError(f"{value!r} is not a number")
        number = (float(value) - offset) * divisor if divisor else (float(value) - offset) / scale
        return raw.encode(number if is_float else round(number))

    return decode, encode
