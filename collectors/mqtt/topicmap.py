"""Topic maps: data files saying which topics carry which device's values, and how.

A topic map (collectors/profiles/mqtt/<name>.yaml) is what a profile is for SNMP:
devices name it in `profile`. Each entry has a topic pattern with named captures
that pick the inventory device (captures compared with the device's placement
and tags), and either a payload decoder (JSON field paths or a plain value) or
an availability mapping (retained online/offline, last will). Validated once at
load, with the file's line in every message.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Literal

from pydantic import (
    BeforeValidator,
    Field,
    field_validator,
    model_validator,
)

from collectors.mqtt.pattern import PatternError, TopicPattern
from collectors.shipped import available_profiles, on_profiles_changed, read_profile
from dcim.configmodel import Strict
from dcim.errors import ProfileError
from dcim.vocabulary import MetricSpec, load_vocabulary
from dcim.yamlsource import YamlSourceError, validate_yaml

#: (sender unit, vocabulary unit) -> (factor, offset): vocabulary = sender * factor + offset.
UNIT_CONVERSIONS: dict[tuple[str, str], tuple[float, float]] = {
    ("degF", "degC"): (5 / 9, -32 * 5 / 9),
    ("K", "degC"): (1.0, -273.15),
    ("kW", "W"): (1000.0, 0.0),
    ("MW", "W"): (1e6, 0.0),
    ("kVA", "VA"): (1000.0, 0.0),
    ("Wh", "kWh"): (0.001, 0.0),
    ("MWh", "kWh"): (1000.0, 0.0),
    ("mA", "A"): (0.001, 0.0),
    ("kV", "V"): (1000.0, 0.0),
    ("ms", "s"): (0.001, 0.0),
    ("min", "s"): (60.0, 0.0),
    ("h", "s"): (3600.0, 0.0),
    ("ratio", "%"): (100.0, 0.0),
    ("ft/min", "m/s"): (0.00508, 0.0),
    ("cfm", "m3/h"): (1.69901, 0.0),
}

#: Payload texts that mean true / false when a bool field gives no lists of its own.
DEFAULT_TRUE = ("true", "1", "on", "yes", "open", "alarm", "detected", "wet")
DEFAULT_FALSE = ("false", "0", "off", "no", "closed", "normal", "clear", "dry")


def canonical_text(raw: object) -> str:
    """One spelling per payload value, so YAML keys and JSON values compare: 1, 1.0 -> "1"."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    if isinstance(raw, str):
        return raw.strip().lower()
    return str(raw)


def _canonical_keys(raw: object) -> object:
    if isinstance(raw, dict):
        return {canonical_text(key): value for key, value in raw.items()}
    return raw


def _canonical_items(raw: object) -> object:
    if isinstance(raw, list):
        return [canonical_text(item) for item in raw]
    return raw


def _metric_spec(metric: str) -> MetricSpec:
    try:
        return load_vocabulary().get(metric)
    except ProfileError as exc:
        raise ValueError(str(exc)) from None  # pydantic reports it with the path


class ValueSpec(Strict):
    """How one raw value (a JSON field, or a whole plain payload) becomes a metric value."""

    metric: str
    #: Default follows the vocabulary: float/int -> number, bool -> bool, enum -> enum.
    type: Literal["number", "bool", "enum", "string"] | None = None
    #: The unit the sender uses; converted to the vocabulary's unit.
    unit: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    #: Payload value (as text: 1, "ALERT", true) -> vocabulary enum value.
    enum: Annotated[dict[str, str], BeforeValidator(_canonical_keys)] = Field(default_factory=dict)
    true_values: Annotated[list[str] | None, BeforeValidator(_canonical_items)] = None
    false_values: Annotated[list[str] | None, BeforeValidator(_canonical_items)] = None
    valid_range: tuple[float, float] | None = None
    #: Extra reading tags, e.g. {position: inlet}.
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("metric")
    @classmethod
    def _in_vocabulary(cls, metric: str) -> str:
        _metric_spec(metric)
        return metric

    @model_validator(mode="after")
    def _consistent(self) -> ValueSpec:
        spec = _metric_spec(self.metric)
        kind = self.effective_type(spec)
        if kind == "enum":
            if not self.enum and not spec.values:
                msg = f"{self.metric} is an enum: give `enum` (payload value -> name)"
                raise ValueError(msg)
            bad = sorted(set(self.enum.values()) - set(spec.values))
            if bad:
                msg = (
                    f"enum values {bad} are not values of {self.metric} ({', '.join(spec.values)})"
                )
                raise ValueError(msg)
        convertible = (self.unit, spec.unit) in UNIT_CONVERSIONS
        if self.unit is not None and self.unit != spec.unit and not convertible:
            msg = f"no conversion from unit {self.unit!r} to {spec.unit!r} ({self.metric})"
            raise ValueError(msg)
        if self.valid_range is not None and self.valid_range[0] > self.valid_range[1]:
            msg = "valid_range must be [low, high]"
            raise ValueError(msg)
        return self

    def effective_type(self, spec: MetricSpec | None = None) -> str:
        if self.type is not None:
            return self.type
        spec = spec or _metric_spec(self.metric)
        return {"float": "number", "int": "number"}.get(spec.type, spec.type)


class JsonField(ValueSpec):
    #: Where the value is: "temp.inlet", "probes.0.t", or a list of keys for keys with dots.
    path: str | list[str | int]
    #: A present field is required; an absent (or null) one is an error when true.
    required: bool = False


class TimestampSpec(Strict):
    """Where the sender's own timestamp is; `format` auto tells epoch s/ms/us/ns by size."""

    path: str | list[str | int] | None = None
    #: MQTT 5 user property carrying the timestamp (e.g. "ts").
    user_property: str | None = None
    format: Literal["auto", "epoch_s", "epoch_ms", "epoch_us", "epoch_ns", "iso8601"] = "auto"

    @model_validator(mode="after")
    def _somewhere(self) -> TimestampSpec:
        if self.path is None and self.user_property is None:
            msg = "timestamp needs path (payload field) or user_property (MQTT 5)"
            raise ValueError(msg)
        return self


class JsonPayload(Strict):
    format: Literal["json"]
    fields: list[JsonField] = Field(min_length=1)
    timestamp: TimestampSpec | None = None


class PlainPayload(Strict):
    """The whole payload is one value: `23.5`, `1`, `open`."""

    format: Literal["plain"]
    value: ValueSpec
    timestamp: TimestampSpec | None = None

    @model_validator(mode="after")
    def _no_payload_timestamp(self) -> PlainPayload:
        if self.timestamp is not None and self.timestamp.path is not None:
            msg = "a plain payload has no fields: use timestamp.user_property"
            raise ValueError(msg)
        return self


Payload = Annotated[JsonPayload | PlainPayload, Field(discriminator="format")]


class Availability(Strict):
    """Retained status / last-will payloads and what they mean for device.up."""

    online: Annotated[list[str], BeforeValidator(_canonical_items)] = Field(
        default_factory=lambda: ["online"]
    )
    offline: Annotated[list[str], BeforeValidator(_canonical_items)] = Field(
        default_factory=lambda: ["offline"]
    )


class TopicEntry(Strict):
    pattern: str
    #: Capture -> device tag it must equal (site, room, row, rack, device or any
    #: inventory tag). Captures not listed match the tag of their own name.
    match: dict[str, str] = Field(default_factory=dict)
    #: Captures that become reading tags instead of picking the device.
    reading_tags: list[str] = Field(default_factory=list)
    payload: Payload | None = None
    availability: Availability | None = None

    @field_validator("pattern")
    @classmethod
    def _valid_pattern(cls, pattern: str) -> str:
        try:
            TopicPattern.parse(pattern)
        except PatternError as exc:
            raise ValueError(str(exc)) from None
        return pattern

    @model_validator(mode="after")
    def _one_kind(self) -> TopicEntry:
        if (self.payload is None) == (self.availability is None):
            msg = "an entry has exactly one of payload or availability"
            raise ValueError(msg)
        captures = set(TopicPattern.parse(self.pattern).captures)
        unknown = sorted((set(self.match) | set(self.reading_tags)) - captures)
        if unknown:
            msg = f"{unknown} are not captures of {self.pattern!r}"
            raise ValueError(msg)
        both = sorted(set(self.match) & set(self.reading_tags))
        if both:
            msg = f"captures {both} cannot both match the device and tag readings"
            raise ValueError(msg)
        return self

    @property
    def topic_pattern(self) -> TopicPattern:
        return TopicPattern.parse(self.pattern)

    def device_captures(self) -> dict[str, str]:
        """Capture name -> device tag it is compared with."""
        skip = set(self.reading_tags)
        return {
            name: self.match.get(name, name)
            for name in self.topic_pattern.captures
            if name not in skip
        }


class TopicMap(Strict):
    name: str
    kind: Literal["ups", "pdu", "crac", "sensor", "meter", "generator", "battery"]
    description: str = ""
    source: str = ""
    topics: list[TopicEntry] = Field(min_length=1)


def parse_topic_map(text: str, source: str) -> TopicMap:
    """Validate a topic map's text; ProfileError lists each problem with its line."""
    try:
        # the payload union puts its discriminator value into the location
        return validate_yaml(text, source, TopicMap.model_validate, drop=("json", "plain"))
    except YamlSourceError as exc:
        raise ProfileError(str(exc)) from None


@cache
def load_topic_map(name: str) -> TopicMap:
    """The shipped topic map called `name` (profiles/mqtt/<name>.yaml)."""
    return parse_topic_map(*read_profile("mqtt", name, "MQTT topic map"))


def available_topic_maps() -> list[str]:
    return available_profiles("mqtt")


on_profiles_changed(load_topic_map.cache_clear)
