"""The drill's moving parts besides the real servers: a rogue SNMP proxy, trap datagrams,
an MQTT publisher that knows what the broker acknowledged, a webhook receiver, and
the monitor as a separate process (so it can be killed with SIGKILL)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiomqtt
from aiohttp import web

from collectors.snmp import fastcodec as ber

# --- a rogue SNMP agent: a proxy in front of a well-behaved simulated one --------------

#: upsBatteryTemperature.0 (a number) and upsOutputSource.0 (an enum) of UPS-MIB.
BATTERY_TEMP = (1, 3, 6, 1, 2, 1, 33, 1, 2, 7, 0)
OUTPUT_SOURCE = (1, 3, 6, 1, 2, 1, 33, 1, 4, 1, 0)


class RogueProxy(asyncio.DatagramProtocol):
    """Forwards requests to `upstream`, answers with what `mode` makes of the response.

    clean: as is; nan: the battery temperature as the text "NaN"; wrong_type: the output
    source (an enum) as text; wrong_request_id: another request id (a stale or spoofed
    answer); garbage: random bytes.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.mode = "clean"
        self.answered: Counter[str] = Counter()
        self._clients: dict[int, tuple[str, int]] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self.port = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=("127.0.0.1", 0)
        )
        self._transport = transport
        self.port = int(transport.get_extra_info("sockname")[1])

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self._transport is not None
        if addr == self.upstream:
            try:
                header = ber.decode_header(data)
            except ber.CodecError:
                return
            client = self._clients.pop(header.request_id, None)
            if client is not None:
                self.answered[self.mode] += 1
                self._transport.sendto(self._spoil(data), client)
            return
        with contextlib.suppress(ber.CodecError):
            self._clients[ber.decode_header(data).request_id] = addr
            self._transport.sendto(data, self.upstream)

    def _spoil(self, data: bytes) -> bytes:
        if self.mode == "clean":
            return data
        if self.mode == "garbage":
            return random.randbytes(len(data))
        response = ber.decode_response(data)
        header = response.header
        request_id = header.request_id
        values = {vb.oid: vb.value for vb in response.var_binds}
        if self.mode == "wrong_request_id":
            request_id = ber.REQUEST_ID_MIN + (request_id + 1) % 1000
        elif self.mode == "nan" and BATTERY_TEMP in values:
            values[BATTERY_TEMP] = b"NaN"
        elif self.mode == "wrong_type" and OUTPUT_SOURCE in values:
            values[OUTPUT_SOURCE] = b"on fire"
        varbinds = b"".join(ber.encode_varbind(oid, value) for oid, value in values.items())
        return ber.encode_message(
            header.version,
            header.community,
            header.pdu_type,
            request_id=request_id,
            error_status=header.error_status,
            error_index=header.error_index,
            varbinds=varbinds,
        )


# --- SNMPv2c traps and garbage datagrams --------------------------------------------

SNMPV2_TRAP = 0xA7
SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
TRAP_OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
UPS_ON_BATTERY = (1, 3, 6, 1, 2, 1, 33, 2, 1)
MINUTES_LEFT = (1, 3, 6, 1, 2, 1, 33, 1, 2, 3, 0)
SECONDS_ON_BATTERY = (1, 3, 6, 1, 2, 1, 33, 1, 2, 2, 0)


def on_battery_trap(community: bytes, request_id: int, minutes_left: int) -> bytes:
    """A UPS-MIB upsTrapOnBattery with its two values."""
    varbinds = (
        ber.tlv(ber.SEQUENCE, ber.encode_oid(SYS_UPTIME) + ber.encode_integer(100, ber.TIME_TICKS))
        + ber.encode_varbind(TRAP_OID, UPS_ON_BATTERY)
        + ber.encode_varbind(MINUTES_LEFT, minutes_left)
        + ber.encode_varbind(SECONDS_ON_BATTERY, 5)
    )
    return ber.encode_message(
        ber.VERSION_2C,
        community,
        SNMPV2_TRAP,
        request_id=request_id,
        error_status=0,
        error_index=0,
        varbinds=varbinds,
    )


def send_datagrams(port: int, datagrams: list[bytes], gap_s: float = 0.0) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for datagram in datagrams:
            sock.sendto(datagram, ("127.0.0.1", port))
            if gap_s:
                time.sleep(gap_s)


# --- MQTT: what the broker acknowledged is what was produced ---------------------------


class Publisher:
    """Publishes a rack probe's JSON at a steady pace (QoS 1), across broker restarts.

    `acked` holds the ms timestamps of messages the broker acknowledged: the MQTT
    ground truth, independent of the monitor.
    """

    def __init__(self, port: int, topic: str, interval_s: float) -> None:
        self.port = port
        self.topic = topic
        self.interval_s = interval_s
        self.acked: list[int] = []
        self.failed = 0
        self.extra: asyncio.Queue[bytes] = asyncio.Queue()

    async def run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    "127.0.0.1", self.port, identifier="drill-probe", timeout=2
                ) as client:
                    while True:
                        while not self.extra.empty():
                            await client.publish(self.topic, self.extra.get_nowait(), qos=1)
                        ts = int(time.time() * 1000)
                        payload = {
                            "ts": ts,
                            "temperature": {"inlet": 22.0 + (ts % 100) / 100, "outlet": 31.0},
                            "humidity": 45.0,
                            "dew_point": 9.5,
                        }
                        await client.publish(self.topic, json.dumps(payload), qos=1)
                        self.acked.append(ts)
                        await asyncio.sleep(self.interval_s)
            except aiomqtt.MqttError:
                self.failed += 1
                await asyncio.sleep(0.2)


# --- notifications -------------------------------------------------------------------


class Webhook:
    """Receives the monitor's webhook notifications: (incident id, event) in order."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, str]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def _handle(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        self.received.append((str(body["id"]), str(body["rule"]), str(body["event"])))
        return web.json_response({})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


# --- the monitor, as operators run it ---------------------------------------------------


class MonitorProcess:
    """`python -m dcim run CONFIG` with its log in a file; killable, restartable."""

    def __init__(self, config: Path, log_path: Path) -> None:
        self.config = config
        self.log_path = log_path
        self._proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self) -> None:
        log = self.log_path.open("ab")
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "dcim",
            "run",
            str(self.config),
            stdout=log,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def kill9(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGKILL)
        await self._proc.wait()

    async def stop(self) -> int:
        if self._proc is None:
            return 0
        if self._proc.returncode is not None:
            return self._proc.returncode
        self._proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(30):
                return await self._proc.wait()
        except TimeoutError:
            self._proc.kill()
            return await self._proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")
