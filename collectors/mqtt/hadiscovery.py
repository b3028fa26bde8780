"""Home Assistant MQTT discovery (ESPHome, Tasmota, Zigbee2MQTT... publish it): entities
announced at run time become routes.

A topic map entry with `discovery:` matches the retained config topics
(`homeassistant/<component>/[<node_id>/]<object_id>/config`). Each config names the
entity's state topic, how to read it (`value_template`: the simple
`{{ value_json.x }}` / `{{ value }}` forms) and its availability topic; this module
turns a config into routes for the inventory device whose `mqtt.name` is the node id
(or, for configs without one, the config's `device.name` or an identifier), and the
collector subscribes to the new topics. Configs of devices outside the inventory and
entities the map does not read (uptime, Wi-Fi signal...) are ignored: announcements
are not data. An empty config retracts the entity.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from collectors.mqtt.decode import PayloadDecoder
from collectors.mqtt.pattern import TopicPattern
from collectors.mqtt.routing import Handler, device_mqtt_name
from collectors.mqtt.topicmap import (
    MQTT_NAME,
    Discovery,
    DiscoveryEntity,
    JsonField,
    JsonPayload,
    PlainPayload,
    TopicMap,
    ValueSpec,
    canonical_text,
)
from dcim.inventory import PlacedDevice

log = logging.getLogger(__name__)

#: Entities one device may announce: configs are data from the network, and each one
#: costs a subscription.
MAX_ENTITIES_PER_DEVICE = 256

#: Home Assistant's abbreviated config keys (its MQTT discovery documentation), for the
#: keys read here; ESPHome publishes the short forms.
ABBREVIATIONS = {
    "stat_t": "state_topic",
    "dev_cla": "device_class",
    "unit_of_meas": "unit_of_measurement",
    "val_tpl": "value_template",
    "avty_t": "availability_topic",
    "avty": "availability",
    "avty_tpl": "availability_template",
    "pl_avail": "payload_available",
    "pl_not_avail": "payload_not_available",
    "pl_on": "payload_on",
    "pl_off": "payload_off",
    "obj_id": "object_id",
    "uniq_id": "unique_id",
    "dev": "device",
    "t": "topic",
    "ids": "identifiers",
}

_PATH_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*(?:'([^']*)'|\"([^\"]*)\"|(\d+))\s*\]")
#: Filters that do not change which value is read (a rounding is only less precise).
_HARMLESS_FILTER = re.compile(r"\|\s*(?:float|int|round|default)(?:\([^)]*\))?\s*")
_TEMPLATE = re.compile(r"^\{\{\s*(value_json|value)\s*(.*?)\s*\}\}$", re.DOTALL)


class TemplateError(ValueError):
    """A value_template beyond the simple forms read here."""


def template_path(template: str | None) -> list[str | int] | None:
    """`{{ value_json.a['b'] }}` -> ["a", "b"]; `{{ value }}` (or none) -> None (the whole
    payload); anything else raises TemplateError."""
    if template is None:
        return None
    found = _TEMPLATE.match(template.strip())
    if found is None:
        raise TemplateError(f"unsupported value_template {template[:60]!r}")
    root, rest = found.groups()
    steps: list[str | int] = []
    position = 0
    while position < len(rest):
        step = _PATH_STEP.match(rest, position)
        if step is None:
            break
        name, single, double, index = step.groups()
        steps.append(int(index) if index is not None else (name or single or double or ""))
        position = step.end()
    tail = rest[position:].strip()
    while tail:
        harmless = _HARMLESS_FILTER.match(tail)
        if harmless is None:
            raise TemplateError(f"unsupported value_template {template[:60]!r}")
        tail = tail[harmless.end() :].strip()
    if root == "value":
        if steps:
            raise TemplateError(f"unsupported value_template {template[:60]!r}")
        return None
    if not steps:
        raise TemplateError(f"value_template reads no field: {template[:60]!r}")
    return steps


def expand(config: Mapping[str, object]) -> dict[str, object]:
    """Long key names, and topics with the `~` base substituted."""
    out = {ABBREVIATIONS.get(key, key): value for key, value in config.items()}
    base = out.get("~")
    if isinstance(base, str):
        for key, value in list(out.items()):
            if key.endswith("_topic") or key == "topic":
                if isinstance(value, str) and value.startswith("~"):
                    out[key] = base + value[1:]
                elif isinstance(value, str) and value.endswith("~"):
                    out[key] = value[:-1] + base
    return out


@dataclass(frozen=True, slots=True)
class Entity:
    """One entity the monitor reads: its device, state topic and how to read it."""

    device: PlacedDevice
    state_topic: str
    spec: JsonField | ValueSpec
    json: bool
    availability: tuple[tuple[str, Handler], ...]


@dataclass(slots=True)
class Changes:
    """What one config message changed: routes to add or remove, topics to subscribe,
    and problems (device id, reason, field, detail) to count."""

    add: list[tuple[str, Handler, PlacedDevice]] = field(default_factory=list)
    remove: list[tuple[str, PlacedDevice]] = field(default_factory=list)
    subscribe: list[str] = field(default_factory=list)
    problems: list[tuple[str, str, str, str]] = field(default_factory=list)


@dataclass(slots=True)
class _Source:
    pattern: TopicPattern
    spec: Discovery
    devices: dict[str, PlacedDevice]
    kinds: dict[tuple[str, str], DiscoveryEntity]


class HaDiscovery:
    """Discovery entries of the inventory's topic maps, and the entities learnt so far."""

    def __init__(self, devices: Sequence[PlacedDevice], maps: Mapping[str, TopicMap]) -> None:
        self._sources: list[_Source] = []
        by_entry: dict[tuple[str, int], _Source] = {}
        for placed in devices:
            topic_map = maps[placed.device.profile]
            for position, entry in enumerate(topic_map.topics):
                if entry.discovery is None:
                    continue
                source = by_entry.get((topic_map.name, position))
                if source is None:
                    kinds: dict[tuple[str, str], DiscoveryEntity] = {
                        (e.component, e.device_class): e for e in entry.discovery.entities
                    }
                    source = _Source(entry.topic_pattern, entry.discovery, {}, kinds)
                    by_entry[(topic_map.name, position)] = source
                    self._sources.append(source)
                source.devices[device_mqtt_name(placed)] = placed
        #: config topic -> the entity it announced
        self._entities: dict[str, Entity] = {}
        self._subscribed: set[str] = set()

    @property
    def filters(self) -> list[str]:
        return list(dict.fromkeys(s.pattern.filter for s in self._sources))

    def matches(self, topic: str) -> bool:
        return any(s.pattern.match(topic) is not None for s in self._sources)

    def learnt(self, topic: str) -> bool:
        """A topic subscribed for an announced entity (perhaps retracted since)."""
        return topic in self._subscribed

    def handle(self, topic: str, payload: bytes) -> Changes:
        changes = Changes()
        for source in self._sources:
            captured = source.pattern.match(topic)
            if captured is not None:
                self._config(source, topic, captured, payload, changes)
                break
        return changes

    # --- one config message --------------------------------------------------------

    def _config(
        self,
        source: _Source,
        topic: str,
        captured: dict[str, str],
        payload: bytes,
        changes: Changes,
    ) -> None:
        old = self._entities.pop(topic, None)
        if not payload.strip():  # retracted
            if old is not None:
                self._rebuild(old.device, old.state_topic, changes)
            return
        try:
            config = json.loads(payload)
        except ValueError:
            config = None
        if not isinstance(config, dict):
            where = old.device.device.id if old else "mqtt"
            changes.problems.append(
                (where, "bad_json", "", "discovery config is not a JSON object")
            )
            return
        config = expand(config)
        placed = self._device(source, captured, config)
        if placed is None:
            log.debug("discovery %s: no inventory device for it, ignored", topic)
            return
        component = captured.get("component") or topic.split("/")[1]
        kind = source.kinds.get((component, str(config.get("device_class", ""))))
        if kind is None:
            log.debug("discovery %s: %s not read by the topic map", topic, component)
            if old is not None:
                self._rebuild(old.device, old.state_topic, changes)
            return
        object_id = captured.get("object_id") or str(config.get("object_id", "entity"))
        announced = sum(1 for e in self._entities.values() if e.device is placed)
        if announced >= MAX_ENTITIES_PER_DEVICE:
            detail = f"more than {MAX_ENTITIES_PER_DEVICE} entities announced"
            changes.problems.append((placed.device.id, "too_many_entities", object_id, detail))
            return
        try:
            entity = self._entity(source, kind, placed, object_id, config)
        except (TemplateError, ValueError) as exc:
            detail = _short(exc)
            reason = "unsupported_template" if isinstance(exc, TemplateError) else "bad_config"
            changes.problems.append((placed.device.id, reason, object_id, detail))
            return
        self._entities[topic] = entity
        if old is not None and (old.device, old.state_topic) != (placed, entity.state_topic):
            self._rebuild(old.device, old.state_topic, changes)
        self._rebuild(placed, entity.state_topic, changes)
        for avail_topic, handler in entity.availability:
            changes.add.append((avail_topic, handler, placed))
            self._want(avail_topic, changes)

    def _device(
        self, source: _Source, captured: dict[str, str], config: dict[str, object]
    ) -> PlacedDevice | None:
        node = captured.get(MQTT_NAME)
        if node is not None:
            return source.devices.get(node)
        device = config.get("device")
        if isinstance(device, dict):
            device = {ABBREVIATIONS.get(k, k): v for k, v in device.items()}
            names = device.get("identifiers")
            candidates = [device.get("name"), *(names if isinstance(names, list) else [names])]
            for name in candidates:
                if isinstance(name, str) and name in source.devices:
                    return source.devices[name]
        return None

    def _entity(
        self,
        source: _Source,
        kind: DiscoveryEntity,
        placed: PlacedDevice,
        object_id: str,
        config: dict[str, object],
    ) -> Entity:
        state_topic = config.get("state_topic")
        if not isinstance(state_topic, str) or not state_topic:
            raise ValueError("config has no state_topic")
        _plain_topic(state_topic, "state_topic")
        availability = _availability(config)
        for topic, _ in availability:
            _plain_topic(topic, "availability topic")
        path = template_path(_text_or_none(config.get("value_template")))
        spec: dict[str, object] = kind.model_dump(exclude={"component", "device_class"})
        spec["tags"] = {**kind.tags, source.spec.entity_tag: object_id}
        said_unit = config.get("unit_of_measurement")
        if isinstance(said_unit, str) and said_unit:
            if said_unit not in source.spec.units:
                raise ValueError(f"unit {said_unit!r} is not in the topic map's units")
            spec["unit"] = source.spec.units[said_unit]
        if kind.component == "binary_sensor":
            spec["true_values"] = [canonical_text(config.get("payload_on", "ON"))]
            spec["false_values"] = [canonical_text(config.get("payload_off", "OFF"))]
        try:
            value: JsonField | ValueSpec = (
                JsonField.model_validate({**spec, "path": path})
                if path is not None
                else ValueSpec.model_validate(spec)
            )
        except ValidationError as exc:
            raise ValueError(_short(exc)) from None
        return Entity(placed, state_topic, value, path is not None, availability)

    def _rebuild(self, placed: PlacedDevice, state_topic: str, changes: Changes) -> None:
        """One decoder for all entities of a device on one state topic (Zigbee2MQTT puts
        several on one JSON topic), or no route when none is left."""
        entities = [
            e
            for e in self._entities.values()
            if e.device is placed and e.state_topic == state_topic
        ]
        if not entities:
            changes.remove.append((state_topic, placed))
            return
        fields = [e.spec for e in entities if e.json and isinstance(e.spec, JsonField)]
        plain = [e.spec for e in entities if not e.json]
        if fields and plain:
            changes.problems.append(
                (placed.device.id, "mixed_payloads", state_topic, "JSON and plain entities")
            )
        payload = (
            JsonPayload(format="json", fields=fields)
            if fields
            else PlainPayload(format="plain", value=plain[-1])
        )
        changes.add.append((state_topic, Handler(PayloadDecoder(payload)), placed))
        self._want(state_topic, changes)

    def _want(self, topic: str, changes: Changes) -> None:
        if topic not in self._subscribed:
            self._subscribed.add(topic)
            changes.subscribe.append(topic)


def _availability(config: dict[str, object]) -> tuple[tuple[str, Handler], ...]:
    online = canonical_text(config.get("payload_available", "online"))
    offline = canonical_text(config.get("payload_not_available", "offline"))
    status_path = _status_path(config.get("availability_template"))
    found: list[tuple[str, Handler]] = []
    topic = config.get("availability_topic")
    if isinstance(topic, str) and topic:
        found.append((topic, Handler(None, frozenset([online]), frozenset([offline]), status_path)))
    listed = config.get("availability")
    for item in listed if isinstance(listed, list) else []:
        if not isinstance(item, dict):
            continue
        long = {ABBREVIATIONS.get(k, k): v for k, v in item.items()}
        item_topic = long.get("topic")
        if isinstance(item_topic, str) and item_topic:
            on = canonical_text(long.get("payload_available", online))
            off = canonical_text(long.get("payload_not_available", offline))
            path = _status_path(long.get("value_template")) or status_path
            found.append((item_topic, Handler(None, frozenset([on]), frozenset([off]), path)))
    return tuple(found)


def _plain_topic(topic: str, what: str) -> None:
    """A topic to subscribe to for one entity: never a filter (`#` would subscribe the
    monitor to everything on the broker)."""
    try:
        pattern = TopicPattern.parse(topic)
    except ValueError:
        raise ValueError(f"{what} {topic[:80]!r} is not a topic") from None
    if not pattern.is_literal or "+" in topic or "#" in topic:
        raise ValueError(f"{what} {topic[:80]!r} is a wildcard filter, not a topic")


def _status_path(template: object) -> str | None:
    if not isinstance(template, str):
        return None
    try:
        path = template_path(template)
    except TemplateError:
        return None
    return ".".join(str(p) for p in path) if path else None


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(str(e["msg"]) for e in exc.errors())[:200]
    return str(exc)[:200]
