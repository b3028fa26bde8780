"""A lean asyncio SNMPv1/v2c client over `fastcodec`: the pysnmp session's interface, less CPU.

`FastSnmpHost` stands in for `SnmpEngineHost` and hands out `FastSnmpSession`s
with the same `get` / `get_next` / `get_bulk`, raising the same errors
(`DeviceTimeoutError`, `SnmpSecurityError` "wrong_community", `SnmpStatusError`),
so `SnmpCollector` and `ColumnWalker` run unchanged; SNMPv3 stays on pysnmp.

Per device the state is one small session object (address, community bytes,
timeouts); per socket a dict of requests in flight. Devices share UDP sockets
(`devices_per_socket` each); each socket allows at most `max_in_flight`
requests at once, since more dropped answers here (kernel receive buffer).
Answers are matched by request-id and source address; retries resend the same
request-id, so a late answer to an earlier try still counts (as net-snmp does).
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
from collections.abc import Sequence
from typing import Any

from collectors.snmp import fastcodec as fc
from collectors.snmp.client import (
    SnmpEngineHost,
    SnmpSecurityError,
    SnmpSession,
    SnmpStatusError,
    VarBind,
)
from collectors.snmp.security import discover_engine_id
from dcim.errors import CollectError, DeviceProtocolError, DeviceTimeoutError
from dcim.inventory import SnmpConfig, SnmpVersion

#: Kernel receive buffer asked for per socket (the kernel caps it at rmem_max).
RECEIVE_BUFFER = 4 * 1024 * 1024

Oid = tuple[int, ...]
_Answer = tuple[bytes, fc.Header] | None
_TEMPLATE_CACHE_MAX = 50_000


class _Pending:
    __slots__ = ("address", "community", "future")

    def __init__(
        self, future: asyncio.Future[_Answer], address: tuple[str, int], community: bytes
    ) -> None:
        self.future = future
        self.address = address
        self.community = community


class _Channel(asyncio.DatagramProtocol):
    """One UDP socket shared by many devices: requests in flight by request-id."""

    def __init__(self, max_in_flight: int) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[int, _Pending] = {}
        self.slots = asyncio.Semaphore(max_in_flight)
        self.stray = 0  # answers nobody waits for (late, spoofed, malformed)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            header = fc.decode_header(data)
        except fc.CodecError:
            self.stray += 1
            return
        pending = self.pending.get(header.request_id)
        if (
            pending is None
            or header.pdu_type != fc.RESPONSE
            or pending.address[1] != addr[1]
            or pending.address[0] != addr[0]
            or header.community != pending.community
        ):
            self.stray += 1
            return
        del self.pending[header.request_id]
        if not pending.future.done():
            pending.future.set_result((data, header))

    def error_received(self, exc: Exception) -> None:
        return None  # unconnected UDP: ICMP errors are not tied to a request; timeouts decide


class FastSnmpHost(SnmpEngineHost):
    """UDP sockets shared by many v1/v2c devices, in place of a pysnmp engine.

    Subclasses `SnmpEngineHost` only to be accepted where the collector expects
    one; it holds no pysnmp engine.
    """

    def __init__(self, max_in_flight: int = 100, devices_per_socket: int = 250) -> None:
        self._max_in_flight = max_in_flight
        self._devices_per_socket = max(1, devices_per_socket)
        self._channels: dict[int, list[_Channel]] = {}
        self._assigned: dict[int, int] = {}
        self._next_id = random.randint(fc.REQUEST_ID_MIN, fc.REQUEST_ID_MAX)
        self.templates: dict[tuple[Any, ...], fc.RequestTemplate] = {}

    def next_request_id(self) -> int:
        rid = self._next_id
        self._next_id = rid + 1 if rid < fc.REQUEST_ID_MAX else fc.REQUEST_ID_MIN
        return rid

    async def _channel(self, family: int) -> _Channel:
        channels = self._channels.setdefault(family, [])
        count = self._assigned.get(family, 0)
        self._assigned[family] = count + 1
        if count // self._devices_per_socket < len(channels):
            return channels[count // self._devices_per_socket]
        loop = asyncio.get_running_loop()
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
            sock.setblocking(False)
            _, channel = await loop.create_datagram_endpoint(
                lambda: _Channel(self._max_in_flight), sock=sock
            )
        except BaseException:
            sock.close()
            raise
        channels.append(channel)
        return channel

    @property
    def sockets(self) -> int:
        return sum(len(c) for c in self._channels.values())

    @property
    def in_flight(self) -> int:
        return sum(len(ch.pending) for c in self._channels.values() for ch in c)

    async def session(self, device_id: str, config: SnmpConfig) -> FastSnmpSession:
        if config.version is SnmpVersion.V3:
            msg = "the fast client speaks SNMPv1/v2c only; SNMPv3 goes through pysnmp"
            raise ValueError(msg)
        assert config.community is not None  # validated by SnmpConfig
        address, family = await _resolve(config.host, config.port)
        channel = await self._channel(family)
        return FastSnmpSession(self, channel, device_id, config, address)

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


def _oid_of(name: Any) -> Oid:
    if type(name) is tuple:
        return name
    as_tuple = getattr(name, "asTuple", None)  # pysnmp ObjectName
    return tuple(as_tuple() if as_tuple is not None else name)


class FastSnmpSession(SnmpSession):
    """Requests to one v1/v2c device; one request at a time per device is the caller's rule.

    Subclasses `SnmpSession` only for the collector's type; none of the pysnmp
    machinery is used.
    """

    def __init__(
        self,
        host: FastSnmpHost,
        channel: _Channel,
        device_id: str,
        config: SnmpConfig,
        address: tuple[str, int],
    ) -> None:
        self._fast_host = host
        self._channel = channel
        self.device_id = device_id
        self._config = config
        self.address = address
        assert config.community is not None
        self._community = config.community.get_secret_value().encode()
        self._version = fc.VERSION_1 if config.version is SnmpVersion.V1 else fc.VERSION_2C
        self._timeout_s = config.timeout_s
        self._tries = config.retries + 1

    async def get(self, var_binds: Sequence[tuple[Any, Any]]) -> list[VarBind]:
        return await self._fast(fc.GET, 0, var_binds)

    async def get_next(self, var_binds: Sequence[tuple[Any, Any]]) -> list[VarBind]:
        return await self._fast(fc.GET_NEXT, 0, var_binds)

    async def get_bulk(
        self, var_binds: Sequence[tuple[Any, Any]], max_repetitions: int
    ) -> list[VarBind]:
        if self._version == fc.VERSION_1:
            raise DeviceProtocolError(self.device_id, "SNMPv1 has no GETBULK")
        return await self._fast(fc.GET_BULK, max_repetitions, var_binds)

    def _template(
        self, pdu_type: int, max_repetitions: int, var_binds: Sequence[tuple[Any, Any]]
    ) -> fc.RequestTemplate:
        oids = tuple([_oid_of(name) for name, _ in var_binds])
        key = (self._version, self._community, pdu_type, max_repetitions, oids)
        cache = self._fast_host.templates
        template = cache.get(key)
        if template is None:
            if len(cache) >= _TEMPLATE_CACHE_MAX:
                cache.clear()
            template = cache[key] = fc.request_template(
                self._version, self._community, pdu_type, oids, max_repetitions=max_repetitions
            )
        return template

    async def _fast(
        self, pdu_type: int, max_repetitions: int, var_binds: Sequence[tuple[Any, Any]]
    ) -> list[VarBind]:
        template = self._template(pdu_type, max_repetitions, var_binds)
        answer = await self._exchange(template)
        if answer is None:
            raise await self._silent()
        data, header = answer
        if header.error_status:
            raise SnmpStatusError(self.device_id, header.error_status, header.error_index)
        try:
            return fc.decode_varbinds(data, header.varbinds_start, header.varbinds_end)
        except fc.CodecError as exc:
            raise DeviceProtocolError(self.device_id, f"malformed SNMP response: {exc}") from None

    async def _exchange(self, template: fc.RequestTemplate) -> _Answer:
        """Send, resend on timeout; the answer, or None when every try timed out."""
        channel = self._channel
        loop = asyncio.get_running_loop()
        async with channel.slots:
            transport = channel.transport
            if transport is None or transport.is_closing():
                raise DeviceProtocolError(self.device_id, "SNMP client closed")
            rid = self._fast_host.next_request_id()
            request = template.build(rid)
            future: asyncio.Future[_Answer] = loop.create_future()
            channel.pending[rid] = _Pending(future, self.address, self._community)
            try:
                for _ in range(self._tries):
                    transport.sendto(request, self.address)
                    timer = loop.call_later(self._timeout_s, _expire, future)
                    try:
                        answer = await future
                    finally:
                        timer.cancel()
                    if answer is not None:
                        return answer
                    future = loop.create_future()
                    channel.pending[rid] = _Pending(future, self.address, self._community)
                return None
            finally:
                channel.pending.pop(rid, None)

    async def _silent(self) -> CollectError:
        """Why every try went unanswered: dead, or alive and ignoring our community."""
        probed = await discover_engine_id(*self.address, timeout_s=self._timeout_s)
        if probed is not None:
            return SnmpSecurityError(
                self.device_id,
                "wrong_community",
                f"agent answers SNMPv3 engine discovery but ignores our "
                f"SNMP{self._config.version.value} requests: wrong community, or this "
                "address is not allowed",
            )
        return DeviceTimeoutError(
            self.device_id,
            f"no answer (timeout after {self._tries} tries of {self._timeout_s} s)",
        )


def _expire(future: asyncio.Future[_Answer]) -> None:
    if not future.done():
        future.set_result(None)
