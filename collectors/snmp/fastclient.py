"""A lean asyncio SNMP client over `fastcodec`: the pysnmp session's interface, less CPU.

`FastSnmpHost` stands in for `SnmpEngineHost` and hands out `FastSnmpSession`s
(v1/v2c) and `FastV3Session`s (SNMPv3 USM, `collectors.snmp.fastv3session`)
with the same `get` / `get_next` / `get_bulk`, raising the same errors
(`DeviceTimeoutError`, `SnmpSecurityError` "wrong_community"...,
`SnmpStatusError`), so `SnmpCollector` and `ColumnWalker` run unchanged.

Per device the state is one small session object (address, community bytes,
timeouts); per socket a dict of requests in flight. Devices share UDP sockets
(`devices_per_socket` each). Answers are matched by request-id (v3: msgID) and
source address; retries resend the same bytes, so a late answer to an earlier
try still counts (as net-snmp does).

The whole host lets at most `max_in_flight` requests wait for a first answer
at once: more answers arriving together overflowed the kernel receive buffer
here. A request unanswered after `SLOT_HOLD_S` gives its slot back and keeps
waiting, so dead devices do not starve live ones; but at most
`OUTSTANDING_FACTOR` x `max_in_flight` requests are outstanding in all, so an
overloaded agent (or network) slows the pollers down instead of receiving an
ever-growing pile of requests and retries it can only answer too late.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from collectors.snmp import fastcodec as fc
from collectors.snmp import fastv3 as fv3
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

if TYPE_CHECKING:
    from collectors.snmp.fastv3session import EngineState, FastV3Session

#: Kernel receive buffer asked for per socket (the kernel caps it at rmem_max).
RECEIVE_BUFFER = 4 * 1024 * 1024
#: How long a request may hold an in-flight slot without an answer. Live agents
#: on a LAN answer within milliseconds; past this the request is most likely to
#: a dead device, whose slot is better spent on a live one. The slot limit only
#: guards the receive buffer against many answers at once, which a device that
#: has not answered in this long adds little to.
SLOT_HOLD_S = 0.15
#: Outstanding requests (answered or not within SLOT_HOLD_S) per in-flight slot.
#: Bounds what dead devices may hold, and the load put on agents that fell behind:
#: without it, 5,000 devices against a slowed agent queued megabytes of requests
#: it answered only after our timeout, whose retries slowed it further.
OUTSTANDING_FACTOR = 4

Oid = tuple[int, ...]
#: v1/v2c: (datagram, parsed header); v3: what the session's check accepted.
_Answer = tuple[bytes, fc.Header] | fv3.Incoming | None
#: Decides whether a v3 datagram answers a request: the parsed answer, or None (stray).
V3Check = Callable[[bytes, int], "fv3.Incoming | None"]
_TEMPLATE_CACHE_MAX = 50_000
_T = TypeVar("_T")


class _Pending:
    __slots__ = ("address", "check", "community", "future")

    def __init__(
        self,
        future: asyncio.Future[_Answer],
        address: tuple[str, int],
        community: bytes | None,
        check: V3Check | None,
    ) -> None:
        self.future = future
        self.address = address
        self.community = community
        self.check = check


class _Slot:
    """One in-flight slot, given back at the answer or after SLOT_HOLD_S, whichever first."""

    __slots__ = ("held", "slots", "timer")

    def __init__(self, slots: asyncio.Semaphore, loop: asyncio.AbstractEventLoop) -> None:
        self.slots = slots
        self.held = True
        self.timer = loop.call_later(SLOT_HOLD_S, self.release)

    def release(self) -> None:
        if self.held:
            self.held = False
            self.timer.cancel()
            self.slots.release()


class _Channel(asyncio.DatagramProtocol):
    """One UDP socket shared by many devices: requests in flight by request-id."""

    def __init__(self, slots: asyncio.Semaphore, outstanding: asyncio.Semaphore) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[int, _Pending] = {}
        self.slots = slots  # shared by every channel of the host, as is `outstanding`
        self.outstanding = outstanding
        self.stray = 0  # answers nobody waits for (late, spoofed, malformed)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        msg_id = fv3.v3_msg_id(data)
        if msg_id is not None:
            self._v3_received(data, addr, msg_id)
            return
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

    def _v3_received(self, data: bytes, addr: tuple[str | Any, int], msg_id: int) -> None:
        pending = self.pending.get(msg_id)
        if (
            pending is None
            or pending.check is None
            or pending.address[1] != addr[1]
            or pending.address[0] != addr[0]
        ):
            self.stray += 1
            return
        answer = pending.check(data, msg_id)  # verified and decrypted, or None
        if answer is None:
            self.stray += 1
            return
        del self.pending[msg_id]
        if not pending.future.done():
            pending.future.set_result(answer)

    async def exchange(
        self,
        device_id: str,
        request_id: int,
        request: bytes,
        address: tuple[str, int],
        *,
        timeout_s: float,
        tries: int,
        community: bytes | None = None,
        check: V3Check | None = None,
    ) -> _Answer:
        """Send, resend on timeout; the answer, or None when every try timed out.

        `request_id` is what the answer carries: the request-id (v1/v2c, checked
        with `community`) or the msgID (v3, checked by `check`).
        """
        loop = asyncio.get_running_loop()
        async with self.outstanding:
            await self.slots.acquire()
            slot = _Slot(self.slots, loop)
            try:
                transport = self.transport
                if transport is None or transport.is_closing():
                    raise DeviceProtocolError(device_id, "SNMP client closed")
                future: asyncio.Future[_Answer] = loop.create_future()
                pending = self.pending[request_id] = _Pending(future, address, community, check)
                try:
                    for _ in range(tries):
                        transport.sendto(request, address)
                        timer = loop.call_later(timeout_s, _expire, future)
                        try:
                            answer = await future
                        finally:
                            timer.cancel()
                        if answer is not None:
                            return answer
                        future = pending.future = loop.create_future()
                    return None
                finally:
                    self.pending.pop(request_id, None)
            finally:
                slot.release()

    def error_received(self, exc: Exception) -> None:
        return None  # unconnected UDP: ICMP errors are not tied to a request; timeouts decide


class FastSnmpHost(SnmpEngineHost):
    """UDP sockets shared by many SNMP devices (v1, v2c, v3), in place of a pysnmp engine.

    Subclasses `SnmpEngineHost` only to be accepted where the collector expects
    one; it holds no pysnmp engine.
    """

    def __init__(self, max_in_flight: int = 100, devices_per_socket: int = 250) -> None:
        self._max_in_flight = max_in_flight
        self._slots: asyncio.Semaphore | None = None  # made in the loop that uses them
        self._outstanding: asyncio.Semaphore | None = None
        self._devices_per_socket = max(1, devices_per_socket)
        self._channels: dict[int, list[_Channel]] = {}
        self._assigned: dict[int, int] = {}
        self._next_id = random.randint(fc.REQUEST_ID_MIN, fc.REQUEST_ID_MAX)
        self.templates: dict[tuple[Any, ...], object] = {}
        #: SNMPv3: what we know of each agent's engine, by address (shared by its sessions)
        self.engines: dict[tuple[str, int], EngineState] = {}

    def template(self, key: tuple[Any, ...], build: Callable[[], _T]) -> _T:
        """The prebuilt request for `key`, built once (the cache restarts past its bound)."""
        template = self.templates.get(key)
        if template is None:
            if len(self.templates) >= _TEMPLATE_CACHE_MAX:
                self.templates.clear()
            template = self.templates[key] = build()
        return cast("_T", template)

    def next_request_id(self) -> int:
        """A request-id (v3: also the msgID), always four content octets."""
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
        if self._slots is None or self._outstanding is None:
            self._slots = asyncio.Semaphore(self._max_in_flight)
            self._outstanding = asyncio.Semaphore(OUTSTANDING_FACTOR * self._max_in_flight)
        slots, outstanding = self._slots, self._outstanding
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
            sock.setblocking(False)
            _, channel = await loop.create_datagram_endpoint(
                lambda: _Channel(slots, outstanding), sock=sock
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

    async def session(self, device_id: str, config: SnmpConfig) -> FastSnmpSession | FastV3Session:
        address, family = await _resolve(config.host, config.port)
        channel = await self._channel(family)
        if config.version is SnmpVersion.V3:
            # imported here: the v3 session is built on this module's channel
            from collectors.snmp.fastv3session import EngineState, FastV3Session

            engine = self.engines.get(address)
            if engine is None:
                engine = self.engines[address] = EngineState()
            return FastV3Session(self, channel, device_id, config, address, engine=engine)
        assert config.community is not None  # validated by SnmpConfig
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

    async def get_bulk_typed(
        self, var_binds: Sequence[tuple[Any, Any]], max_repetitions: int
    ) -> list[fc.TypedVarBind]:
        """GETBULK (GETNEXT under SNMPv1) keeping each value's wire type (`dcim walk`)."""
        if self._version == fc.VERSION_1:
            data, header = await self._answer(fc.GET_NEXT, 0, var_binds)
        else:
            data, header = await self._answer(fc.GET_BULK, max_repetitions, var_binds)
        try:
            return fc.decode_typed_varbinds(data, header.varbinds_start, header.varbinds_end)
        except fc.CodecError as exc:
            raise DeviceProtocolError(self.device_id, f"malformed SNMP response: {exc}") from None

    def _template(
        self, pdu_type: int, max_repetitions: int, var_binds: Sequence[tuple[Any, Any]]
    ) -> fc.RequestTemplate:
        oids = tuple([_oid_of(name) for name, _ in var_binds])
        return self._fast_host.template(
            (self._version, self._community, pdu_type, max_repetitions, oids),
            lambda: fc.request_template(
                self._version, self._community, pdu_type, oids, max_repetitions=max_repetitions
            ),
        )

    async def _fast(
        self, pdu_type: int, max_repetitions: int, var_binds: Sequence[tuple[Any, Any]]
    ) -> list[VarBind]:
        data, header = await self._answer(pdu_type, max_repetitions, var_binds)
        try:
            return fc.decode_varbinds(data, header.varbinds_start, header.varbinds_end)
        except fc.CodecError as exc:
            raise DeviceProtocolError(self.device_id, f"malformed SNMP response: {exc}") from None

    async def _answer(
        self, pdu_type: int, max_repetitions: int, var_binds: Sequence[tuple[Any, Any]]
    ) -> tuple[bytes, fc.Header]:
        """The response's bytes and header; raises on silence and error-status."""
        template = self._template(pdu_type, max_repetitions, var_binds)
        answer = await self._exchange(template)
        if answer is None:
            raise await self._silent()
        assert isinstance(answer, tuple)  # a v1/v2c channel entry answers with (data, header)
        data, header = answer
        if header.error_status:
            raise SnmpStatusError(self.device_id, header.error_status, header.error_index)
        return data, header

    async def _exchange(self, template: fc.RequestTemplate) -> _Answer:
        rid = self._fast_host.next_request_id()
        return await self._channel.exchange(
            self.device_id,
            rid,
            template.build(rid),
            self.address,
            timeout_s=self._timeout_s,
            tries=self._tries,
            community=self._community,
        )

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
