"""Helpers for MQTT tests: an inventory with MQTT devices, a reading collector
that can be awaited, a running collector, and a plain publisher."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collectors.mqtt.collector import MqttCollector
from dcim.inventory import Config, PlacedDevice, iter_devices, parse_config
from dcim.reading import Reading

INVENTORY = """
sites:
  - id: s1
    rooms:
      - id: r1
        rows:
          - id: row1
            racks:
              - id: a01
                devices:
                  - {{id: env-a01, kind: sensor, profile: rack-env-json, mqtt: {{stale_after_s: {stale}}}}}
                  - {{id: leak-a01, kind: sensor, profile: rack-leak-json, mqtt: {{stale_after_s: {stale}}}}}
              - id: a02
                devices:
                  - {{id: env-a02, kind: sensor, profile: rack-env-json, mqtt: {{stale_after_s: {stale}}}}}
                  - {{id: smoke-a02, kind: sensor, profile: rack-smoke-json, mqtt: {{stale_after_s: {stale}}}}}
                  - {{id: door-a02, kind: sensor, profile: rack-door-json, mqtt: {{stale_after_s: {stale}}}}}
        devices:
          - {{id: t1, kind: sensor, profile: plain-sensor, mqtt: {{stale_after_s: {stale}}}}}
          - id: legacy
            kind: sensor
            profile: plain-sensor
            mqtt: {{topic: old/probe/7/temp, availability_topic: old/probe/7/lwt, stale_after_s: {stale}}}
mqtt:
  url: "{url}"
  protocol: "{protocol}"
  client_id: "{client_id}"
  reconnect_min_s: 0.05
  reconnect_max_s: 0.5
{extra}
"""


def inventory(
    url: str,
    *,
    protocol: str = "5",
    stale: float = 300.0,
    extra: str = "",
    client_id: str | None = None,
) -> Config:
    text = INVENTORY.format(
        url=url,
        protocol=protocol,
        stale=stale,
        extra=extra,
        client_id=client_id or f"dcim-test-{uuid.uuid4().hex[:8]}",
    )
    return parse_config(text)


def devices(config: Config) -> list[PlacedDevice]:
    return list(iter_devices(config))


class Collected:
    """An emit target whose contents a test can await (no sleeping)."""

    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self._changed = asyncio.Event()

    def __call__(self, batch: Sequence[Reading]) -> None:
        self.readings.extend(batch)
        self._changed.set()

    def of(self, device_id: str, metric: str) -> list[Reading]:
        return [r for r in self.readings if r.device_id == device_id and r.metric == metric]

    async def wait_for(
        self, predicate: Callable[[list[Reading]], bool], what: str, within_s: float = 10.0
    ) -> None:
        try:
            async with asyncio.timeout(within_s):
                while not predicate(self.readings):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            tail = "\n".join(map(str, self.readings[-10:]))
            raise AssertionError(
                f"{within_s} s waiting for {what}; last readings:\n{tail}"
            ) from None

    async def wait_broker(self, up: bool, count: int = 1) -> None:
        def seen(readings: list[Reading]) -> bool:
            hits = [r for r in readings if r.device_id == "mqtt" and r.metric == "device.up"]
            return sum(1 for r in hits if r.value is up) >= count

        await self.wait_for(seen, f"broker connection up={up} (#{count})")


@contextlib.asynccontextmanager
async def running(collector: MqttCollector, collected: Collected) -> AsyncIterator[None]:
    """Run the collector until the block ends; enter once it is subscribed."""
    task = asyncio.create_task(collector.run(collected))
    try:
        await collected.wait_broker(True)
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def client_for(url: str, *, v5: bool = True, **kwargs: Any) -> aiomqtt.Client:
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    version = aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311
    return aiomqtt.Client(host, int(port), protocol=version, **kwargs)


def user_props(**pairs: str) -> Properties:
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    properties.UserProperty = list(pairs.items())
    return properties


async def publish(
    url: str,
    messages: Sequence[tuple[str, bytes | str | dict[str, Any]]],
    *,
    qos: int = 1,
    retain: bool = False,
    properties: Properties | None = None,
) -> None:
    """Publish messages in order over one connection (QoS 1: each acknowledged)."""
    async with client_for(url) as client:
        for topic, body in messages:
            payload = json.dumps(body).encode() if isinstance(body, dict) else body
            await client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
