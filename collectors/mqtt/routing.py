"""Which inventory device (and which decoder) a message topic belongs to.

Built once from the devices with an `mqtt` section and their topic maps. Literal
topics (a device's explicit `mqtt.topic`) are a dict lookup; capture patterns
match the topic, then look the captured values up in an index of devices keyed
by the tags those captures name, so routing stays O(patterns), not O(devices).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from collectors.mqtt.decode import PayloadDecoder
from collectors.mqtt.pattern import TopicPattern
from collectors.mqtt.topicmap import MQTT_NAME, Availability, TopicEntry, TopicMap
from dcim.errors import ConfigError
from dcim.inventory import PlacedDevice

EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Handler:
    """What to do with a message: decode a payload, or read an availability status."""

    decoder: PayloadDecoder | None
    online: frozenset[str] = frozenset()
    offline: frozenset[str] = frozenset()
    #: JSON field of an availability object payload ({"state": "online"}).
    status_path: str | None = None

    @classmethod
    def availability(cls, spec: Availability) -> Handler:
        return cls(None, frozenset(spec.online), frozenset(spec.offline), spec.path)


@dataclass(frozen=True, slots=True)
class Route:
    device: PlacedDevice
    handler: Handler
    #: Tags taken from the topic (captures listed in `reading_tags`).
    tags: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Miss:
    """No device for this topic; `reason` is unknown_device or unknown_topic."""

    reason: str
    detail: str


@dataclass(slots=True)
class _Rule:
    pattern: TopicPattern
    handler: Handler
    #: (capture, device tag) pairs that pick the device; empty with a fixed device.
    keys: tuple[tuple[str, str], ...]
    reading_captures: tuple[str, ...]
    fixed: PlacedDevice | None = None
    index: dict[tuple[str, ...], PlacedDevice] = field(default_factory=dict)


def device_mqtt_name(placed: PlacedDevice) -> str:
    """The name the device publishes under (Tasmota topic, Shelly id, Zigbee2MQTT friendly
    name, ESPHome node, Sparkplug group/edge[/device]): `mqtt.name`, else its id."""
    mqtt = placed.device.mqtt
    return (mqtt.name if mqtt is not None and mqtt.name else None) or placed.device.id


def _device_value(placed: PlacedDevice, tag: str) -> str | None:
    if tag == "device":
        return placed.device.id
    if tag == MQTT_NAME:
        return device_mqtt_name(placed)
    return placed.tags.get(tag)


class Router:
    def __init__(self, devices: Sequence[PlacedDevice], maps: Mapping[str, TopicMap]) -> None:
        self._exact: dict[str, list[_Rule]] = {}
        self._rules: list[_Rule] = []
        handlers: dict[tuple[str, int], Handler] = {}

        def handler_of(profile: str, position: int, entry: TopicEntry) -> Handler:
            key = (profile, position)
            if key not in handlers:
                if entry.payload is not None:
                    handlers[key] = Handler(PayloadDecoder(entry.payload))
                else:
                    assert entry.availability is not None  # validated: one of the two
                    handlers[key] = Handler.availability(entry.availability)
            return handlers[key]

        shared: dict[tuple[str, int], _Rule] = {}
        for placed in devices:
            mqtt = placed.device.mqtt
            if mqtt is None:
                continue
            topic_map = maps[placed.device.profile]
            data_routes = 0
            for position, entry in enumerate(topic_map.topics):
                if entry.discovery is not None or entry.sparkplug is not None:
                    data_routes += (
                        1  # resolved at run time (collectors/mqtt/hadiscovery.py, sparkplug/)
                    )
                    continue
                is_data = entry.payload is not None
                explicit = mqtt.topic if is_data else mqtt.availability_topic
                if explicit is not None:
                    continue  # the device's own topic replaces this entry (below)
                rule = shared.get((topic_map.name, position))
                if rule is None:
                    rule = shared[(topic_map.name, position)] = _Rule(
                        entry.topic_pattern,
                        handler_of(topic_map.name, position, entry),
                        tuple(entry.device_captures().items()),
                        tuple(entry.reading_tags),
                    )
                    self._rules.append(rule)
                if self._index(rule, placed) and is_data:
                    data_routes += 1
            if mqtt.topic is not None:
                entry_pos = _entry_for(topic_map, mqtt.topic)
                handler = handler_of(topic_map.name, entry_pos, topic_map.topics[entry_pos])
                self._add_fixed(mqtt.topic, handler, placed)
                data_routes += 1
            if mqtt.availability_topic is not None:
                spec = next(
                    (e.availability for e in topic_map.topics if e.availability), Availability()
                )
                self._add_fixed(mqtt.availability_topic, Handler.availability(spec), placed)
            if not data_routes:
                raise ConfigError(
                    placed.device.id,
                    [
                        f"no topic of MQTT map {topic_map.name} resolves to this device "
                        "(its tags lack a capture's value); set mqtt.topic"
                    ],
                )
        self._rules = [rule for rule in self._rules if rule.index or rule.fixed]

    def _index(self, rule: _Rule, placed: PlacedDevice) -> bool:
        values = tuple(_device_value(placed, tag) for _, tag in rule.keys)
        if any(value is None for value in values):
            return False
        key = tuple(value for value in values if value is not None)
        other = rule.index.get(key)
        if other is not None and other is not placed:
            raise ConfigError(
                placed.device.id,
                [
                    f"topic pattern {rule.pattern.text} resolves to both {other.device.id} "
                    f"and {placed.device.id}; give one of them mqtt.topic or a distinguishing tag"
                ],
            )
        rule.index[key] = placed
        return True

    def add_fixed(self, topic: str, handler: Handler, placed: PlacedDevice) -> None:
        """Route `topic` to `placed` (a topic learnt at run time replaces its earlier route)."""
        self.remove_fixed(topic, placed)
        self._add_fixed(topic, handler, placed)

    def remove_fixed(self, topic: str, placed: PlacedDevice) -> None:
        rules = [r for r in self._exact.get(topic, []) if r.fixed is not placed]
        if rules:
            self._exact[topic] = rules
        else:
            self._exact.pop(topic, None)
        self._rules = [
            r for r in self._rules if not (r.fixed is placed and r.pattern.text == topic)
        ]

    def _add_fixed(self, topic: str, handler: Handler, placed: PlacedDevice) -> None:
        pattern = TopicPattern.parse(topic)
        rule = _Rule(pattern, handler, (), (), fixed=placed)
        if pattern.is_literal:
            self._exact.setdefault(topic, []).append(rule)
        else:
            self._rules.insert(0, rule)

    @property
    def filters(self) -> list[str]:
        """Every MQTT subscription filter the devices need, without duplicates."""
        found = [*self._exact, *(rule.pattern.filter for rule in self._rules)]
        return list(dict.fromkeys(found))

    def route(self, topic: str) -> Route | Miss:
        for rule in self._exact.get(topic, ()):
            assert rule.fixed is not None
            return Route(rule.fixed, rule.handler, EMPTY)
        matched = False
        for rule in self._rules:
            captured = rule.pattern.match(topic)
            if captured is None:
                continue
            matched = True
            placed = rule.fixed or rule.index.get(tuple(captured[c] for c, _ in rule.keys))
            if placed is not None:
                tags = {name: captured[name] for name in rule.reading_captures}
                return Route(placed, rule.handler, MappingProxyType(tags) if tags else EMPTY)
        if matched:
            return Miss("unknown_device", "no inventory device matches the topic's captures")
        return Miss("unknown_topic", "no topic map entry matches")


def _entry_for(topic_map: TopicMap, topic: str) -> int:
    """The payload entry decoding a device's explicit topic: the first whose pattern matches
    it, else the map's first payload entry."""
    payload_entries = [i for i, e in enumerate(topic_map.topics) if e.payload is not None]
    if not payload_entries:
        raise ConfigError(topic_map.name, ["the topic map has no payload entry"])
    for position in payload_entries:
        if topic_map.topics[position].topic_pattern.match(topic) is not None:
            return position
    return payload_entries[0]
