"""MQTT payloads -> vocabulary values. Pure functions, compiled once per topic-map entry.

A message-level problem (not JSON, not an object, not a number) raises
PayloadError; a problem with one field is reported in the result and the other
fields still decode, so one bad field never costs the good ones.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

from collectors.mqtt.topicmap import (
    DEFAULT_FALSE,
    DEFAULT_TRUE,
    UNIT_CONVERSIONS,
    JsonPayload,
    PlainPayload,
    TimestampSpec,
    ValueSpec,
    canonical_text,
)
from dcim.plausible import ImplausibleValueError, check_value
from dcim.reading import MAX_STRING_VALUE, Value
from dcim.vocabulary import load_vocabulary

#: Sender clocks may run ahead a little; beyond this the timestamp is not believed.
MAX_FUTURE_S = 300.0
#: Nor are timestamps from before this (2000-01-01): an unset RTC sends 1970.
MIN_EPOCH_S = 946_684_800.0


class FieldError(ValueError):
    """One value that cannot become its metric; `reason` is a short counter key."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(detail)


class PayloadError(FieldError):
    """The whole message is unusable (invalid JSON, not an object...)."""


Converter = Callable[[object], Value]


def _number(raw: object) -> float:
    # bool is an int in Python, but `true` is no temperature
    if isinstance(raw, bool):
        raise FieldError("wrong_type", f"expected a number, got {raw!r}")
    if isinstance(raw, int | float):
        try:
            number = float(raw)
        except OverflowError:
            raise FieldError("out_of_range", "integer too large") from None
    elif isinstance(raw, str | bytes):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        try:
            number = float(text.strip())
        except ValueError:
            raise FieldError("wrong_type", f"expected a number, got {text[:40]!r}") from None
    else:
        raise FieldError("wrong_type", f"expected a number, got {type(raw).__name__}")
    if not math.isfinite(number):
        raise FieldError("not_finite", f"value is {number}")
    return number


def _text(raw: object) -> str:
    if isinstance(raw, bytes):
        return canonical_text(raw.decode("utf-8", "replace"))
    if isinstance(raw, dict | list):
        raise FieldError("wrong_type", f"expected a scalar, got {type(raw).__name__}")
    return canonical_text(raw)


def compile_value(spec: ValueSpec) -> tuple[Converter, str | None]:
    """The raw -> value function of one value spec, and the unit of its readings.

    Every value also passes the vocabulary's check (finite, typed, plausible range).
    """
    convert, unit = _compile_value(spec)
    metric = spec.metric

    def checked(raw: object) -> Value:
        try:
            return check_value(metric, convert(raw))
        except ImplausibleValueError as exc:
            raise FieldError(exc.reason, str(exc)) from None

    return checked, unit


def _compile_value(spec: ValueSpec) -> tuple[Converter, str | None]:
    metric = load_vocabulary().get(spec.metric)
    kind = spec.effective_type(metric)
    if kind == "enum":
        mapping = dict(spec.enum) or {value.lower(): value for value in metric.values}

        def convert_enum(raw: object) -> Value:
            key = _text(raw)
            try:
                return mapping[key]
            except KeyError:
                raise FieldError("unknown_enum", f"{key[:40]!r} is not in the enum map") from None

        return convert_enum, metric.unit

    if kind == "bool":
        true = frozenset(spec.true_values if spec.true_values is not None else DEFAULT_TRUE)
        false = frozenset(spec.false_values if spec.false_values is not None else DEFAULT_FALSE)

        def convert_bool(raw: object) -> Value:
            key = _text(raw)
            if key in true:
                return True
            if key in false:
                return False
            raise FieldError("wrong_type", f"{key[:40]!r} is neither true nor false")

        return convert_bool, metric.unit

    if kind == "string":

        def convert_string(raw: object) -> Value:
            if isinstance(raw, dict | list):
                raise FieldError("wrong_type", f"expected text, got {type(raw).__name__}")
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            return text.strip()[:MAX_STRING_VALUE]

        return convert_string, metric.unit

    factor, shift = 1.0, 0.0
    if spec.unit is not None and spec.unit != metric.unit:
        factor, shift = UNIT_CONVERSIONS[(spec.unit, metric.unit or "")]
    scale = spec.scale * factor
    offset = spec.offset * factor + shift
    low, high = spec.valid_range if spec.valid_range else (-math.inf, math.inf)
    integer = metric.type == "int"

    def convert_number(raw: object) -> Value:
        value = _number(raw) * scale + offset
        if not low <= value <= high:
            raise FieldError("out_of_range", f"{value:g} outside plausible range {low:g}..{high:g}")
        if integer:
            if not value.is_integer():
                raise FieldError("wrong_type", f"{value:g} is not a whole number")
            return int(value)
        return value

    return convert_number, metric.unit


def _split_path(path: str | Sequence[str | int]) -> tuple[str | int, ...]:
    parts = path.split(".") if isinstance(path, str) else list(path)
    return tuple(int(p) if isinstance(p, str) and p.isdigit() else p for p in parts)


def lookup(document: object, path: tuple[str | int, ...]) -> object | None:
    """The value at `path` (object keys, list indexes), or None when absent."""
    node = document
    for part in path:
        if isinstance(part, int) and isinstance(node, list):
            if not -len(node) <= part < len(node):
                return None
            node = node[part]
        elif isinstance(node, dict):
            node = node.get(str(part))
            if node is None:
                return None
        else:
            return None
    return node


@dataclass(frozen=True, slots=True)
class CompiledField:
    name: str
    metric: str
    unit: str | None
    tags: Mapping[str, str]
    convert: Converter
    path: tuple[str | int, ...] = ()
    required: bool = False


@dataclass(slots=True)
class Decoded:
    """What one message gave: values by field, the sender's time, and field problems."""

    values: list[tuple[CompiledField, Value]] = field(default_factory=list)
    ts_ns: int | None = None
    problems: list[tuple[str, FieldError]] = field(default_factory=list)


def parse_timestamp(raw: object, fmt: str, now_ns: int) -> int:
    """Nanoseconds since the epoch from a payload timestamp; FieldError when implausible."""
    if isinstance(raw, str) and fmt in ("auto", "iso8601"):
        try:
            iso_ns = _iso_ns(raw.strip())
        except ValueError:
            if fmt == "iso8601":
                raise FieldError("bad_timestamp", f"{raw[:40]!r} is not ISO 8601") from None
        else:
            return _plausible(iso_ns, now_ns, raw)
    number = _number(raw)
    multiplier = {"epoch_s": 10**9, "epoch_ms": 10**6, "epoch_us": 10**3, "epoch_ns": 1}.get(fmt)
    if multiplier is None:
        # auto, by magnitude: 1e11 s is the year 5138, 1e11 ms is 1973
        magnitude = abs(number)
        multiplier = (
            10**9
            if magnitude < 1e11
            else 10**6
            if magnitude < 1e14
            else 10**3
            if magnitude < 1e17
            else 1
        )
    # whole numbers stay exact (epoch ms * 10**6 as a float would not)
    exact = isinstance(raw, int) or (isinstance(raw, str) and raw.strip().lstrip("-").isdigit())
    ts_ns = int(raw) * multiplier if exact else round(number * multiplier)  # type: ignore[call-overload]
    return _plausible(ts_ns, now_ns, raw)


def _iso_ns(text: str) -> int:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # a zone-less sender is taken to mean UTC
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _plausible(ts_ns: int, now_ns: int, raw: object) -> int:
    if ts_ns > now_ns + MAX_FUTURE_S * 1e9 or ts_ns < MIN_EPOCH_S * 1e9:
        raise FieldError("bad_timestamp", f"timestamp {str(raw)[:40]!r} is implausible")
    return ts_ns


class PayloadDecoder:
    """Decodes one entry's payloads (JSON fields or a plain value)."""

    def __init__(self, payload: JsonPayload | PlainPayload) -> None:
        self.is_json = isinstance(payload, JsonPayload)
        specs: list[tuple[str, ValueSpec, tuple[str | int, ...], bool]] = []
        if isinstance(payload, JsonPayload):
            for spec in payload.fields:
                path = _split_path(spec.path)
                name = ".".join(str(p) for p in path)
                specs.append((name, spec, path, spec.required))
        else:
            specs.append(("(payload)", payload.value, (), True))
        self.fields = tuple(_compile_field(name, s, p, r) for name, s, p, r in specs)
        self.timestamp: TimestampSpec | None = payload.timestamp
        ts_path = payload.timestamp.path if payload.timestamp else None
        self._ts_path = _split_path(ts_path) if ts_path is not None else None

    def decode(
        self, payload: bytes, now_ns: int, user_properties: Sequence[tuple[str, str]] = ()
    ) -> Decoded:
        out = Decoded()
        if self.is_json:
            document = _load_json(payload)
            for compiled in self.fields:
                raw = lookup(document, compiled.path)
                if raw is None:
                    if compiled.required:
                        out.problems.append((compiled.name, FieldError("missing", "field absent")))
                    continue
                _convert_into(out, compiled, raw)
        else:
            document = None
            if not payload.strip():
                raise PayloadError("empty", "empty payload")
            _convert_into(out, self.fields[0], payload)
        self._timestamp(out, document, now_ns, user_properties)
        return out

    def _timestamp(
        self,
        out: Decoded,
        document: object,
        now_ns: int,
        user_properties: Sequence[tuple[str, str]],
    ) -> None:
        spec = self.timestamp
        if spec is None:
            return
        raw: object | None = None
        if spec.user_property is not None:
            raw = next((v for k, v in user_properties if k == spec.user_property), None)
        if raw is None and self._ts_path is not None:
            raw = lookup(document, self._ts_path)
        if raw is None:
            return
        try:
            out.ts_ns = parse_timestamp(raw, spec.format, now_ns)
        except FieldError as exc:
            out.problems.append(("timestamp", FieldError("bad_timestamp", str(exc))))


def _compile_field(
    name: str, spec: ValueSpec, path: tuple[str | int, ...], required: bool
) -> CompiledField:
    convert, unit = compile_value(spec)
    tags = MappingProxyType(dict(spec.tags))
    return CompiledField(name, spec.metric, unit, tags, convert, path, required)


def _convert_into(out: Decoded, compiled: CompiledField, raw: object) -> None:
    try:
        out.values.append((compiled, compiled.convert(raw)))
    except FieldError as exc:
        out.problems.append((compiled.name, exc))


def _load_json(payload: bytes) -> dict[str, object]:
    # NaN/Infinity (not JSON, but senders emit them) parse as floats and are then
    # refused per field, so the message's other fields still count
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise PayloadError("bad_json", f"invalid JSON: {str(exc)[:80]}") from None
    if not isinstance(document, dict):
        raise PayloadError("bad_json", f"expected a JSON object, got {type(document).__name__}")
    return document


def decode_availability(payload: bytes, online: frozenset[str], offline: frozenset[str]) -> bool:
    """True for an online payload, False for offline; PayloadError otherwise."""
    text = canonical_text(payload.decode("utf-8", "replace"))
    if text in online:
        return True
    if text in offline:
        return False
    raise PayloadError("bad_availability", f"{text[:40]!r} is neither online nor offline")
