"""MQTT publishers for simulated environmental, smoke, leak and door sensors.

Each sensor is its own MQTT client, as in the field: it announces itself with a
retained `online` on `<site>/<room>/<rack>/<kind>/status`, leaves a last will
that the broker turns into a retained `offline` if the connection dies, and
publishes a JSON payload on `<site>/<room>/<rack>/<kind>` every interval with
values read from its ValueSource at that moment (the hall model, or
`StandaloneSensor` below). QoS 1 messages made while the broker is away wait in
a bounded outbox and go out after the reconnect, so an outage loses nothing.

    python -m simulators.mqtt_publisher --broker mqtt://127.0.0.1:1883 \
        --site s1 --room r1 --racks a01,a02 --kinds env,leak --interval 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import random
import signal
import ssl
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import SecretStr

from dcim.backoff import Backoff
from dcim.cancel import raise_if_cancelling
from dcim.inventory import TlsConfig
from dcim.reading import Value
from simulators.source import ValueSource

log = logging.getLogger(__name__)

SensorKind = Literal["env", "smoke", "leak", "door"]
KINDS: tuple[SensorKind, ...] = ("env", "smoke", "leak", "door")
#: Unsent QoS 1 messages a sensor keeps while the broker is away (oldest dropped beyond).
OUTBOX_MAX = 10_000
INLET: Mapping[str, str] = {"position": "inlet"}
OUTLET: Mapping[str, str] = {"position": "outlet"}
NO_TAGS: Mapping[str, str] = {}


@dataclass(frozen=True)
class MqttSensor:
    """One sensor in one rack, publishing what `source` says."""

    source: ValueSource
    kind: SensorKind
    site: str
    room: str
    rack: str

    @property
    def topic(self) -> str:
        return f"{self.site}/{self.room}/{self.rack}/{self.kind}"

    @property
    def status_topic(self) -> str:
        return f"{self.topic}/status"


def _rounded(value: Value | None, digits: int) -> Value | None:
    if isinstance(value, float):
        return round(value, digits)
    return value


def sensor_payload(sensor: MqttSensor, now_s: float) -> dict[str, object] | None:
    """The JSON document the sensor sends now; None when its source has no values."""
    source, body = sensor.source, dict[str, object]()
    if sensor.kind == "env":
        temps = {
            name: _rounded(source.value("sensor.temp_c", tags), 2)
            for name, tags in (("inlet", INLET), ("outlet", OUTLET))
        }
        temperature = {k: v for k, v in temps.items() if v is not None}
        if temperature:
            body["temperature"] = temperature
        for key, metric in (
            ("humidity", "sensor.humidity_pct"),
            ("dew_point", "sensor.dew_point_c"),
        ):
            value = _rounded(source.value(metric, NO_TAGS), 2)
            if value is not None:
                body[key] = value
    elif sensor.kind == "smoke":
        obscuration = _rounded(source.value("sensor.smoke_obscuration_pct_m", NO_TAGS), 4)
        level = source.value("sensor.smoke_level", NO_TAGS)
        body.update(
            {k: v for k, v in (("obscuration", obscuration), ("level", level)) if v is not None}
        )
    elif sensor.kind == "leak":
        leak = source.value("sensor.leak_detected", NO_TAGS)
        if leak is not None:
            body["leak"] = bool(leak)
    else:
        door = source.value("sensor.door_open", NO_TAGS)
        if door is not None:
            body["door"] = "open" if door else "closed"
    if not body:
        return None
    return {"ts": round(now_s, 3), **body}


class StandaloneSensor:
    """A plausible sensor on its own (until the hall model feeds the publishers).

    Inlet 22 degC with a slow daily swing and noise, outlet 10 K warmer, relative
    humidity around 45 % with the dew point that follows from both; no smoke, no
    leak, door closed. `overrides` pins a metric (e.g. a leak) for tests and demos.
    """

    def __init__(self, device_id: str, *, seed: int | None = None) -> None:
        self._device_id = device_id
        self._rng = random.Random(seed if seed is not None else device_id)
        self._phase = self._rng.uniform(0, 2 * math.pi)
        self.overrides: dict[tuple[str, tuple[tuple[str, str], ...]], Value | None] = {}

    @property
    def device_id(self) -> str:
        return self._device_id

    def set(self, metric: str, value: Value | None, tags: Mapping[str, str] = NO_TAGS) -> None:
        self.overrides[(metric, tuple(sorted(tags.items())))] = value

    def value(self, metric: str, tags: Mapping[str, str]) -> Value | None:
        key = (metric, tuple(sorted(tags.items())))
        if key in self.overrides:
            return self.overrides[key]
        day = 2 * math.pi * (time.time() % 86_400) / 86_400
        inlet = 22.0 + 1.5 * math.sin(day + self._phase) + self._rng.gauss(0, 0.1)
        humidity = 45.0 + 3.0 * math.cos(day + self._phase) + self._rng.gauss(0, 0.3)
        if metric == "sensor.temp_c":
            return inlet + (10.0 if tags.get("position") == "outlet" else 0.0)
        if metric == "sensor.humidity_pct":
            return humidity
        if metric == "sensor.dew_point_c":
            return dew_point_c(inlet, humidity)
        if metric == "sensor.smoke_obscuration_pct_m":
            return abs(self._rng.gauss(0.005, 0.002))
        if metric == "sensor.smoke_level":
            return "normal"
        if metric in ("sensor.leak_detected", "sensor.door_open"):
            return False
        return None


def dew_point_c(temp_c: float, rh_pct: float) -> float:
    """Magnus formula (Sonntag 1990 constants), good to ~0.1 K in rack conditions."""
    a, b = 17.62, 243.12
    gamma = math.log(max(rh_pct, 0.1) / 100.0) + a * temp_c / (b + temp_c)
    return b * gamma / (a - gamma)


@dataclass
class PublisherStats:
    """Counts for tests and the simulator's status line."""

    published: int = 0
    connects: int = 0
    dropped: int = 0
    per_topic: dict[str, int] = field(default_factory=dict)


def _client_tls(tls: TlsConfig | None) -> ssl.SSLContext:
    ca = str(tls.ca_file) if tls and tls.ca_file else None
    context = ssl.create_default_context(cafile=ca)
    if tls and tls.cert_file and tls.key_file:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    if tls and tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


@dataclass(frozen=True)
class BrokerTarget:
    """Where and how publishers connect."""

    url: str
    tls: TlsConfig | None = None
    username: str | None = None
    password: SecretStr | None = None
    protocol: Literal["3.1.1", "5"] = "5"
    qos: Literal[0, 1] = 1
    keepalive_s: int = 15

    def client(self, client_id: str, will: aiomqtt.Will) -> aiomqtt.Client:
        parts = urlsplit(self.url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            msg = f"broker url {self.url!r}: expected mqtt://host:port or mqtts://host:port"
            raise ValueError(msg)
        use_tls = parts.scheme == "mqtts" or self.tls is not None
        v5 = self.protocol == "5"
        return aiomqtt.Client(
            parts.hostname,
            parts.port or (8883 if use_tls else 1883),
            username=self.username,
            password=self.password.get_secret_value() if self.password else None,
            identifier=client_id,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            will=will,
            keepalive=self.keepalive_s,
            tls_context=_client_tls(self.tls) if use_tls else None,
            timeout=10.0,
        )


class SensorPublisher:
    """One sensor's connection: online/offline status, last will, outbox, reconnects."""

    def __init__(
        self,
        sensor: MqttSensor,
        target: BrokerTarget,
        interval_s: float,
        *,
        client_id: str,
        stats: PublisherStats,
        reconnect_max_s: float = 5.0,
    ) -> None:
        self.sensor = sensor
        self.target = target
        self.interval_s = interval_s
        self.client_id = client_id
        self.stats = stats
        self.reconnect_max_s = reconnect_max_s
        self.outbox: deque[tuple[str, bytes, float]] = deque()
        self._wake = asyncio.Event()

    def enqueue(self, now_s: float) -> None:
        body = sensor_payload(self.sensor, now_s)
        if body is None:
            return
        if len(self.outbox) >= OUTBOX_MAX:
            self.outbox.popleft()
            self.stats.dropped += 1
        self.outbox.append((self.sensor.topic, json.dumps(body).encode(), now_s))
        self._wake.set()

    async def produce(self, first_delay_s: float) -> None:
        await asyncio.sleep(first_delay_s)
        while True:
            self.enqueue(time.time())
            await asyncio.sleep(self.interval_s)

    async def connect_and_send(self) -> None:
        will = aiomqtt.Will(self.sensor.status_topic, b"offline", qos=1, retain=True)
        backoff = Backoff(0.1, self.reconnect_max_s)
        while True:
            client = self.target.client(self.client_id, will)
            try:
                async with client:
                    self.stats.connects += 1
                    backoff.reset()
                    await client.publish(self.sensor.status_topic, b"online", qos=1, retain=True)
                    raise_if_cancelling()
                    try:
                        await self._drain_forever(client)
                    except asyncio.CancelledError:
                        # a clean stop: say so (the will is only for crashes)
                        with contextlib.suppress(aiomqtt.MqttError):
                            await client.publish(
                                self.sensor.status_topic, b"offline", qos=1, retain=True, timeout=2
                            )
                        raise
            except aiomqtt.MqttError as exc:
                raise_if_cancelling(exc)  # a stop aiomqtt turned into an error
                delay = backoff.next_delay()
                log.info("sensor %s: broker: %s; retry in %.1f s", self.client_id, exc, delay)
                await asyncio.sleep(delay)

    async def _drain_forever(self, client: aiomqtt.Client) -> None:
        v5 = self.target.protocol == "5"
        while True:
            while self.outbox:
                topic, payload, ts = self.outbox[0]
                properties = None
                if v5:  # the sender's time also as an MQTT 5 user property
                    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                    properties.UserProperty = ("ts", f"{ts:.3f}")
                await client.publish(topic, payload, qos=self.target.qos, properties=properties)
                raise_if_cancelling()  # 3.11's wait_for may have swallowed our stop
                self.outbox.popleft()  # only once the broker has it (PUBACK at QoS 1)
                self.stats.published += 1
                self.stats.per_topic[topic] = self.stats.per_topic.get(topic, 0) + 1
            self._wake.clear()
            await self._wake.wait()


async def run_publishers(
    broker_url: str,
    sensors: Sequence[MqttSensor],
    interval_s: float,
    tls: TlsConfig | None = None,
    *,
    username: str | None = None,
    password: SecretStr | None = None,
    protocol: Literal["3.1.1", "5"] = "5",
    qos: Literal[0, 1] = 1,
    client_id_prefix: str = "dcim-sim",
    stats: PublisherStats | None = None,
) -> None:
    """Publish every sensor every `interval_s` (start times spread) until cancelled."""
    target = BrokerTarget(broker_url, tls, username, password, protocol, qos)
    stats = stats if stats is not None else PublisherStats()
    publishers = [
        SensorPublisher(
            sensor,
            target,
            interval_s,
            client_id=f"{client_id_prefix}-{sensor.source.device_id}-{sensor.kind}"[:64],
            stats=stats,
        )
        for sensor in sensors
    ]
    async with asyncio.TaskGroup() as group:
        for number, publisher in enumerate(publishers):
            spread = interval_s * number / max(len(publishers), 1)
            group.create_task(publisher.connect_and_send())
            group.create_task(publisher.produce(spread))


def standalone_sensors(
    site: str, room: str, racks: Sequence[str], kinds: Sequence[SensorKind]
) -> list[MqttSensor]:
    """One StandaloneSensor per rack and kind, device ids `<kind>-<rack>`."""
    return [
        MqttSensor(StandaloneSensor(f"{kind}-{rack}"), kind, site, room, rack)
        for rack in racks
        for kind in kinds
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Publish simulated rack sensors over MQTT.")
    parser.add_argument("--broker", required=True, help="mqtt://host:port or mqtts://host:port")
    parser.add_argument("--site", default="s1")
    parser.add_argument("--room", default="r1")
    parser.add_argument("--racks", default="a01", help="comma-separated rack ids")
    parser.add_argument("--kinds", default="env", help=f"comma-separated, of {','.join(KINDS)}")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between messages")
    parser.add_argument("--protocol", choices=["3.1.1", "5"], default="5")
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"unknown kinds {unknown}; known: {', '.join(KINDS)}")
    racks = [r for r in args.racks.split(",") if r]
    sensors = standalone_sensors(args.site, args.room, racks, kinds)
    for sensor in sensors:
        print(
            f"{sensor.source.device_id}: {sensor.topic} (status {sensor.status_topic})", flush=True
        )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    async def serve() -> None:
        task = asyncio.current_task()
        assert task is not None
        # SIGTERM is a clean stop (retained offline), unlike a crash (the last will)
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await run_publishers(args.broker, sensors, args.interval, protocol=args.protocol)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
