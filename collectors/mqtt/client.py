"""A resilient MQTT subscriber over aiomqtt (paho-mqtt underneath).

`MqttSubscriber.run()` connects, subscribes every filter, hands each message to
a callback, and on any connection loss reconnects with exponential backoff and
subscribes again. The session is persistent (stable client id, clean session
off / MQTT 5 session expiry), so the broker queues QoS 1 messages published
while the monitor was away and delivers them after the reconnect.

With a `safe` callback (the monitor's "every sink has it"), a QoS 1 message is
acknowledged only once its readings are written or in the on-disk spool: a
monitor killed before that gets the message again from the broker, instead of
losing it with its memory. Acks go out in batches after each barrier, so the
cost is the sinks' flush interval of latency per ack, not per message; under
MQTT 5 the broker lets up to our Receive Maximum (65535) messages wait for one.
A message handled but whose acknowledgement did not reach the broker (the
connection or the broker went down first) comes again on the next session; it is
recognised in the first seconds of that session (same topic and payload as one
handled in the previous one) and acknowledged without being handled twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aiomqtt
from paho.mqtt.reasoncodes import ReasonCode

from dcim.backoff import Backoff
from dcim.cancel import raise_if_cancelling
from dcim.inventory import MqttBrokerConfig
from dcim.mqttclient import default_client_id, make_client

log = logging.getLogger(__name__)

#: SUBSCRIBE packets carry at most this many filters (keeps each packet small).
FILTERS_PER_SUBSCRIBE = 100


@dataclass(frozen=True, slots=True)
class InMessage:
    """One received message, independent of the MQTT library."""

    topic: str
    payload: bytes
    retain: bool
    qos: int
    #: MQTT 5 user properties (empty under 3.1.1).
    user_properties: tuple[tuple[str, str], ...]
    received_ns: int
    #: Packet id (QoS 1/2), what an acknowledgement names.
    mid: int = 0


def _user_properties(message: aiomqtt.Message) -> tuple[tuple[str, str], ...]:
    properties = message.properties
    pairs = getattr(properties, "UserProperty", None) if properties is not None else None
    return tuple((str(k), str(v)) for k, v in pairs) if pairs else ()


def _as_message(message: aiomqtt.Message) -> InMessage:
    payload = message.payload
    if isinstance(payload, str):
        payload = payload.encode()
    elif not isinstance(payload, bytes | bytearray):
        payload = str(payload).encode() if payload is not None else b""
    return InMessage(
        topic=message.topic.value,
        payload=bytes(payload),
        retain=bool(message.retain),
        qos=int(message.qos),
        user_properties=_user_properties(message),
        received_ns=time.time_ns(),
        mid=int(message.mid),
    )


class MqttSubscriber:
    """Keeps one subscribing connection alive; counts connects for tests and self-metrics."""

    def __init__(
        self,
        broker: MqttBrokerConfig,
        filters: Sequence[str],
        *,
        client_id: str | None = None,
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        self.broker = broker
        self.filters = tuple(dict.fromkeys(filters))  # unique, in order
        self.client_id = client_id or broker.client_id or default_client_id()
        self.connects = 0
        self.connected = False
        self._on_state = on_state
        self._backoff = Backoff(broker.reconnect_min_s, broker.reconnect_max_s, jitter=0.2)
        self._where = f"MQTT broker {broker.url}"
        self._client: aiomqtt.Client | None = None
        #: Awaited before QoS 1 messages are acknowledged (None: paho acks on receipt).
        self.safe: Callable[[], Awaitable[None]] | None = None
        #: Digests (topic and payload) of the messages handled lately, and of those
        #: handled in the previous session: what a redelivery would repeat.
        self._handled: deque[bytes] = deque(maxlen=MAX_HANDLED_REMEMBERED)
        self._handled_before: set[bytes] = set()
        #: Redelivered messages recognised and skipped since start.
        self.redelivered = 0

    async def run(self, on_message: Callable[[InMessage], Awaitable[None] | None]) -> None:
        """Receive until cancelled; connection problems are logged and retried, never raised."""
        failures = 0
        while True:
            client = make_client(self.broker, client_id=self.client_id)
            acks = _Acks(client, self.safe) if self.safe is not None else None
            acking: asyncio.Task[None] | None = None
            try:
                async with client:
                    await self._subscribe(client)
                    self._client = client
                    self._set_connected(True)  # only now can messages flow
                    failures = 0
                    self._backoff.reset()
                    if acks is not None:
                        acking = asyncio.create_task(acks.run(), name="mqtt-acks")
                    # the iterator hands out what is already queued before it reports a
                    # disconnect, so messages acknowledged to the broker are not dropped
                    session_start = time.monotonic()
                    async for message in client.messages:
                        incoming = _as_message(message)
                        digest = _digest(incoming) if acks is not None else b""
                        early = time.monotonic() - session_start < REDELIVERY_WINDOW_S
                        if digest and early and digest in self._handled_before:
                            self._handled_before.discard(digest)
                            self.redelivered += 1  # handled last session: only acknowledge
                        else:
                            result = on_message(incoming)
                            if inspect.isawaitable(result):
                                await result
                            if digest:
                                self._handled.append(digest)
                        if acks is not None and message.qos > 0:
                            acks.add(message.mid, message.qos, digest)
            except aiomqtt.MqttError as exc:
                raise_if_cancelling(exc)  # a stop aiomqtt turned into an error: no reconnect
                failures += 1
                was_connected = self.connected
                self._set_connected(False)
                delay = self._backoff.next_delay()
                level = logging.WARNING if was_connected or failures == 1 else logging.INFO
                log.log(level, "%s: %s; reconnecting in %.1f s", self._where, _why(exc), delay)
                await asyncio.sleep(delay)
            finally:
                if acking is not None:  # unacked ones come again on the next session
                    acking.cancel()
                    await asyncio.gather(acking, return_exceptions=True)
                if acks is not None:
                    self._handled_before = set(self._handled)
                self._client = None
                self._set_connected(False)

    async def add_filters(self, filters: Sequence[str]) -> None:
        """Subscribe to more filters (topics learnt at run time); kept for reconnects."""
        new = [f for f in dict.fromkeys(filters) if f not in self.filters]
        if not new:
            return
        self.filters = (*self.filters, *new)
        client = self._client
        if client is not None:
            try:
                await self._subscribe(client, new)
            except aiomqtt.MqttError as exc:
                raise_if_cancelling(exc)
                # the connection is going: the reconnect subscribes to every filter
                log.info("%s: subscribing to %d new topics failed: %s", self._where, len(new), exc)

    async def _subscribe(self, client: aiomqtt.Client, filters: Sequence[str] = ()) -> None:
        qos = self.broker.qos
        wanted = tuple(filters) or self.filters
        for start in range(0, len(wanted), FILTERS_PER_SUBSCRIBE):
            chunk: list[tuple[str, int]] = [
                (topic, int(qos)) for topic in wanted[start : start + FILTERS_PER_SUBSCRIBE]
            ]
            granted = await client.subscribe(chunk)
            raise_if_cancelling()
            for topic, code in zip((t for t, _ in chunk), granted, strict=False):
                # SUBACK failure: 0x80 in 3.1.1, 0x80 and above in 5
                if isinstance(code, ReasonCode):
                    failed = code.is_failure
                else:
                    failed = isinstance(code, int) and code >= 0x80
                if failed:
                    log.error("%s: subscription to %s refused (%s)", self._where, topic, code)
        log.info(
            "%s: %s %d topic filters",
            self._where,
            f"connected as {self.client_id}, subscribed to" if not filters else "subscribed to",
            len(wanted),
        )

    def _set_connected(self, connected: bool) -> None:
        if connected:
            self.connects += 1
        if connected != self.connected:
            self.connected = connected
            if self._on_state is not None:
                self._on_state(connected)


#: Handled messages remembered across a reconnect (to spot their redelivery), and how
#: long after a reconnect a redelivery is expected (the broker sends them first).
MAX_HANDLED_REMEMBERED = 20_000
REDELIVERY_WINDOW_S = 10.0


def _digest(message: InMessage) -> bytes:
    return hashlib.blake2b(
        message.topic.encode() + b"\0" + message.payload, digest_size=16
    ).digest()


class _Acks:
    """Acknowledges QoS 1/2 messages in batches, each after the `safe` barrier."""

    def __init__(self, client: aiomqtt.Client, safe: Callable[[], Awaitable[None]]) -> None:
        self._paho = client._client
        self._paho.manual_ack_set(True)
        self._safe = safe
        self._pending: list[tuple[int, int, bytes]] = []
        self._inflight: list[tuple[int, int, bytes]] = []
        self._wake = asyncio.Event()

    def add(self, mid: int, qos: int, digest: bytes) -> None:
        self._pending.append((mid, qos, digest))
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._inflight, self._pending = self._pending, []
            await self._safe()  # everything emitted before now is in every sink
            for mid, qos, _ in self._inflight:
                self._paho.ack(mid, qos)
            self._inflight = []


def _why(exc: aiomqtt.MqttError) -> str:
    """The failure in an operator's words (never the password)."""
    text = str(exc) or type(exc).__name__
    rc = getattr(exc, "rc", None)
    value = getattr(rc, "value", rc)
    if value in (4, 5, 134, 135):
        return f"broker refused the credentials or authorization ({text})"
    return f"connection failed or lost: {text}"
