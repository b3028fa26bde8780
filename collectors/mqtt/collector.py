"""MqttCollector: one broker subscription feeding readings for every MQTT device.

A StreamCollector: `run(emit)` until cancelled. Each message is routed to its
device, decoded, and emitted at once, stamped with the sender's time when it
gives one. Bad messages and fields are counted per device/topic and reason and
logged once per device, reason and field; they never stop the subscription or
cost the good fields beside them. Devices silent beyond `stale_after_s`, or
reported offline by their availability topic (retained status, last will),
get `device.up = False`, and `True` again when they speak. Home Assistant discovery
(collectors/mqtt/hadiscovery.py) adds routes and subscriptions at run time; Sparkplug B
topics go to their edge-node sessions (collectors/mqtt/sparkplug/).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collectors.mqtt.client import InMessage, MqttSubscriber
from collectors.mqtt.decode import FieldError, decode_availability
from collectors.mqtt.hadiscovery import HaDiscovery
from collectors.mqtt.routing import EMPTY, Miss, Router
from collectors.mqtt.sparkplug.session import SparkplugSessions
from collectors.mqtt.topicmap import TopicMap, load_topic_map
from dcim.errors import ConfigError
from dcim.inventory import MqttBrokerConfig, PlacedDevice
from dcim.mqttclient import parse_broker_url
from dcim.reading import Reading

log = logging.getLogger(__name__)

Emit = Callable[[Sequence[Reading]], Awaitable[None] | None]

#: Device id of the collector's own readings (broker connection, unroutable messages).
BROKER_DEVICE_ID = "mqtt"
#: Bounds on remembered keys, so a flood of odd topics cannot grow memory without end.
MAX_TRACKED_KEYS = 10_000


@dataclass(slots=True)
class _DeviceState:
    placed: PlacedDevice
    stale_after_s: float
    last_seen: float
    #: The site's time zone: what a sender's local time without an offset means.
    zone: tzinfo = UTC
    up: bool | None = None
    #: (id of field tags, topic tags) -> (those field tags, merged reading tags), built
    #: once per combination; holding the field tags keeps their id from being reused
    tag_cache: dict[
        tuple[int, tuple[tuple[str, str], ...]], tuple[Mapping[str, str], Mapping[str, str]]
    ] = field(default_factory=dict)


class MqttCollector:
    """Subscribes once for all MQTT devices of the inventory."""

    def __init__(
        self,
        broker: MqttBrokerConfig,
        devices: Sequence[PlacedDevice],
        *,
        topic_maps: Mapping[str, TopicMap] | None = None,
        client_id: str | None = None,
        stale_check_s: float | None = None,
        timezones: Mapping[str, str] | None = None,
    ) -> None:
        """`timezones`: site id -> IANA zone (`sites[].timezone`), for senders that
        stamp local time without an offset (Tasmota)."""
        mqtt_devices = [d for d in devices if d.device.mqtt is not None]
        maps = dict(topic_maps or {})
        for placed in mqtt_devices:
            name = placed.device.profile
            if name not in maps:
                maps[name] = load_topic_map(name)
            if maps[name].kind != placed.device.kind.value:
                raise ConfigError(
                    placed.device.id,
                    [
                        f"topic map {name} is for kind {maps[name].kind}, device is {placed.device.kind.value}"
                    ],
                )
        self.router = Router(mqtt_devices, maps)
        self.discovery = HaDiscovery(mqtt_devices, maps)
        self.sparkplug = SparkplugSessions(mqtt_devices, maps)
        now = time.monotonic()
        zones = {site: _zone(name) for site, name in (timezones or {}).items()}
        self._devices = {
            d.device.id: _DeviceState(
                d,
                d.device.mqtt.stale_after_s,  # type: ignore[union-attr]
                now,
                zones.get(d.site, UTC),
            )
            for d in mqtt_devices
        }
        filters = [*self.router.filters, *self.discovery.filters, *self.sparkplug.filters]
        self.subscriber = MqttSubscriber(
            broker, filters, client_id=client_id, on_state=self._broker_state
        )
        self._new_filters: list[str] = []
        shortest = min((s.stale_after_s for s in self._devices.values()), default=60.0)
        self._tick_s = stale_check_s or min(max(shortest / 4, 0.05), 5.0)
        host = parse_broker_url(broker.url)
        self._broker_tags = MappingProxyType(
            {"device": BROKER_DEVICE_ID, "broker": f"{host.host}:{host.port}"}
        )
        #: Messages handled, and dropped messages/fields by (topic, reason).
        self.messages = 0
        self.errors_by_topic: Counter[tuple[str, str]] = Counter()
        self._errors_by_device: Counter[tuple[str, str]] = Counter()
        self._reported_errors: dict[tuple[str, str], int] = {}
        self._logged: set[tuple[str, str, str]] = set()
        self._pending: list[Reading] = []
        self._emit: Emit | None = None
        self._kick = asyncio.Event()

    # --- running -------------------------------------------------------------

    async def run(self, emit: Emit) -> None:
        """Receive and emit until cancelled."""
        self._emit = emit
        for state in self._devices.values():
            state.last_seen = time.monotonic()  # silence counts from now, not from __init__
        watchdog = asyncio.create_task(self._watch_stale(), name="mqtt-stale-watch")
        try:
            await self.subscriber.run(self._on_message)
        finally:
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)
            self._emit = None

    async def _flush(self) -> None:
        if not self._pending or self._emit is None:
            return
        batch, self._pending = self._pending, []
        result = self._emit(batch)
        if inspect.isawaitable(result):
            await result

    async def _watch_stale(self) -> None:
        while True:
            # a broker state change wakes us early, so its device.up goes out at once
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._tick_s):
                    await self._kick.wait()
            self._kick.clear()
            self.check_stale(time.monotonic())
            self._error_readings()
            await self._flush()

    # --- per message ---------------------------------------------------------

    async def _on_message(self, message: InMessage) -> None:
        self.handle(message)
        await self._flush()
        if self._new_filters:
            filters, self._new_filters = self._new_filters, []
            await self.subscriber.add_filters(filters)

    def handle(self, message: InMessage) -> None:
        """Route, decode and queue the readings of one message (never raises for bad data)."""
        self.messages += 1
        if self.sparkplug.matches(message.topic):
            self._sparkplug(message)
            return
        if self.discovery.matches(message.topic):
            self._discovery(message)
            return
        route = self.router.route(message.topic)
        if isinstance(route, Miss):
            if self.discovery.learnt(message.topic):
                log.debug("topic %s: its discovered entity was retracted", message.topic)
                return
            self._drop(BROKER_DEVICE_ID, message.topic, route.reason, "", route.detail)
            return
        state = self._devices[route.device.device.id]
        state.last_seen = time.monotonic()
        handler = route.handler
        if handler.decoder is None:
            self._availability(state, message, handler.online, handler.offline, handler.status_path)
            return
        self._mark_up(state, True, message.received_ns, "it publishes again")
        try:
            decoded = handler.decoder.decode(
                message.payload, message.received_ns, message.user_properties, state.zone
            )
        except FieldError as exc:
            self._drop(state.placed.device.id, message.topic, exc.reason, "", str(exc))
            return
        device_id = state.placed.device.id
        for name, problem in decoded.problems:
            self._drop(device_id, message.topic, problem.reason, name, str(problem))
        ts = decoded.ts_ns or message.received_ns
        for compiled, value, field_tags in decoded.values:
            tags = self._tags(state, field_tags, route.tags)
            self._pending.append(
                Reading(device_id, compiled.metric, value, compiled.unit, ts, tags)
            )

    def _discovery(self, message: InMessage) -> None:
        """A Home Assistant config: routes and subscriptions for the entity it announces."""
        changes = self.discovery.handle(message.topic, message.payload)
        for device_id, reason, field_name, detail in changes.problems:
            self._drop(device_id, message.topic, reason, field_name, detail)
        for topic, placed in changes.remove:
            self.router.remove_fixed(topic, placed)
        for topic, handler, placed in changes.add:
            self.router.add_fixed(topic, handler, placed)
        self._new_filters.extend(changes.subscribe)

    def _sparkplug(self, message: InMessage) -> None:
        outcome = self.sparkplug.handle(message.topic, message.payload, message.received_ns)
        if not outcome.known:
            self._drop(
                BROKER_DEVICE_ID,
                message.topic,
                "unknown_device",
                "",
                "no inventory device has this Sparkplug group/edge[/device] as mqtt.name",
            )
            return
        now = time.monotonic()
        for placed in outcome.seen:
            self._devices[placed.device.id].last_seen = now
        for placed, up, why in outcome.up:
            self._mark_up(self._devices[placed.device.id], up, message.received_ns, why)
        for owner, reason, field_name, detail in outcome.problems:
            device_id = owner.device.id if owner else BROKER_DEVICE_ID
            self._drop(device_id, message.topic, reason, field_name, detail)
        for placed, compiled, value, field_tags, ts_ns in outcome.values:
            state = self._devices[placed.device.id]
            self._mark_up(state, True, message.received_ns, "it publishes again")
            tags = self._tags(state, field_tags, EMPTY)
            self._pending.append(
                Reading(placed.device.id, compiled.metric, value, compiled.unit, ts_ns, tags)
            )

    def _availability(
        self,
        state: _DeviceState,
        message: InMessage,
        online: frozenset[str],
        offline: frozenset[str],
        status_path: str | None = None,
    ) -> None:
        try:
            up = decode_availability(message.payload, online, offline, status_path)
        except FieldError as exc:
            self._drop(state.placed.device.id, message.topic, exc.reason, "", str(exc))
            return
        why = "its status topic says online" if up else "its status topic says offline"
        self._mark_up(state, up, message.received_ns, why)

    def _tags(
        self, state: _DeviceState, field_tags: Mapping[str, str], topic_tags: Mapping[str, str]
    ) -> Mapping[str, str]:
        if not field_tags and not topic_tags:
            return state.placed.tags
        # field tag sets are made once and kept by their decoder, so their id is stable
        key = (id(field_tags), tuple(topic_tags.items()))
        cached = state.tag_cache.get(key)
        if cached is not None:
            return cached[1]
        tags = MappingProxyType({**state.placed.tags, **field_tags, **topic_tags})
        if len(state.tag_cache) < MAX_TRACKED_KEYS:
            state.tag_cache[key] = (field_tags, tags)
        return tags

    # --- device.up -----------------------------------------------------------

    def check_stale(self, now: float) -> None:
        """Mark devices silent for longer than their stale_after_s as down."""
        for state in self._devices.values():
            if state.up is not False and now - state.last_seen > state.stale_after_s:
                silent = now - state.last_seen
                self._mark_up(state, False, time.time_ns(), f"silent for {silent:.0f} s")

    def _mark_up(self, state: _DeviceState, up: bool, ts_ns: int, why: str) -> None:
        if state.up is up:
            return
        if state.up is not None or not up:
            log.log(
                logging.INFO if up else logging.WARNING,
                "device %s: %s (MQTT): %s",
                state.placed.device.id,
                "up" if up else "down",
                why,
            )
        state.up = up
        self._pending.append(
            Reading(state.placed.device.id, "device.up", up, None, ts_ns, state.placed.tags)
        )

    def _broker_state(self, connected: bool) -> None:
        self._pending.append(
            Reading(
                BROKER_DEVICE_ID, "device.up", connected, None, time.time_ns(), self._broker_tags
            )
        )
        self._kick.set()

    # --- bad input -----------------------------------------------------------

    def _drop(self, device_id: str, topic: str, reason: str, field_name: str, detail: str) -> None:
        topic_key = (topic, reason)
        if topic_key in self.errors_by_topic or len(self.errors_by_topic) < MAX_TRACKED_KEYS:
            self.errors_by_topic[topic_key] += 1
        else:
            self.errors_by_topic[("(other topics)", reason)] += 1
        self._errors_by_device[(device_id, reason)] += 1
        # per device, not per topic: unknown topics share one key per reason
        log_key = (device_id, reason, field_name)
        if log_key in self._logged or len(self._logged) >= MAX_TRACKED_KEYS:
            log.debug("device %s: topic %s: %s: %s", device_id, topic, reason, detail)
            return
        self._logged.add(log_key)
        where = f" field {field_name}" if field_name else ""
        log.warning(
            "device %s: topic %s%s: dropped (%s): %s (further ones are counted, not logged)",
            device_id,
            topic,
            where,
            reason,
            detail,
        )

    def _error_readings(self) -> None:
        """Counters that moved since the last report, as device.mqtt_errors readings."""
        ts = time.time_ns()
        for (device_id, reason), count in self._errors_by_device.items():
            if self._reported_errors.get((device_id, reason)) == count:
                continue
            self._reported_errors[(device_id, reason)] = count
            state = self._devices.get(device_id)
            base = state.placed.tags if state else self._broker_tags
            tags = MappingProxyType({**base, "reason": reason})
            self._pending.append(Reading(device_id, "device.mqtt_errors", count, None, ts, tags))

    def set_durability(self, safe: Callable[[], Awaitable[None]]) -> None:
        """Acknowledge QoS 1 messages only once `safe()` returned after their readings."""
        self.subscriber.safe = safe

    @property
    def device_up(self) -> dict[str, bool | None]:
        """The current up/down view of each device (None until known)."""
        return {device_id: state.up for device_id, state in self._devices.items()}


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC  # validated with the inventory; a missing tzdata is no reason to stop
