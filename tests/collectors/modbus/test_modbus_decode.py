"""The shared Modbus codec: known register patterns, field semantics, round trips."""

from __future__ import annotations

import math
import struct
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.client import AsyncModbusTcpClient

from collectors.modbus.decode import (
    NUMERIC,
    DataType,
    DecodeError,
    EncodeError,
    Order,
    compile_field,
    raw_codec,
)
from collectors.modbus.profile import ModbusField
from dcim.vocabulary import load_vocabulary

A, C, BA, DC = Order.ABCD, Order.CDAB, Order.BADC, Order.DCBA

# (type, value, {order: registers on the wire}); values chosen so every byte differs
KNOWN: list[tuple[DataType, Any, dict[Order, list[int]]]] = [
    (DataType.INT16, -2, {A: [0xFFFE], C: [0xFFFE], BA: [0xFEFF], DC: [0xFEFF]}),
    (DataType.UINT16, 0x1234, {A: [0x1234], C: [0x1234], BA: [0x3412], DC: [0x3412]}),
    (
        DataType.INT32,
        0x12345678,
        {A: [0x1234, 0x5678], C: [0x5678, 0x1234], BA: [0x3412, 0x7856], DC: [0x7856, 0x3412]},
    ),
    (
        DataType.INT32,
        -123456789,  # 0xF8A432EB
        {A: [0xF8A4, 0x32EB], C: [0x32EB, 0xF8A4], BA: [0xA4F8, 0xEB32], DC: [0xEB32, 0xA4F8]},
    ),
    (
        DataType.UINT32,
        0xDEADBEEF,
        {A: [0xDEAD, 0xBEEF], C: [0xBEEF, 0xDEAD], BA: [0xADDE, 0xEFBE], DC: [0xEFBE, 0xADDE]},
    ),
    (
        DataType.FLOAT32,
        123.456,  # 0x42F6E979; decoded as the shortest decimal of that float32
        {A: [0x42F6, 0xE979], C: [0xE979, 0x42F6], BA: [0xF642, 0x79E9], DC: [0x79E9, 0xF642]},
    ),
    (
        DataType.INT64,
        0x0102030405060708,
        {
            A: [0x0102, 0x0304, 0x0506, 0x0708],
            C: [0x0708, 0x0506, 0x0304, 0x0102],
            BA: [0x0201, 0x0403, 0x0605, 0x0807],
            DC: [0x0807, 0x0605, 0x0403, 0x0201],
        },
    ),
    (
        DataType.UINT64,
        0xFEDCBA9876543210,
        {
            A: [0xFEDC, 0xBA98, 0x7654, 0x3210],
            C: [0x3210, 0x7654, 0xBA98, 0xFEDC],
            BA: [0xDCFE, 0x98BA, 0x5476, 0x1032],
            DC: [0x1032, 0x5476, 0x98BA, 0xDCFE],
        },
    ),
    (
        DataType.FLOAT64,
        -1234.5678,  # 0xC0934A456D5CFAAD
        {
            A: [0xC093, 0x4A45, 0x6D5C, 0xFAAD],
            C: [0xFAAD, 0x6D5C, 0x4A45, 0xC093],
            BA: [0x93C0, 0x454A, 0x5C6D, 0xADFA],
            DC: [0xADFA, 0x5C6D, 0x454A, 0x93C0],
        },
    ),
]
CASES = [(t, v, o, regs) for t, v, table in KNOWN for o, regs in table.items()]


@pytest.mark.parametrize(("dtype", "value", "order", "registers"), CASES)
def test_known_patterns_decode_and_encode(
    dtype: DataType, value: Any, order: Order, registers: list[int]
) -> None:
    codec = raw_codec(dtype, order)
    assert codec.registers == len(registers)
    assert codec.decode(registers) == value
    assert codec.encode(value) == registers


_PYMODBUS_TYPES = {
    DataType.INT16: AsyncModbusTcpClient.DATATYPE.INT16,
    DataType.UINT16: AsyncModbusTcpClient.DATATYPE.UINT16,
    DataType.INT32: AsyncModbusTcpClient.DATATYPE.INT32,
    DataType.UINT32: AsyncModbusTcpClient.DATATYPE.UINT32,
    DataType.INT64: AsyncModbusTcpClient.DATATYPE.INT64,
    DataType.UINT64: AsyncModbusTcpClient.DATATYPE.UINT64,
    DataType.FLOAT32: AsyncModbusTcpClient.DATATYPE.FLOAT32,
    DataType.FLOAT64: AsyncModbusTcpClient.DATATYPE.FLOAT64,
}


@pytest.mark.parametrize(
    ("dtype", "value", "order", "registers"), [case for case in CASES if case[2] in (A, C)]
)
def test_agrees_with_pymodbus_where_pymodbus_has_the_order(
    dtype: DataType, value: Any, order: Order, registers: list[int]
) -> None:
    """An independent reference: pymodbus' converters know word order big (ABCD) and little (CDAB)."""
    word_order: Literal["big", "little"] = "big" if order is A else "little"
    theirs = AsyncModbusTcpClient.convert_from_registers(
        registers, _PYMODBUS_TYPES[dtype], word_order=word_order
    )
    ours = raw_codec(dtype, order).decode(registers)
    if dtype is DataType.FLOAT32:
        assert isinstance(theirs, float)
        assert struct.pack(">f", ours) == struct.pack(">f", theirs)
    else:
        assert theirs == ours


def test_strings_swap_bytes_but_ignore_word_order() -> None:
    assert raw_codec(DataType.STRING, A, length=3).decode([0x4352, 0x4143, 0x0000]) == "CRAC"
    assert raw_codec(DataType.STRING, C, length=3).decode([0x4352, 0x4143, 0x0000]) == "CRAC"
    assert raw_codec(DataType.STRING, BA, length=3).decode([0x5243, 0x4341, 0x0000]) == "CRAC"
    assert raw_codec(DataType.STRING, A, length=3).encode("UPS") == [0x5550, 0x5300, 0x0000]
    with pytest.raises(EncodeError, match="longer than 6"):
        raw_codec(DataType.STRING, A, length=3).encode("TOO LONG")


def test_bit_fields_extract_and_merge() -> None:
    codec = raw_codec(DataType.BITS, A, bit=4, width=3)
    assert codec.decode([0b0000_0000_0101_0000]) == 0b101
    assert codec.encode(0b101) == [0b0101_0000]
    assert codec.mask == 0b0111_0000
    with pytest.raises(EncodeError, match="3 bit"):
        codec.encode(8)
    swapped = raw_codec(DataType.BITS, BA, bit=0, width=1)
    assert swapped.decode([0x0100]) == 1  # bit 0 sits in the second byte on the wire
    with pytest.raises(ValueError, match="does not fit"):
        raw_codec(DataType.BITS, A, bit=14, width=4)


def test_out_of_range_values_cannot_be_encoded() -> None:
    with pytest.raises(EncodeError, match="does not fit uint16"):
        raw_codec(DataType.UINT16).encode(-1)
    with pytest.raises(EncodeError, match="not an integer"):
        raw_codec(DataType.INT32).encode(1.5)


# --- field level -----------------------------------------------------------------


def field(metric: str, **kw: Any) -> ModbusField:
    return ModbusField.model_validate({"metric": metric, "address": 0, **kw})


def compiled(f: ModbusField, order: Order = A) -> Any:
    return compile_field(f, load_vocabulary().get(f.metric).type, order)


def test_scale_offset_range_and_missing() -> None:
    temp = compiled(
        field(
            "crac.supply_air_temp_c",
            type="int16",
            scale=0.1,
            valid_range=[-40, 80],
            missing=[0x7FFF, -32768],
        )
    )
    assert temp.decode([194]) == 19.4  # exact decade division, no 19.400000000000002
    assert temp.decode([0xFFEC]) == -2.0
    assert temp.decode([0x7FFF]) is None
    assert temp.decode([0x8000]) is None
    with pytest.raises(DecodeError, match=r"900 outside plausible range -40\.\.80"):
        temp.decode([9000])
    assert temp.encode(22.5) == [225]
    kelvin = compiled(field("sensor.temp_c", type="uint16", scale=0.01, offset=-273.15))
    assert kelvin.decode([29515]) == pytest.approx(22.0)
    assert kelvin.encode(22.0) == [29515]


def test_float_nan_is_missing_and_int_metric_is_int() -> None:
    power = compiled(field("meter.power_w", type="float32"), C)
    nan_regs = raw_codec(DataType.FLOAT32, C).encode(math.nan)
    assert power.decode(nan_regs) is None
    count = compiled(field("crac.alarms_active", type="uint16"))
    assert count.decode([3]) == 3
    assert isinstance(count.decode([3]), int)


def test_enum_and_bool_and_flags() -> None:
    mode = compiled(
        field("crac.operating_mode", type="uint16", enum={0: "off", 1: "standby", 2: "cooling"})
    )
    assert mode.decode([2]) == "cooling"
    assert mode.encode("standby") == [1]
    with pytest.raises(DecodeError, match="7 not in the enum map"):
        mode.decode([7])
    with pytest.raises(EncodeError):
        mode.encode("heating")
    on = compiled(field("crac.unit_on", type="bits", bit=3))
    assert on.decode([0b1000]) is True
    assert on.decode([0b0111]) is False
    alarms = compiled(
        field("crac.alarm", type="uint16", flags={0: "high_temp", 1: "fan_failure", 9: "filter"})
    )
    assert alarms.decode_flags([0b10_0000_0010]) == [
        ("high_temp", False),
        ("fan_failure", True),
        ("filter", True),
    ]
    assert alarms.encode_flags({"high_temp": True, "filter": True}) == [0b10_0000_0001]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"metric": "crac.unit_on", "function": "coils", "type": "uint16"}, "single bits"),
        ({"metric": "crac.operating_mode"}, "give an enum map"),
        ({"metric": "crac.operating_mode", "enum": {1: "blowing"}}, "not values of"),
        ({"metric": "crac.fan_speed_pct", "flags": {0: "x"}}, "bool metric"),
        ({"metric": "crac.alarm", "flags": {16: "x"}}, "0..15"),
        ({"metric": "crac.fan_speed_pct", "unit": "degC"}, "not the unit"),
        ({"metric": "crac.fan_speed_pct", "bit": 3}, "belong to type bits"),
        ({"metric": "no.such_metric"}, "not in the vocabulary"),
    ],
)
def test_field_validation(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModbusField.model_validate({"address": 0, **spec})


# --- properties ------------------------------------------------------------------

ORDERS = st.sampled_from(list(Order))


def _values(dtype: DataType) -> st.SearchStrategy[Any]:
    code = NUMERIC[dtype][0]
    if code == "f":
        return st.floats(width=32, allow_nan=False)
    if code == "d":
        return st.floats(allow_nan=False)
    bits = 16 * NUMERIC[dtype][1]
    if code.isupper():
        return st.integers(0, 2**bits - 1)
    return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


@given(data=st.data(), dtype=st.sampled_from(list(NUMERIC)), order=ORDERS)
def test_numeric_round_trip(data: st.DataObject, dtype: DataType, order: Order) -> None:
    codec = raw_codec(dtype, order)
    value = data.draw(_values(dtype))
    registers = codec.encode(value)
    assert len(registers) == codec.registers
    assert all(0 <= r <= 0xFFFF for r in registers)
    decoded = codec.decode(registers)
    if dtype is DataType.FLOAT32:  # same float32, shortest decimal
        assert struct.pack(">f", decoded) == struct.pack(">f", value)
    else:
        assert decoded == value


@given(
    dtype=st.sampled_from([t for t, (code, _) in NUMERIC.items() if code not in "fd"]),
    order=ORDERS,
    registers=st.lists(st.integers(0, 0xFFFF), min_size=4, max_size=4),
)
def test_every_register_pattern_is_an_integer_and_back(
    dtype: DataType, order: Order, registers: list[int]
) -> None:
    codec = raw_codec(dtype, order)
    used = registers[: codec.registers]
    assert codec.encode(codec.decode(used)) == used


@given(
    order=ORDERS,
    text=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters="\x7f"),
        max_size=16,
    ),
)
def test_string_round_trip(order: Order, text: str) -> None:
    codec = raw_codec(DataType.STRING, order, length=8)
    assert codec.decode(codec.encode(text)) == text


@given(raw=st.integers(-32768, 32767))
def test_scaled_field_round_trip(raw: int) -> None:
    temp = compiled(field("crac.return_air_temp_c", type="int16", scale=0.1))
    registers = raw_codec(DataType.INT16).encode(raw)
    value = temp.decode(registers)
    assert value == raw / 10
    assert temp.encode(value) == registers


@given(bit=st.integers(0, 15), data=st.data(), order=ORDERS)
def test_bit_field_round_trip(bit: int, data: st.DataObject, order: Order) -> None:
    width = data.draw(st.integers(1, 16 - bit))
    value = data.draw(st.integers(0, 2**width - 1))
    codec = raw_codec(DataType.BITS, order, bit=bit, width=width)
    (word,) = codec.encode(value)
    assert word & ~codec.mask == 0
    other = data.draw(st.integers(0, 0xFFFF)) & ~codec.mask
    assert codec.decode([word | other]) == value
