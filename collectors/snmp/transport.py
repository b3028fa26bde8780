"""The client's UDP transport: sockets shared by many devices, requests in flight, probes.

Per socket a dict of requests in flight. Answers are matched by request-id
(v3: msgID) and source address; retries resend the same bytes, so a late
answer to an earlier try still counts (as net-snmp does). `Requests` is what
every session of a host shares: the request-id counter and the prebuilt
request templates. `probe_engine` is the RFC 3414 discovery probe both session
kinds send when an agent stays silent: an agent that answers it is alive, and
ignores us (wrong community, wrong privacy key) or has a new engine id.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any, TypeVar, cast

from collectors.snmp import fastcodec as fc
from collectors.snmp import fastv3 as fv3
from collectors.snmp.usmcrypto import UsmCryptoError
from dcim.errors import DeviceProtocolError

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
#: Datagrams taken from a socket in one go, and the largest one read.
DRAIN_MAX = 64
MAX_DATAGRAM = 65_535

#: v1/v2c: (datagram, parsed header); v3: what the session's check accepted.
Answer = tuple[bytes, fc.Header] | fv3.Incoming | None
#: Decides whether a v3 datagram answers a request: the parsed answer, or None (stray).
V3Check = Callable[[bytes, int], "fv3.Incoming | None"]
_TEMPLATE_CACHE_MAX = 50_000
_T = TypeVar("_T")


class _Pending:
    __slots__ = ("address", "check", "community", "future")

    def __init__(
        self,
        future: asyncio.Future[Answer],
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


class Channel(asyncio.DatagramProtocol):
    """One UDP socket shared by many devices: requests in flight by request-id.

    asyncio's datagram transport hands over one datagram per turn of the event loop;
    each answer that arrives also takes whatever is waiting in the socket then
    (`drain`), and a try is declared unanswered only after the socket was read: on a
    busy loop, answers that came in time would otherwise wait behind other work past
    their timers, and fail polls the devices answered.
    """

    def __init__(
        self,
        slots: asyncio.Semaphore,
        outstanding: asyncio.Semaphore,
        sock: socket.socket | None = None,
    ) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[int, _Pending] = {}
        self.slots = slots  # shared by every channel of the host, as is `outstanding`
        self.outstanding = outstanding
        self.stray = 0  # answers nobody waits for (late, spoofed, malformed)
        self._sock = sock
        self._draining = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._dispatch(data, addr)
        self.drain()

    def drain(self) -> None:
        """Take the datagrams already waiting in the socket (at most DRAIN_MAX)."""
        sock = self._sock
        if sock is None or self._draining:
            return
        self._draining = True
        try:
            for _ in range(DRAIN_MAX):
                try:
                    data, addr = sock.recvfrom(MAX_DATAGRAM)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    return  # closed, or an ICMP error: the transport reports those
                self._dispatch(data, addr)
        finally:
            self._draining = False

    def expire_try(self, future: asyncio.Future[Answer]) -> None:
        """A try's timer fired: read what already arrived, then wake its waiter with None."""
        if not future.done():
            self.drain()
        if not future.done():
            future.set_result(None)

    def _dispatch(self, data: bytes, addr: tuple[str | Any, int]) -> None:
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
    ) -> Answer:
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
                future: asyncio.Future[Answer] = loop.create_future()
                pending = self.pending[request_id] = _Pending(future, address, community, check)
                try:
                    for _ in range(tries):
                        transport.sendto(request, address)
                        timer = loop.call_later(timeout_s, self.expire_try, future)
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


async def open_channel(
    family: int, slots: asyncio.Semaphore, outstanding: asyncio.Semaphore
) -> Channel:
    """A new UDP socket of `family` (any local port) with a large receive buffer."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
        sock.setblocking(False)
        _, channel = await loop.create_datagram_endpoint(
            lambda: Channel(slots, outstanding, sock), sock=sock
        )
    except BaseException:
        sock.close()
        raise
    return channel


class Requests:
    """What every session of a host shares: request-ids and prebuilt request templates."""

    def __init__(self, first_id: int) -> None:
        self._next_id = first_id
        self.templates: dict[tuple[Any, ...], object] = {}

    def next_id(self) -> int:
        """A request-id (v3: also the msgID), always four content octets."""
        rid = self._next_id
        self._next_id = rid + 1 if rid < fc.REQUEST_ID_MAX else fc.REQUEST_ID_MIN
        return rid

    def template(self, key: tuple[Any, ...], build: Callable[[], _T]) -> _T:
        """The prebuilt request for `key`, built once (the cache restarts past its bound)."""
        template = self.templates.get(key)
        if template is None:
            if len(self.templates) >= _TEMPLATE_CACHE_MAX:
                self.templates.clear()
            template = self.templates[key] = build()
        return cast("_T", template)


async def probe_engine(
    channel: Channel,
    requests: Requests,
    device_id: str,
    address: tuple[str, int],
    *,
    timeout_s: float,
    tries: int,
) -> fv3.Incoming | None:
    """Send the discovery probe: the agent's REPORT (engine id, boots, time), or None."""
    rid = requests.next_id()
    answer = await channel.exchange(
        device_id,
        rid,
        fv3.discovery_probe(rid),
        address,
        timeout_s=timeout_s,
        tries=tries,
        check=check_probe,
    )
    assert answer is None or isinstance(answer, fv3.Incoming)
    return answer


def check_probe(data: bytes, msg_id: int) -> fv3.Incoming | None:
    """The REPORT answering a discovery probe: clear text, naming an engine."""
    try:
        message = fv3.decode_message(data)
        if message.flags & (fv3.FLAG_AUTH | fv3.FLAG_PRIV) or not message.engine_id:
            return None
        scoped = fv3.decode_scoped(fv3.scoped_plaintext(data, message, None))
    except (fc.CodecError, UsmCryptoError):
        return None
    if scoped.header.pdu_type != fc.REPORT:
        return None
    return fv3.Incoming(message, scoped, False)
