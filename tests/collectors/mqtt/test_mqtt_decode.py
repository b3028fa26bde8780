"""Payload decoders: table-driven cases and properties (hypothesis)."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from collectors.mqtt.decode import (
    FieldError,
    PayloadDecoder,
    PayloadError,
    compile_value,
    decode_availability,
    parse_timestamp,
)
from collectors.mqtt.topicmap import JsonPayload, PlainPayload, ValueSpec

NOW_NS = time.time_ns()


def _json(
    fields: list[dict[str, object]], timestamp: dict[str, object] | None = None
) -> PayloadDecoder:
    body: dict[str, object] = {"format": "json", "fields": fields}
    if timestamp:
        body["timestamp"] = timestamp
    return PayloadDecoder(JsonPayload.model_validate(body))


def _plain(value: dict[str, object]) -> PayloadDecoder:
    return PayloadDecoder(PlainPayload.model_validate({"format": "plain", "value": value}))


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)


@given(finite, st.floats(min_value=-1e3, max_value=1e3, allow_nan=False), finite)
def test_number_is_raw_times_scale_plus_offset(raw: float, scale: float, offset: float) -> None:
    # meter.power_w: the widest plausible range in the vocabulary (+-1e9 W)
    convert, unit = compile_value(ValueSpec(metric="meter.power_w", scale=scale, offset=offset))
    assert unit == "W"
    expected = raw * scale + offset
    if not -1e9 <= expected <= 1e9:  # beyond the vocabulary's range: refused, not stored
        with pytest.raises(FieldError) as info:
            convert(raw)
        assert info.value.reason == "out_of_range"
        return
    assert convert(raw) == pytest.approx(expected, rel=1e-12, abs=1e-9)
    # a number sent as text decodes the same
    assert convert(repr(raw)) == pytest.approx(expected, rel=1e-12, abs=1e-9)


@given(st.floats(min_value=-100, max_value=300, allow_nan=False))
def test_fahrenheit_round_trips_to_celsius(celsius: float) -> None:
    convert, _ = compile_value(ValueSpec(metric="sensor.temp_c", unit="degF"))
    fahrenheit = celsius * 9 / 5 + 32
    assert convert(fahrenheit) == pytest.approx(celsius, abs=1e-9)


@given(finite, st.floats(min_value=-100, max_value=100), st.floats(min_value=0, max_value=100))
def test_valid_range_accepts_inside_and_refuses_outside(
    raw: float, low: float, width: float
) -> None:
    convert, _ = compile_value(
        ValueSpec(metric="sensor.humidity_pct", valid_range=(low, low + width))
    )
    # the vocabulary's own range (0..100 %) applies on top of the field's
    if low <= raw <= low + width and 0 <= raw <= 100:
        assert convert(raw) == raw
    else:
        with pytest.raises(FieldError) as info:
            convert(raw)
        assert info.value.reason == "out_of_range"


@given(
    st.one_of(
        st.booleans(),
        st.none(),
        st.lists(st.integers(), max_size=3),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        st.text(max_size=20).filter(lambda t: not _is_number(t)),
    )
)
def test_non_numbers_are_wrong_type_never_a_crash(raw: object) -> None:
    convert, _ = compile_value(ValueSpec(metric="sensor.temp_c"))
    with pytest.raises(FieldError) as info:
        convert(raw)
    assert info.value.reason in ("wrong_type", "not_finite")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("raw", [math.nan, math.inf, -math.inf, "nan", "inf"])
def test_nan_and_infinity_are_refused(raw: object) -> None:
    convert, _ = compile_value(ValueSpec(metric="sensor.temp_c"))
    with pytest.raises(FieldError) as info:
        convert(raw)
    assert info.value.reason == "not_finite"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("ON", True),
        ("off", False),
        (" open ", True),
        ("closed", False),
    ],
)
def test_bool_defaults(raw: object, expected: bool) -> None:
    convert, _ = compile_value(ValueSpec(metric="sensor.door_open"))
    assert convert(raw) is expected


def test_bool_custom_lists_and_unknown() -> None:
    convert, _ = compile_value(
        ValueSpec(metric="sensor.leak_detected", true_values=["WET"], false_values=["DRY"])
    )
    assert convert("wet") is True
    assert convert("dry") is False
    with pytest.raises(FieldError):
        convert("on")  # the custom lists replace the defaults


def test_enum_maps_numbers_and_names() -> None:
    spec = ValueSpec.model_validate(
        {"metric": "sensor.smoke_level", "enum": {0: "normal", 1: "alert", "FIRE-1": "fire1"}}
    )
    convert, _ = compile_value(spec)
    assert convert(0) == "normal"
    assert convert(1.0) == "alert"
    assert convert("fire-1") == "fire1"
    with pytest.raises(FieldError) as info:
        convert(7)
    assert info.value.reason == "unknown_enum"


def test_enum_defaults_to_the_vocabulary_names() -> None:
    convert, _ = compile_value(ValueSpec(metric="sensor.smoke_level"))
    assert convert("Fire2") == "fire2"


def test_int_metric_needs_whole_numbers() -> None:
    convert, _ = compile_value(ValueSpec(metric="crac.alarms_active"))
    assert convert(3.0) == 3
    assert isinstance(convert(3.0), int)
    with pytest.raises(FieldError):
        convert(2.5)


@given(
    st.dictionaries(
        st.text(max_size=8),
        st.recursive(
            st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
            lambda children: (
                st.lists(children, max_size=3)
                | st.dictionaries(st.text(max_size=4), children, max_size=3)
            ),
            max_leaves=10,
        ),
        max_size=5,
    )
)
def test_any_json_object_decodes_or_reports_never_raises(document: dict[str, object]) -> None:
    decoder = _json(
        [
            {"path": "t", "metric": "sensor.temp_c"},
            {"path": "h.v", "metric": "sensor.humidity_pct", "required": True},
            {"path": "d", "metric": "sensor.door_open"},
        ],
        {"path": "ts"},
    )
    payload = json.dumps(document, allow_nan=True).encode()
    decoded = decoder.decode(payload, NOW_NS)
    # every field either gave a value or a named problem, never both, never neither
    names = [c.name for c, _, _ in decoded.values] + [n for n, _ in decoded.problems]
    assert set(names) <= {"t", "h.v", "d", "timestamp"}
    assert len([n for n in names if n == "h.v"]) == 1


@given(st.binary(max_size=64))
def test_any_bytes_never_raise_anything_but_payload_errors(payload: bytes) -> None:
    decoder = _json([{"path": "t", "metric": "sensor.temp_c"}])
    reasons = []
    try:
        decoder.decode(payload, NOW_NS)
    except PayloadError as exc:
        reasons.append(exc.reason)
    assert set(reasons) <= {"bad_json"}


@given(finite)
def test_plain_payload_round_trip(value: float) -> None:
    decoder = _plain({"metric": "meter.power_w"})
    decoded = decoder.decode(f"{value!r}\n".encode(), NOW_NS)
    if -1e9 <= value <= 1e9:
        assert decoded.values[0][1] == value
    else:  # beyond the vocabulary's plausible range: a counted problem, never a value
        assert decoded.values == []
        assert [p.reason for _, p in decoded.problems] == ["out_of_range"]


def test_plain_empty_payload() -> None:
    with pytest.raises(PayloadError) as info:
        _plain({"metric": "sensor.temp_c"}).decode(b"  ", NOW_NS)
    assert info.value.reason == "empty"


# timestamps between 2001 and now
moments = st.integers(min_value=1_000_000_000, max_value=NOW_NS // 10**9)


@given(moments, st.integers(min_value=0, max_value=999))
def test_epoch_seconds_and_millis_auto_detected(seconds: int, millis: int) -> None:
    expected = seconds * 10**9 + millis * 10**6
    assert parse_timestamp(seconds * 1000 + millis, "auto", NOW_NS) == expected
    assert parse_timestamp(seconds * 1000 + millis, "epoch_ms", NOW_NS) == expected
    assert parse_timestamp(seconds, "auto", NOW_NS) == seconds * 10**9
    assert parse_timestamp(str(seconds), "epoch_s", NOW_NS) == seconds * 10**9
    as_float = parse_timestamp(seconds + millis / 1000, "auto", NOW_NS)
    assert abs(as_float - expected) < 1000  # float seconds: exact to a microsecond


@given(
    moments, st.integers(min_value=0, max_value=999_999), st.integers(min_value=-12, max_value=14)
)
def test_iso8601_with_any_offset(seconds: int, micros: int, hours: int) -> None:
    moment = datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=micros)
    text = moment.astimezone(timezone(timedelta(hours=hours))).isoformat()
    assert parse_timestamp(text, "auto", NOW_NS) == seconds * 10**9 + micros * 1000
    assert parse_timestamp(text, "iso8601", NOW_NS) == seconds * 10**9 + micros * 1000


@pytest.mark.parametrize(
    "raw", [0, 12, "1970-01-01T00:00:00Z", (NOW_NS // 10**9) + 86_400, "yesterday", True]
)
def test_implausible_timestamps_are_refused(raw: object) -> None:
    with pytest.raises(FieldError) as info:
        parse_timestamp(raw, "auto", NOW_NS)
    assert info.value.reason in ("bad_timestamp", "wrong_type")


def test_bad_timestamp_keeps_the_values() -> None:
    decoded = _json([{"path": "t", "metric": "sensor.temp_c"}], {"path": "ts"}).decode(
        b'{"t": 21, "ts": "soon"}', NOW_NS
    )
    assert [v for _, v, _ in decoded.values] == [21.0]
    assert decoded.ts_ns is None
    assert decoded.problems[0][0] == "timestamp"


def test_user_property_wins_over_payload_field() -> None:
    decoder = _json(
        [{"path": "t", "metric": "sensor.temp_c"}], {"path": "ts", "user_property": "ts"}
    )
    decoded = decoder.decode(b'{"t": 1, "ts": 1600000000}', NOW_NS, [("ts", "1700000000.5")])
    assert decoded.ts_ns == 1_700_000_000_500_000_000


def test_paths_reach_into_lists_and_dotted_keys() -> None:
    decoder = _json(
        [
            {"path": "probes.1.t", "metric": "sensor.temp_c", "tags": {"position": "outlet"}},
            {"path": ["a.b", "c"], "metric": "sensor.humidity_pct"},
        ]
    )
    decoded = decoder.decode(b'{"probes": [{"t": 1}, {"t": 2}], "a.b": {"c": 40}}', NOW_NS)
    assert [(c.metric, v) for c, v, _ in decoded.values] == [
        ("sensor.temp_c", 2.0),
        ("sensor.humidity_pct", 40.0),
    ]
    assert dict(decoded.values[0][0].tags) == {"position": "outlet"}


@given(st.sampled_from(["online", "ONLINE", " online\n"]), st.sampled_from(["offline", "Offline"]))
def test_availability(online: str, offline: str) -> None:
    assume(online)
    on, off = frozenset({"online"}), frozenset({"offline"})
    assert decode_availability(online.encode(), on, off) is True
    assert decode_availability(offline.encode(), on, off) is False
    with pytest.raises(PayloadError):
        decode_availability(b"rebooting", on, off)
