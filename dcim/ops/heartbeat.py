"""Shards of one inventory watch each other's heartbeat through the shared MQTT broker.

Each shard publishes `{"state": "alive"}` retained on `<topic>/shard-I-of-N` every
`interval_s` while it is healthy, with a retained last will `{"state": "dead"}` (the
broker publishes it the moment a killed shard's connection drops) and a retained
`{"state": "stopped"}` on a clean stop. Every shard subscribes to `<topic>/+` and
judges its peers by its own clock (never the peer's timestamp, so clocks need not
agree): a peer not heard alive for `silent_after_s` is silent, and the callback
raises the page; a heartbeat heard again resolves it. A shard that never showed
up counts from our start. While our own link to the broker is down we judge no
one (the broker, not the peers, would be at fault), and after it comes back every
peer gets `silent_after_s` to be heard again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiomqtt

from dcim.backoff import Backoff
from dcim.cancel import raise_if_cancelling
from dcim.clock import Clock

if TYPE_CHECKING:
    from dcim.inventory import HeartbeatConfig, MqttBrokerConfig
    from dcim.shard import Shard

log = logging.getLogger(__name__)

#: Builds an MQTT client (not yet connected): broker settings, client id, last will.
ClientFactory = Callable[["MqttBrokerConfig", str, aiomqtt.Will], aiomqtt.Client]
#: Told when a peer goes silent (shard, why) and when it is heard again (shard, None).
OnPeer = Callable[["Shard", str | None], None]

_TOPIC_TAIL = re.compile(r"shard-(\d+)-of-(\d+)$")


@dataclass(slots=True)
class Peer:
    index: int
    #: Our monotonic clock when it was last heard alive (or the baseline: start, reconnect).
    heard_at: float
    #: What it said last: unknown (nothing yet), alive, stopped, dead (its last will).
    said: str = "unknown"
    silent: bool = False


class ShardHeartbeat:
    """See the module doc. `run()` until `stop()`."""

    def __init__(
        self,
        *,
        shard: Shard,
        settings: HeartbeatConfig,
        broker: MqttBrokerConfig,
        connect: ClientFactory,
        healthy: Callable[[], bool],
        on_peer: OnPeer,
        clock: Clock = time.monotonic,
    ) -> None:
        self.shard = shard
        self.settings = settings
        self._broker = broker
        self._connect = connect
        self._healthy = healthy
        self._on_peer = on_peer
        self._clock = clock
        now = clock()
        self.peers = {
            i: Peer(i, heard_at=now) for i in range(1, shard.count + 1) if i != shard.index
        }
        self.connected = False
        self._client: aiomqtt.Client | None = None
        self._stopping = False
        self.client_id = f"dcim-hb-{socket.gethostname()}"[:50] + f"-{shard.index}-of-{shard.count}"

    def topic_of(self, index: int) -> str:
        return f"{self.settings.topic}/shard-{index}-of-{self.shard.count}"

    def _payload(self, state: str) -> bytes:
        return json.dumps(
            {"state": state, "shard": f"{self.shard.index}/{self.shard.count}"}
        ).encode()

    def view(self) -> dict[str, tuple[float, bool]]:
        """Peer "I/N" -> (seconds since heard alive, counted as up)."""
        now = self._clock()
        return {
            f"{p.index}/{self.shard.count}": (round(now - p.heard_at, 3), not p.silent)
            for p in self.peers.values()
        }

    # --- running ---------------------------------------------------------------------

    async def run(self) -> None:
        watch = asyncio.create_task(self._watch(), name="heartbeat watch")
        backoff = Backoff(1.0, 30.0)
        try:
            while not self._stopping:
                try:
                    await self._session()
                    backoff.reset()
                except aiomqtt.MqttError as exc:
                    raise_if_cancelling(exc)
                    if self.connected or not backoff.failing:
                        log.warning(
                            "shard heartbeat: broker %s unreachable (%s); peers are not judged "
                            "until it is back",
                            self._broker.url,
                            exc,
                        )
                    self._disconnected()
                    await asyncio.sleep(backoff.next_delay())
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch

    async def _session(self) -> None:
        will = aiomqtt.Will(
            self.topic_of(self.shard.index), self._payload("dead"), qos=1, retain=True
        )
        async with self._connect(self._broker, self.client_id, will) as client:
            self._client = client
            if not self.connected:
                # every peer gets a full silent_after_s from now: we could not see it before
                now = self._clock()
                for peer in self.peers.values():
                    peer.heard_at = max(peer.heard_at, now)
            self.connected = True
            log.info(
                "shard heartbeat: on %s as %s", self._broker.url, self.topic_of(self.shard.index)
            )
            await client.subscribe(f"{self.settings.topic}/+", qos=1)
            raise_if_cancelling()
            beat = asyncio.create_task(self._beat(client), name="heartbeat beat")
            try:
                async for message in client.messages:
                    self._heard(message.topic.value, message.payload)
            finally:
                beat.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                    await beat
                self._client = None

    def _disconnected(self) -> None:
        self.connected = False
        self._client = None

    async def _beat(self, client: aiomqtt.Client) -> None:
        topic = self.topic_of(self.shard.index)
        while True:
            if self._healthy():
                await client.publish(topic, self._payload("alive"), qos=1, retain=True)
                raise_if_cancelling()
            else:
                log.warning("shard heartbeat: not sent, this shard is unhealthy")
            await asyncio.sleep(self.settings.interval_s)

    def _heard(self, topic: str, payload: object) -> None:
        match = _TOPIC_TAIL.search(topic)
        if match is None or int(match[2]) != self.shard.count:
            return  # another sharding of the inventory (or not a heartbeat)
        peer = self.peers.get(int(match[1]))
        if peer is None or not isinstance(payload, bytes | bytearray) or not payload:
            return  # ourselves, or a cleared retained message
        try:
            state = str(json.loads(payload)["state"])
        except (ValueError, KeyError, TypeError):
            log.warning("shard heartbeat: unreadable message on %s", topic)
            return
        peer.said = state
        if state == "alive":
            peer.heard_at = self._clock()
            self._judge(peer)
        elif state in ("dead", "stopped"):
            log.warning(
                "shard %d/%d %s",
                peer.index,
                self.shard.count,
                "lost its broker connection (last will)" if state == "dead" else "stopped",
            )

    async def _watch(self) -> None:
        step = min(1.0, self.settings.interval_s / 2)
        while True:
            await asyncio.sleep(step)
            if self.connected:
                for peer in self.peers.values():
                    self._judge(peer)

    def _judge(self, peer: Peer) -> None:
        from dcim.shard import Shard

        silent_for = self._clock() - peer.heard_at
        # a last will or goodbye says why, not when: a restart within the time is no page
        silent = silent_for > self.settings.silent_after_s
        if silent == peer.silent:
            return
        peer.silent = silent
        who = Shard(peer.index, self.shard.count)
        if silent:
            how = {"dead": "died (last will)", "stopped": "stopped", "unknown": "never heard"}.get(
                peer.said, "silent"
            )
            self._on_peer(who, f"{how}, no heartbeat for {silent_for:.0f} s")
        else:
            self._on_peer(who, None)

    async def stop(self) -> None:
        """Say goodbye (retained `stopped`), so peers know this was no crash."""
        self._stopping = True
        client = self._client
        if client is None:
            return
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            async with asyncio.timeout(2.0):
                await client.publish(
                    self.topic_of(self.shard.index), self._payload("stopped"), qos=1, retain=True
                )
