"""MQTT: each notification as JSON (the webhook's body) on a topic built from the incident.

Firing state is published retained, one topic per incident (the template must name
`{incident}` when `retain` is on), so a dashboard that subscribes later receives every
open incident at once. A resolve first clears the retained message (an empty retained
publish, which the broker forwards to current subscribers as an empty message: ignore
those), then publishes the resolved JSON without retain, so live subscribers learn when
and how it ended while the broker keeps nothing about a closed incident. Retaining the
resolved message instead would pile one message per incident ever raised on the broker.

When the topic names the severity and an incident moves from warning to critical, the
warning topic's retained message is cleared as the critical one is published.

One connection is kept open between notifications (clean session: the dispatcher's
outbox, not the broker, keeps what is undelivered). Delivery is at least once: a retry
after a lost PUBACK publishes again, so subscribers key on `id` and `event`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from dcim.alerts.config import AlertLinks, MqttChannel, topic_fields
from dcim.alerts.model import Notification, Phase
from dcim.alerts.notify.base import NotifyError
from dcim.alerts.notify.templating import Messages
from dcim.alerts.notify.webhook import document
from dcim.cancel import raise_if_cancelling

log = logging.getLogger(__name__)

#: Stands in for a label the incident does not have (e.g. `{site}` of a channel failure).
MISSING = "_"
_NOT_IN_A_LEVEL = str.maketrans({"/": "_", "+": "_", "#": "_", "\0": "_"})


@dataclass(frozen=True, slots=True)
class Publish:
    topic: str
    payload: bytes
    retain: bool


def _level(value: str) -> str:
    """A value made safe for one topic level: no separators or wildcards, never empty."""
    return value.translate(_NOT_IN_A_LEVEL) or MISSING


def render_topic(template: str, notification: Notification, *, state: str | None = None) -> str:
    """The topic for a notification; `state` overrides its phase (where it fired)."""
    values = dict(notification.labels)
    values |= {
        "rule": notification.rule,
        "severity": notification.severity.value,
        "state": state or notification.phase.value,
        "event": notification.event,
        "incident": notification.incident_id,
        "scope": notification.key,
    }
    fields = {name: _level(values.get(name, "")) for name in topic_fields(template)}
    return template.format_map(fields)


def payload(messages: Messages, notification: Notification) -> bytes:
    """The same JSON document the webhook posts."""
    return json.dumps(document(messages, notification), sort_keys=True).encode()


class MqttNotifier:
    def __init__(self, config: MqttChannel, links: AlertLinks | None = None) -> None:
        from dcim.mqttclient import parse_broker_url

        parse_broker_url(config.url)  # a bad URL stops the monitor at start, not at first alert
        self.name = config.name
        self._config = config
        self._messages = Messages("mqtt", config.name, config.templates, links)
        self._client_id = config.client_id or f"dcim-alerts-{os.getpid()}-{config.name}"[:64]
        self._client: aiomqtt.Client | None = None
        #: incident id -> topic holding its retained firing message
        self._retained: dict[str, str] = {}
        self._v5 = config.protocol == "5"

    def resume(self, active: Sequence[Notification]) -> None:
        """After a restart: where the announced firing incidents are retained, to clear them."""
        if self._config.retain:
            self._retained.update(
                {n.incident_id: render_topic(self._config.topic, n) for n in active}
            )

    def plan(self, notification: Notification) -> list[Publish]:
        """What one notification publishes, in order."""
        config = self._config
        topic = render_topic(config.topic, notification)
        body = payload(self._messages, notification)
        if not config.retain:
            return [Publish(topic, body, retain=False)]
        held = self._retained.get(notification.incident_id)
        if notification.phase is Phase.RESOLVED:
            # where it fired: what we published, else (state lost) where it would be now
            stale = [held] if held is not None else []
            guess = render_topic(config.topic, notification, state=Phase.FIRING.value)
            stale += [guess] if guess not in stale else []
            clears = [Publish(t, b"", retain=True) for t in stale]
            return [*clears, Publish(topic, body, retain=False)]
        clears = [Publish(held, b"", retain=True)] if held not in (None, topic) else []
        return [*clears, Publish(topic, body, retain=True)]

    async def send(self, notification: Notification) -> None:
        plan = self.plan(notification)
        # a kept connection may have died while idle: then once more on a fresh one
        attempts = 2 if self._client is not None else 1
        for attempt in range(1, attempts + 1):
            try:
                async with asyncio.timeout(self._config.timeout_s):
                    await self._publish(plan)
                break
            except (aiomqtt.MqttError, TimeoutError) as exc:
                await self._drop()
                if attempt == attempts:
                    raise NotifyError(f"mqtt {self.name}: {_why(exc, self._config)}") from None
        if self._config.retain:
            if notification.phase is Phase.RESOLVED:
                self._retained.pop(notification.incident_id, None)
            else:
                self._retained[notification.incident_id] = plan[-1].topic

    async def _publish(self, plan: Sequence[Publish]) -> None:
        client = await self._connected()
        for message in plan:
            await client.publish(
                message.topic,
                message.payload,
                qos=self._config.qos,
                retain=message.retain,
                properties=self._properties(message),
                timeout=self._config.timeout_s,
            )
            raise_if_cancelling()  # 3.11's wait_for may have swallowed a stop

    def _properties(self, message: Publish) -> Properties | None:
        if not self._v5 or not message.payload:
            return None
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ContentType = "application/json"
        return properties

    async def _connected(self) -> aiomqtt.Client:
        if self._client is not None:
            return self._client
        from dcim.inventory import MqttBrokerConfig
        from dcim.mqttclient import make_client

        config = self._config
        broker = MqttBrokerConfig(
            url=config.url,
            protocol=config.protocol,
            username=config.username,
            password=config.password,
            tls=config.tls,
            keepalive_s=config.keepalive_s,
        )
        try:
            client = make_client(broker, client_id=self._client_id, persistent=False)
        except OSError as exc:  # TLS files unreadable or invalid
            raise NotifyError(
                f"mqtt {self.name}: TLS setup failed: {exc.__class__.__name__}: {exc}"
            ) from None
        try:
            await client.__aenter__()
        except aiomqtt.MqttError as exc:
            raise aiomqtt.MqttError(f"cannot connect to {config.url}: {exc}") from None
        log.info("mqtt channel %s: connected to %s as %s", self.name, config.url, self._client_id)
        self._client = client
        return client

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        # a hung broker must not hold the channel past its timeout on the way out either
        with contextlib.suppress(aiomqtt.MqttError, OSError, TimeoutError):
            async with asyncio.timeout(self._config.timeout_s):
                await client.__aexit__(None, None, None)

    async def aclose(self) -> None:
        await self._drop()


def _why(exc: BaseException, config: MqttChannel) -> str:
    """The failure in an operator's words (aiomqtt's text never holds the password)."""
    if isinstance(exc, TimeoutError):
        return f"no answer from {config.url} within {config.timeout_s:g} s"
    text = str(exc) or exc.__class__.__name__
    return text if text.startswith("cannot connect") else f"publish failed: {text}"
