"""The SNMP client: UDP sockets shared by many devices, sessions for v1, v2c and v3.

`SnmpHost` hands out `CommunitySession`s (v1/v2c) and `UsmSession`s (SNMPv3
USM), both with `get` / `get_next` / `get_bulk` on plain OID tuples, raising
`DeviceTimeoutError`, `SnmpSecurityError` ("wrong_community", "wrong_priv"...)
and `SnmpStatusError` (`collectors.snmp.types`). Messages are built and parsed
by a lean codec of our own (`fastcodec`, `fastv3`, `usmcrypto`): prebuilt
requests, flat parsing, about a twentieth of the CPU a general ASN.1 stack
spends per poll.

Per device the state is one small session object (address, credentials,
timeouts); devices share UDP sockets (`devices_per_socket` each, see
`transport`). The whole host lets at most `max_in_flight` requests wait for a
first answer at once: more answers arriving together overflowed the kernel
receive buffer here. A request unanswered after `SLOT_HOLD_S` gives its slot
back and keeps waiting, so dead devices do not starve live ones; but at most
`OUTSTANDING_FACTOR` x `max_in_flight` requests are outstanding in all, so an
overloaded agent (or network) slows the pollers down instead of receiving an
ever-growing pile of requests and retries it can only answer too late.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket

from collectors.snmp import fastcodec as fc
from collectors.snmp import fastv3 as fv3
from collectors.snmp.communitysession import CommunitySession
from collectors.snmp.transport import (
    OUTSTANDING_FACTOR,
    Channel,
    Requests,
    open_channel,
    probe_engine,
)
from collectors.snmp.usmsession import EngineState, UsmSession
from dcim.inventory import SnmpConfig, SnmpVersion


class SnmpHost:
    """UDP sockets shared by many SNMP devices (v1, v2c, v3), and the sessions on them."""

    def __init__(self, max_in_flight: int = 100, devices_per_socket: int = 250) -> None:
        self._max_in_flight = max_in_flight
        self._slots: asyncio.Semaphore | None = None  # made in the loop that uses them
        self._outstanding: asyncio.Semaphore | None = None
        self._devices_per_socket = max(1, devices_per_socket)
        self._channels: dict[int, list[Channel]] = {}
        self._assigned: dict[int, int] = {}
        self.requests = Requests(random.randint(fc.REQUEST_ID_MIN, fc.REQUEST_ID_MAX))
        #: SNMPv3: what we know of each agent's engine, by address (shared by its sessions)
        self.engines: dict[tuple[str, int], EngineState] = {}

    async def _channel(self, family: int) -> Channel:
        channels = self._channels.setdefault(family, [])
        count = self._assigned.get(family, 0)
        self._assigned[family] = count + 1
        if count // self._devices_per_socket < len(channels):
            return channels[count // self._devices_per_socket]
        if self._slots is None or self._outstanding is None:
            self._slots = asyncio.Semaphore(self._max_in_flight)
            self._outstanding = asyncio.Semaphore(OUTSTANDING_FACTOR * self._max_in_flight)
        channel = await open_channel(family, self._slots, self._outstanding)
        channels.append(channel)
        return channel

    @property
    def sockets(self) -> int:
        return sum(len(c) for c in self._channels.values())

    @property
    def in_flight(self) -> int:
        return sum(len(ch.pending) for c in self._channels.values() for ch in c)

    async def session(self, device_id: str, config: SnmpConfig) -> CommunitySession | UsmSession:
        address, family = await _resolve(config.host, config.port)
        channel = await self._channel(family)
        if config.version is SnmpVersion.V3:
            engine = self.engines.get(address)
            if engine is None:
                engine = self.engines[address] = EngineState()
            return UsmSession(self.requests, channel, device_id, config, address, engine=engine)
        return CommunitySession(self.requests, channel, device_id, config, address)

    async def probe(self, host: str, port: int, *, timeout_s: float) -> fv3.Incoming | None:
        """The agent's answer to the SNMPv3 discovery probe (engine id, boots, time);
        None when it does not answer."""
        address, family = await _resolve(host, port)
        channel = await self._channel(family)
        where = f"{host}:{port}"
        return await probe_engine(
            channel, self.requests, where, address, timeout_s=timeout_s, tries=1
        )

    def close(self) -> None:
        for channels in self._channels.values():
            for channel in channels:
                for pending in channel.pending.values():
                    if not pending.future.done():
                        pending.future.cancel()
                if channel.transport is not None:
                    channel.transport.close()
        self._channels.clear()
        self._assigned.clear()
        self.engines.clear()


async def _resolve(host: str, port: int) -> tuple[tuple[str, int], int]:
    """Numeric (address, port) as answers come from, and the socket family."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        family, _, _, _, sockaddr = infos[0]
        return (str(sockaddr[0]), int(sockaddr[1])), int(family)
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    return (ip.compressed, port), family
