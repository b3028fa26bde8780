"""The encoder must be byte-identical to influxdb-client's Point with WritePrecision.MS."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from influxdb_client.client.write.point import Point
from influxdb_client.domain.write_precision import WritePrecision

from dcim.reading import Reading, Value
from dcim.sinks.lineprotocol import LineEncoder, encode_batch, encode_reading
from dcim.vocabulary import load_vocabulary

VOCAB = load_vocabulary()
POINT: Any = Point  # influxdb-client has no annotations
TRICKY = [
    "plain",
    "with space",
    "com,ma",
    "eq=uals",
    'quo"te',
    "back\\slash",
    "trailing\\",
    "new\nline",
    "tab\tcr\r",
    "ünï©ødé µs °C",
    "#hash",
    "=",
    " ",
    "\\",
    '\\"',
]


def reference(r: Reading) -> bytes:
    """What influxdb-client writes for the same data."""
    measurement, field = VOCAB.storage(r.metric)
    point = POINT(measurement).field(field, r.value).time(r.ts_ns // 1_000_000, WritePrecision.MS)
    for key, value in r.tags.items():
        point.tag(key, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)  # measurement starting with '#'
        text: str = point.to_line_protocol()
    return text.encode()


def reading(metric: str, value: Value, tags: Mapping[str, str], ts_ns: int) -> Reading:
    return Reading("dev", metric, value, None, ts_ns, MappingProxyType(dict(tags)))


VALUES: list[Value] = [
    0,
    -1,
    42,
    2**63 - 1,
    -(2**63),
    2**70,
    0.0,
    -0.0,
    1.0,
    1.5,
    1e-7,
    1e16,
    1e21,
    -1e21,
    1 / 3,
    123456789.123,
    float("inf"),
    True,
    False,
    "",
    "text",
    *TRICKY,
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_values_match_point(value: Value) -> None:
    r = reading(
        "ups.battery_charge_pct", value, {"site": "dc1", "rack": "r 1"}, 1_700_000_000_123_456_789
    )
    assert encode_reading(r, VOCAB) == reference(r)


@pytest.mark.parametrize("name", TRICKY, ids=repr)
def test_names_match_point(name: str) -> None:
    tags = {name: name, "device": name, "z": "", "a": "x"}
    for metric in (f"{name}.{name}", f"ups.{name}", name, "pdu.outlet_power_w"):
        r = reading(metric, 1.25, tags, 1_600_000_000_000_000_000)
        assert encode_reading(r, VOCAB) == reference(r), metric


def test_batch_joins_lines_and_skips_non_finite() -> None:
    rs = [
        reading("ups.load_pct", 1.0, {}, 1_000_000),
        reading("ups.load_pct", float("-inf"), {}, 2_000_000),
        reading("ups.load_pct", 3, {"a": "b"}, 3_000_000),
    ]
    expected = b"\n".join([reference(rs[0]), reference(rs[2])])
    assert encode_batch(rs, VOCAB) == expected
    assert LineEncoder(VOCAB).encode_batch(rs) == (expected, 2)


def test_tag_cache_sees_mutated_mapping() -> None:
    tags = {"site": "a"}
    enc = LineEncoder(VOCAB)
    first = enc.encode(Reading("d", "ups.load_pct", 1.0, None, 0, tags))
    tags["site"] = "b"
    second = enc.encode(Reading("d", "ups.load_pct", 1.0, None, 0, tags))
    assert first != second
    assert second == reference(Reading("d", "ups.load_pct", 1.0, None, 0, tags))


# Surrogates are excluded: neither encoder can write them as UTF-8.
_chars = st.characters(exclude_categories=["Cs"])
names = st.text(st.sampled_from(list(' ,="\\\n\t\r#ab.é😀')) | _chars, max_size=8)
values: st.SearchStrategy[Value] = (
    st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(_chars, max_size=20)
)


@settings(max_examples=400, deadline=None)
@given(
    metric=names,
    tags=st.dictionaries(names, names, max_size=4),
    value=values,
    ts_ns=st.integers(min_value=0, max_value=2**62),
)
def test_random_readings_match_point(
    metric: str, tags: dict[str, str], value: Value, ts_ns: int
) -> None:
    r = reading(metric, value, tags, ts_ns)
    assert LineEncoder(VOCAB).encode(r) == reference(r)


def test_tag_sets_encode_like_plain_mappings_and_only_once() -> None:
    from dcim.reading import TagSet

    encoder = LineEncoder()
    plain = {"site": "par 1", "device": "pdu,a", "outlet": "3", "label": "x=y"}
    tags = TagSet(plain)
    first = Reading("pdu,a", "pdu.outlet_current_a", 1.25, "A", 1_700_000_000_000_000_000, tags)
    same = Reading("pdu,a", "pdu.outlet_current_a", 1.5, "A", 1_700_000_030_000_000_000, tags)
    as_dict = Reading("pdu,a", "pdu.outlet_current_a", 1.25, "A", first.ts_ns, plain)
    assert encoder.encode(first) == encoder.encode(as_dict)
    assert tags.encoded is not None  # escaped and sorted once, kept with the tag set
    kept = tags.encoded
    encoder.encode(same)
    assert tags.encoded is kept
    with pytest.raises(TypeError):
        tags["site"] = "elsewhere"
    assert dict(tags) == plain
