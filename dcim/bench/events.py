"""Events for the monitor phase of `dcim bench snmp`: traps and MQTT messages that cross
a rule, sent at a steady rate while the fleet is polled, and their timing.

Each event raises or clears one device's alert: a UPS on battery (upsTrapOnBattery of
the UPS-MIB or APC's upsOnBattery, alternately) cleared by APC's powerRestored, which
is the clearing trap the shipped rule knows; a rack env sensor's inlet temperature over
the bench's threshold, then back to normal. Every event is stamped with its send time
(CLOCK_MONOTONIC, right before the datagram or the publish leaves) and keyed by
(device, rule, firing|resolved): the i-th send of a key is matched with the i-th
decision of that key, so the plan never has two of one key in flight.

Two latencies: send -> decision (the engine published the transition; seen in the
monitor process) and send -> webhook received here (end to end, through the store,
the dispatcher and HTTP).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from collectors.snmp import fastcodec as fc
from collectors.snmp.fastcodec import encode_message, encode_varbind
from dcim.bench.measure import percentile
from dcim.bench.monitor import HOT_C, MQTT_RULE, NORMAL_C, TRAP_RULE
from simulators.traps import APC_TRAP_ARGS, APC_TRAPS, UPS_MIB, UPS_TRAP_ON_BATTERY

SNMPV2_TRAP = 0xA7
SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SNMP_TRAP_OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)

Key = tuple[str, str, str]  # (device, rule, "firing" | "resolved")


@dataclass(frozen=True, slots=True)
class Target:
    """A device the bench raises and clears alerts on."""

    device: str
    rule: str
    #: the UPS's community (traps) or its rack's topic prefix (MQTT)
    address: str


@dataclass(frozen=True, slots=True)
class Event:
    target: Target
    raises: bool

    @property
    def key(self) -> Key:
        return (self.target.device, self.target.rule, "firing" if self.raises else "resolved")


def plan_events(targets: Sequence[Target], count: int) -> list[Event]:
    """`count` events: raise then clear, target after target (round robin)."""
    events: list[Event] = []
    for n in range(count):
        events.append(Event(targets[(n // 2) % len(targets)], n % 2 == 0))
    return events


def firings_per_target(targets: Sequence[Target], count: int) -> int:
    """How often one target fires in a plan of `count` events (flap damping must allow it)."""
    cycles = (count + 1) // 2
    return -(-cycles // max(len(targets), 1))


def _oid(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def trap_datagram(event: Event, cycle: int, uptime_ticks: int) -> bytes:
    """The v2c notification for `event`, encoded with the monitor's own codec."""
    extra: list[tuple[str, int | bytes]]
    if event.raises and cycle % 2 == 0:
        trap, extra = (
            UPS_TRAP_ON_BATTERY,
            [
                (f"{UPS_MIB}.1.2.3.0", 12),  # upsEstimatedMinutesRemaining
                (f"{UPS_MIB}.1.2.2.0", 0),  # upsSecondsOnBattery
            ],
        )
    else:
        trap = APC_TRAPS["on_battery" if event.raises else "power_restored"]
        extra = [(APC_TRAP_ARGS, f"{event.target.device}: bench".encode())]
    uptime = fc.tlv(
        fc.SEQUENCE, fc.encode_oid(SYS_UPTIME) + fc.encode_integer(uptime_ticks, fc.TIME_TICKS)
    )
    varbinds = uptime + encode_varbind(SNMP_TRAP_OID, _oid(trap))
    for oid, value in extra:
        varbinds += encode_varbind(_oid(oid), value)
    return encode_message(
        1,  # SNMPv2c
        event.target.address.encode(),
        SNMPV2_TRAP,
        request_id=cycle + 1,
        error_status=0,
        error_index=0,
        varbinds=varbinds,
    )


def mqtt_payload(event: Event, sent_at: float) -> bytes:
    """A rack-env-json message: inlet over the bench threshold, or back to normal."""
    inlet = HOT_C if event.raises else NORMAL_C
    body = {
        "ts": sent_at,
        "temperature": {"inlet": inlet, "outlet": inlet + 8.0},
        "humidity": 40.0,
        "dew_point": 8.0,
    }
    return json.dumps(body).encode()


class WebhookReceiver:
    """The alert channel's far end: records when each bench notification arrives."""

    def __init__(self) -> None:
        self.arrivals: dict[Key, list[float]] = {}
        self.other = 0
        self.port = 0
        self._runner: Any = None
        self._changed = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> None:
        from aiohttp import web

        async def hook(request: web.Request) -> web.Response:
            at = time.monotonic()
            body = await request.json()
            rule, event = body.get("rule", ""), body.get("event", "")
            device = body.get("labels", {}).get("device", "")
            if rule in (TRAP_RULE, MQTT_RULE) and event in ("firing", "resolved"):
                self.arrivals.setdefault((device, rule, event), []).append(at)
                self._changed.set()
            else:
                self.other += 1  # alerts on the polled data: real load, not timed
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hook", hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def wait_for(self, sent: dict[Key, list[float]], timeout_s: float) -> None:
        """Until every sent event has its notification, or `timeout_s` passed."""
        deadline = time.monotonic() + timeout_s
        while any(len(self.arrivals.get(k, ())) < len(v) for k, v in sent.items()):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._changed.clear()
            try:
                async with asyncio.timeout(left):
                    await self._changed.wait()
            except TimeoutError:
                return

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class EventSender:
    """Sends the plan at `rate` events/s: traps over UDP, MQTT through the broker."""

    def __init__(self, trap_port: int, mqtt_host_port: tuple[str, int] | None) -> None:
        self.trap_port = trap_port
        self.mqtt = mqtt_host_port
        self.sent: dict[Key, list[float]] = {}
        self.late: list[float] = []

    async def run(self, events: Sequence[Event], rate: float) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client: Any = None
        try:
            if self.mqtt is not None and any(e.target.rule == MQTT_RULE for e in events):
                import aiomqtt

                client = aiomqtt.Client(self.mqtt[0], self.mqtt[1], identifier="dcim-bench-events")
                await client.__aenter__()
            start = loop.time()
            for n, event in enumerate(events):
                due = start + n / rate
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                self.late.append(loop.time() - due)
                await self._send(event, n // 2, sock, client)
        finally:
            sock.close()
            if client is not None:
                await client.__aexit__(None, None, None)

    async def _send(self, event: Event, cycle: int, sock: socket.socket, client: Any) -> None:
        if event.target.rule == TRAP_RULE:
            datagram = trap_datagram(event, cycle, int(time.monotonic() * 100) % 2**32)
            at = time.monotonic()
            sock.sendto(datagram, ("127.0.0.1", self.trap_port))
        else:
            at = time.monotonic()
            topic = f"{event.target.address}/env"
            await client.publish(topic, mqtt_payload(event, time.time()), qos=1)
        self.sent.setdefault(event.key, []).append(at)


def latencies(sent: dict[Key, list[float]], seen: dict[Key, list[float]]) -> list[float]:
    """Send -> seen for every event seen; the i-th send of a key pairs with its i-th sighting."""
    out: list[float] = []
    for key, times in sent.items():
        for sent_at, seen_at in zip(times, seen.get(key, ()), strict=False):
            out.append(seen_at - sent_at)
    return out


def latency_figures(
    sent: dict[Key, list[float]], seen: dict[Key, list[float]], prefix: str
) -> dict[str, Any]:
    values = latencies(sent, seen)
    return {
        f"{prefix}_count": len(values),
        f"{prefix}_p50_s": percentile(values, 0.5),
        f"{prefix}_p99_s": percentile(values, 0.99),
        f"{prefix}_max_s": max(values, default=None),
    }


def by_rule(sent: dict[Key, list[float]], rule: str) -> dict[Key, list[float]]:
    return {k: v for k, v in sent.items() if k[1] == rule}
