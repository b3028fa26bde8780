"""MQTT payloads -> vocabulary values. Pure functions, compiled once per topic-map entry.

A message-level problem (not JSON, not an object, not a number) raises
PayloadError; a problem with one field is reported in the result and the other
fields still decode, so one bad field never costs the good ones.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from types import MappingProxyType

from collectors.mqtt.topicmap import (
    DEFAULT_FALSE,
    DEFAULT_TRUE,
    UNIT_CONVERSIONS,
    JsonField,
    JsonPayload,
    PlainPayload,
    TimestampSpec,
    ValueSpec,
    canonical_text,
    path_parts,
)
from dcim.plausible import ImplausibleValueError, check_value
from dcim.reading import MAX_STRING_VALUE, Value
from dcim.vocabulary import load_vocabulary

#: Sender clocks may run ahead a little; beyond this the timestamp is not believed.
MAX_FUTURE_S = 300.0
#: Nor are timestamps from before this (2000-01-01): an unset RTC sends 1970.
MIN_EPOCH_S = 946_684_800.0
#: Distinct key-pattern matches remembered per field (tag sets), so odd keys cannot grow memory.
MAX_KEY_MATCHES = 1000


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


@dataclass(frozen=True, slots=True)
class KeyPattern:
    """A path level such as `*` or `temperature:*`: matches object keys, captures the `*`."""

    text: str
    regex: re.Pattern[str]

    @classmethod
    def parse(cls, text: str) -> KeyPattern:
        before, _, after = text.partition("*")
        return cls(text, re.compile(f"{re.escape(before)}(.*){re.escape(after)}", re.DOTALL))


PathPart = str | int | KeyPattern


def _split_path(path: str | Sequence[str | int]) -> tuple[PathPart, ...]:
    return tuple(
        KeyPattern.parse(p) if isinstance(p, str) and "*" in p else p
        for p in path_parts(path if isinstance(path, str) else list(path))
    )


def lookup(document: object, path: Sequence[PathPart]) -> object | None:
    """The value at `path` (object keys, list indexes), or None when absent."""
    node = document
    for part in path:
        if isinstance(part, int) and isinstance(node, list):
            if not -len(node) <= part < len(node):
                return None
            node = node[part]
        elif isinstance(node, dict) and not isinstance(part, KeyPattern):
            node = node.get(str(part))
            if node is None:
                return None
        else:
            return None
    return node


def lookup_matches(
    document: object, path: Sequence[PathPart], skip: frozenset[str] = frozenset()
) -> Iterator[tuple[str, object]]:
    """(what `*` matched, value) for every key its pattern level matches, in payload order."""
    for position, part in enumerate(path):
        if isinstance(part, KeyPattern):
            parent = lookup(document, path[:position])
            if not isinstance(parent, dict):
                return
            rest = path[position + 1 :]
            for key, child in parent.items():
                matched = part.regex.fullmatch(key)
                if matched is None or key in skip:
                    continue
                value = lookup(child, rest)
                if value is not None:
                    yield matched.group(1), value
            return
    value = lookup(document, path)
    if value is not None:
        yield "", value


@dataclass(frozen=True, slots=True)
class CompiledField:
    name: str
    metric: str
    unit: str | None
    tags: Mapping[str, str]
    convert: Converter
    path: tuple[PathPart, ...] = ()
    required: bool = False
    #: Key pattern in the path: the tag that gets the match, keys skipped, tag sets made.
    key_tag: str | None = None
    skip_keys: frozenset[str] = frozenset()
    tag_sets: dict[str, Mapping[str, str]] = field(default_factory=dict)
    #: Unit given by the payload: where, and the converter for each unit text.
    unit_path: tuple[PathPart, ...] | None = None
    by_unit: Mapping[str, Converter] = field(default_factory=dict)

    def tags_for(self, key: str) -> Mapping[str, str]:
        """The reading tags of a key-pattern match (made once per distinct key)."""
        if self.key_tag is None:
            return self.tags
        tags = self.tag_sets.get(key)
        if tags is None:
            tags = MappingProxyType({**self.tags, self.key_tag: key})
            if len(self.tag_sets) < MAX_KEY_MATCHES:
                self.tag_sets[key] = tags
        return tags


@dataclass(slots=True)
class Decoded:
    """What one message gave: values by field (with their reading tags), the sender's
    time, and field problems."""

    values: list[tuple[CompiledField, Value, Mapping[str, str]]] = field(default_factory=list)
    ts_ns: int | None = None
    problems: list[tuple[str, FieldError]] = field(default_factory=list)


def parse_timestamp(raw: object, fmt: str, now_ns: int, zone: tzinfo = UTC) -> int:
    """Nanoseconds since the epoch from a payload timestamp; FieldError when implausible.
    `zone` is what an ISO 8601 time without an offset means."""
    if isinstance(raw, str) and fmt in ("auto", "iso8601"):
        try:
            iso_ns = _iso_ns(raw.strip(), zone)
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


def _iso_ns(text: str, zone: tzinfo) -> int:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
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
        if isinstance(payload, JsonPayload):
            self.fields = tuple(_compile_json_field(spec) for spec in payload.fields)
        else:
            self.fields = (_compile_field("(payload)", payload.value, (), True),)
        self.timestamp: TimestampSpec | None = payload.timestamp
        ts_path = payload.timestamp.path if payload.timestamp else None
        self._ts_path = _split_path(ts_path) if ts_path is not None else None

    def decode(
        self,
        payload: bytes,
        now_ns: int,
        user_properties: Sequence[tuple[str, str]] = (),
        zone: tzinfo = UTC,
    ) -> Decoded:
        """`zone`: the device site's time zone, for local times without an offset."""
        out = Decoded()
        if self.is_json:
            document = _load_json(payload)
            for compiled in self.fields:
                found = False
                for key, raw in lookup_matches(document, compiled.path, compiled.skip_keys):
                    found = True
                    _convert_into(out, compiled, raw, key, document)
                if not found and compiled.required:
                    out.problems.append((compiled.name, FieldError("missing", "field absent")))
        else:
            document = None
            if not payload.strip():
                raise PayloadError("empty", "empty payload")
            _convert_into(out, self.fields[0], payload, "", None)
        self._timestamp(out, document, now_ns, user_properties, zone)
        return out

    def _timestamp(
        self,
        out: Decoded,
        document: object,
        now_ns: int,
        user_properties: Sequence[tuple[str, str]],
        zone: tzinfo,
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
            out.ts_ns = parse_timestamp(
                raw, spec.format, now_ns, zone if spec.zone == "site" else UTC
            )
        except FieldError as exc:
            out.problems.append(("timestamp", FieldError("bad_timestamp", str(exc))))


def _compile_field(
    name: str, spec: ValueSpec, path: tuple[PathPart, ...], required: bool
) -> CompiledField:
    convert, unit = compile_value(spec)
    tags = MappingProxyType(dict(spec.tags))
    return CompiledField(name, spec.metric, unit, tags, convert, path, required)


def _compile_json_field(spec: JsonField) -> CompiledField:
    path = _split_path(spec.path)
    name = ".".join(p.text if isinstance(p, KeyPattern) else str(p) for p in path)
    convert, unit = compile_value(spec)
    by_unit = {
        text: compile_value(spec.model_copy(update={"unit": sender_unit}))[0]
        for text, sender_unit in spec.units.items()
    }
    return CompiledField(
        name,
        spec.metric,
        unit,
        MappingProxyType(dict(spec.tags)),
        convert,
        path,
        spec.required,
        key_tag=spec.key_tag,
        skip_keys=frozenset(spec.skip_keys),
        unit_path=_split_path(spec.unit_path) if spec.unit_path is not None else None,
        by_unit=MappingProxyType(by_unit),
    )


def _convert_into(
    out: Decoded, compiled: CompiledField, raw: object, key: str, document: object
) -> None:
    name = compiled.name.replace("*", key) if key else compiled.name
    convert = compiled.convert
    if compiled.unit_path is not None:
        said = lookup(document, compiled.unit_path)
        if said is not None:
            unit_text = canonical_text(said) if not isinstance(said, dict | list) else "?"
            found = compiled.by_unit.get(unit_text)
            if found is None:
                detail = f"unit {unit_text[:20]!r} is not one of {sorted(compiled.by_unit)}"
                out.problems.append((name, FieldError("unknown_unit", detail)))
                return
            convert = found
    try:
        out.values.append((compiled, convert(raw), compiled.tags_for(key)))
    except FieldError as exc:
        out.problems.append((name, exc))


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


def decode_availability(
    payload: bytes, online: frozenset[str], offline: frozenset[str], path: str | None = None
) -> bool:
    """True for an online payload, False for offline; PayloadError otherwise. With `path`,
    a JSON object payload is read at that field ({"state": "online"})."""
    raw: object = payload.decode("utf-8", "replace")
    if path is not None and payload.lstrip().startswith(b"{"):
        raw = lookup(_load_json(payload), _split_path(path))
        if raw is None or isinstance(raw, dict | list):
            raise PayloadError("bad_availability", f"no status at {path!r}")
    text = canonical_text(raw)
    if text in online:
        return True
    if text in offline:
        return False
    raise PayloadError("bad_availability", f"{text[:40]!r} is neither online nor offline")
