"""A fast SNMP agent for scale tests: thousands of devices per process.

Same devices as `simulators.snmp_agent` (any `MibDevice`, reached by its
community), but requests are parsed and answered with the lean codec of
`collectors.snmp.fastcodec` instead of pysnmp's engine. Each device's
`snapshot()` is encoded once into sorted (OID, var-bind bytes) lists and
reused for `cache_s` seconds, so a GETBULK is a few bisects and a join.
Requests with an unknown community, and devices whose `snapshot()` raises (a
device a scenario made silent), get no answer, like a real agent.

With `v3=True` (`--v3`) every device also answers SNMPv3 authPriv as user
`BENCH_V3_USER` (SHA-256 `BENCH_V3_AUTH_KEY`, AES-128 `BENCH_V3_PRIV_KEY`),
the device chosen by contextName = its community; each port is its own
engine (`engine_ids`), see `simulators.fast_v3`.

    agent = FastAgent({"pdu-1": dev1, ...})
    await agent.start("127.0.0.1", 0, ports=2)   # every port serves every device
    ...
    agent.close()

`python -m simulators.fast_agent --devices 5000` serves the benchmark fleet
(`fleet()`: rack PDUs with outlet tables on the APC rPDU2 MIB, UPS on the
UPS-MIB, AKCP temperature/humidity probes) and prints one JSON line with its
ports (and with `--v3` its "engine_ids", hex) once it answers.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import math
import random
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pysnmp.proto.rfc1902 import Integer32, ObjectIdentifier, OctetString, TimeTicks

from collectors.snmp import fastcodec as fc
from collectors.snmp import fastv3 as fv3
from collectors.snmp.types import Absent
from simulators.fast_v3 import UsmEngine, UsmUser, V3Request, new_engine_id, request_oids
from simulators.mib import MibDevice, Missing, Oid, OidTable, TableBuilder
from simulators.mibs.apc_rpdu2 import (
    BANK_STATUS,
    DEVICE_STATUS,
    OUTLET_METERED_STATUS,
    PHASE_STATUS,
    RPDU2,
)

#: The SNMPv3 user every device answers with `v3` (the benchmark's clients use these).
BENCH_V3_USER = "bench"
BENCH_V3_AUTH_PROTOCOL = "sha256"
BENCH_V3_AUTH_KEY = "bench-auth-key"
BENCH_V3_PRIV_PROTOCOL = "aes128"
BENCH_V3_PRIV_KEY = "bench-priv-key"
BENCH_V3 = UsmUser(
    BENCH_V3_USER,
    BENCH_V3_AUTH_PROTOCOL,
    BENCH_V3_AUTH_KEY,
    BENCH_V3_PRIV_PROTOCOL,
    BENCH_V3_PRIV_KEY,
)

#: Largest response we send (RFC 3417 transport: one UDP datagram).
MAX_RESPONSE = 65_000
#: Cap on GETBULK max-repetitions, as agents bound their work per request.
MAX_REPETITIONS = 500

_MISSING = {
    Missing.NO_SUCH_OBJECT: Absent.NO_SUCH_OBJECT,
    Missing.NO_SUCH_INSTANCE: Absent.NO_SUCH_INSTANCE,
}
_OID_TLV: dict[Oid, bytes] = {}
_OID_TLV_MAX = 1_000_000
_NO_SUCH_NAME = 2
_NOT_WRITABLE = 17
_AUTHORIZATION_ERROR = 16


def _oid_tlv(oid: Oid) -> bytes:
    tlv = _OID_TLV.get(oid)
    if tlv is None:
        if len(_OID_TLV) >= _OID_TLV_MAX:
            _OID_TLV.clear()
        tlv = _OID_TLV[oid] = fc.encode_oid(oid)
    return tlv


class EncodedSnapshot:
    """A device's `OidTable` with every instance's var-bind already encoded."""

    __slots__ = ("counter64", "expires", "oids", "table", "varbinds")

    def __init__(self, table: OidTable, expires: float) -> None:
        self.table = table
        self.expires = expires
        self.oids: list[Oid] = []
        self.varbinds: list[bytes] = []
        #: positions of Counter64 values, which SNMPv1 cannot carry (RFC 2576 4.1.2.1)
        self.counter64: set[int] = set()
        for oid, value in table:
            encoded = fc.encode_value(value)
            if encoded[0] == fc.COUNTER64:
                self.counter64.add(len(self.oids))
            self.oids.append(oid)
            self.varbinds.append(fc.tlv(fc.SEQUENCE, _oid_tlv(oid) + encoded))


@dataclass
class AgentStats:
    requests: int = 0
    answered: int = 0
    dropped: int = 0  # malformed, unknown community, silent device, v1 GETBULK
    snapshots: int = 0
    reports: int = 0  # SNMPv3 REPORTs sent (discovery, wrong keys, time window...)


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, agent: FastAgent) -> None:
        self.agent = agent
        self.transport: Any = None
        self.engine: UsmEngine | None = None  # this port's SNMPv3 engine

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        answer = self.agent.answer(data, self.engine)
        if answer is not None:
            self.transport.sendto(answer, addr)


class FastAgent:
    """Answers GET / GETNEXT / GETBULK for many devices, each reached by its community."""

    def __init__(
        self,
        communities: Mapping[str, MibDevice],
        *,
        cache_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        v3: bool = False,
        engine_boots: int = 1,
    ) -> None:
        if not communities:
            raise ValueError("an agent needs at least one device")
        self.devices = {c.encode(): d for c, d in communities.items()}
        self.cache_s = cache_s
        self.v3 = v3
        self._engine_boots = engine_boots
        self.stats = AgentStats()
        self._clock = clock
        self._cache: dict[bytes, EncodedSnapshot] = {}
        self._endpoints: list[_Endpoint] = []
        self._purged = clock()
        self.addresses: list[tuple[str, int]] = []

    @property
    def port(self) -> int:
        return self.addresses[0][1]

    @property
    def address(self) -> tuple[str, int]:
        """The first bound (host, port), as `SnmpAgent.address` says it."""
        return self.addresses[0]

    @property
    def communities(self) -> dict[str, MibDevice]:
        """Community -> device, as `SnmpAgent.communities` says it."""
        return {c.decode(): d for c, d in self.devices.items()}

    @property
    def v3_users(self) -> tuple[()]:
        """No per-site SNMPv3 users (`v3=True` serves the fixed benchmark user)."""
        return ()

    async def start(self, host: str = "127.0.0.1", port: int = 0, ports: int = 1) -> list[int]:
        """Bind `ports` UDP ports from `port` (0: any free ones); returns the bound ports."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for n in range(ports):
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
                sock.bind((host, port + n if port else 0))
                sock.setblocking(False)
                _, endpoint = await loop.create_datagram_endpoint(
                    lambda: _Endpoint(self), sock=sock
                )
            except BaseException:
                sock.close()
                self.close()
                raise
            self._endpoints.append(endpoint)
            bound = sock.getsockname()
            self.addresses.append((str(bound[0]), int(bound[1])))
            if self.v3:
                engine_id = new_engine_id(int(bound[1]))
                endpoint.engine = UsmEngine(engine_id, BENCH_V3, boots=self._engine_boots)
        return [p for _, p in self.addresses]

    @property
    def engines(self) -> list[UsmEngine]:
        """The SNMPv3 engine of each port (empty without `v3`)."""
        return [e.engine for e in self._endpoints if e.engine is not None]

    @property
    def engine_ids(self) -> list[str]:
        """Each port's SNMPv3 engine id, hex, in port order."""
        return [engine.engine_id.hex() for engine in self.engines]

    def reboot(self, *, new_engine_ids: bool = False) -> None:
        """Every engine restarts (boots + 1, time from 0); optionally as new engines."""
        for endpoint, (_, port) in zip(self._endpoints, self.addresses, strict=True):
            if endpoint.engine is not None:
                endpoint.engine.reboot(new_engine_id(port) if new_engine_ids else None)

    def close(self) -> None:
        for endpoint in self._endpoints:
            if endpoint.transport is not None:
                endpoint.transport.close()
        self._endpoints.clear()

    async def __aenter__(self) -> FastAgent:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def snapshot(self, community: bytes) -> EncodedSnapshot | None:
        """The device's encoded snapshot (cached `cache_s`), None if unknown or silent."""
        now = self._clock()
        cached = self._cache.get(community)
        if cached is not None and cached.expires > now:
            return cached
        device = self.devices.get(community)
        if device is None:
            return None
        try:
            table = device.snapshot()
        except Exception:
            self._cache.pop(community, None)
            return None  # a silent device (scenario) or a broken one: no answer
        encoded = self._cache[community] = EncodedSnapshot(table, now + self.cache_s)
        self.stats.snapshots += 1
        if now - self._purged > 10 * self.cache_s:  # forget snapshots nobody asks for
            self._purged = now
            self._cache = {c: s for c, s in self._cache.items() if s.expires > now}
        return encoded

    def answer(self, data: bytes, engine: UsmEngine | None = None) -> bytes | None:
        """The response to one request datagram, or None to stay silent.

        `engine` is the SNMPv3 engine of the port it came to (None: v1/v2c only).
        """
        self.stats.requests += 1
        if engine is not None and fv3.v3_msg_id(data) is not None:
            return self._answer_v3(data, engine)
        try:
            header = fc.decode_header(data)
            oids = fc.decode_request_oids(data, header)
        except fc.CodecError:
            self.stats.dropped += 1
            return None
        v1 = header.version == fc.VERSION_1
        if header.pdu_type == fc.GET_BULK and v1:
            self.stats.dropped += 1
            return None
        snap = self._serving(header)
        if snap is None:
            self.stats.dropped += 1
            return None
        status, index, body = _respond(snap, header, oids, v1)
        version, community, rid = header.version, header.community, header.request_id
        message = fc.encode_message(
            version, community, fc.RESPONSE,
            request_id=rid, error_status=status, error_index=index, varbinds=body,
        )  # fmt: skip
        if len(message) > MAX_RESPONSE:  # tooBig
            message = fc.encode_message(
                version, community, fc.RESPONSE,
                request_id=rid, error_status=1, error_index=0, varbinds=_echo(oids),
            )  # fmt: skip
        self.stats.answered += 1
        return message

    def _serving(self, header: fc.Header) -> EncodedSnapshot | None:
        """The snapshot that answers a request's PDU, None to stay silent."""
        if header.pdu_type not in (fc.GET, fc.GET_NEXT, fc.GET_BULK, fc.SET):
            return None
        return self.snapshot(header.community)

    def _answer_v3(self, data: bytes, engine: UsmEngine) -> bytes | None:
        opened = engine.open(data)
        if not isinstance(opened, V3Request):
            if opened is None:
                self.stats.dropped += 1
            else:
                self.stats.reports += 1
            return opened
        header = opened.scoped.header
        try:
            oids = request_oids(opened)
        except fc.CodecError:
            self.stats.dropped += 1
            return None
        if header.community not in self.devices:  # the context name names no device
            report = engine.report(opened, fv3.UNKNOWN_CONTEXTS)
            self.stats.reports += report is not None
            return report
        snap = self._serving(header)
        if snap is None:
            self.stats.dropped += 1
            return None
        if opened.message.flags & fv3.FLAG_PRIV:
            status, index, body = _respond(snap, header, oids, v1=False)
        else:  # the bench user may only read at authPriv (VACM, as net-snmp's rouser ... priv)
            status, index, body = _AUTHORIZATION_ERROR, 0, _echo(oids)
        rid = header.request_id
        pdu = fc.encode_pdu(
            fc.RESPONSE, request_id=rid, error_status=status, error_index=index, varbinds=body
        )
        message = engine.seal(opened, pdu)
        if len(message) > MAX_RESPONSE:  # tooBig
            pdu = fc.encode_pdu(
                fc.RESPONSE, request_id=rid, error_status=1, error_index=0, varbinds=_echo(oids)
            )
            message = engine.seal(opened, pdu)
        self.stats.answered += 1
        return message


def _respond(
    snap: EncodedSnapshot, header: fc.Header, oids: Sequence[Oid], v1: bool
) -> tuple[int, int, bytes]:
    """(error-status, error-index, var-binds) answering a GET/GETNEXT/GETBULK/SET."""
    status = index = 0
    if header.pdu_type == fc.SET:
        status, index = (_NO_SUCH_NAME if v1 else _NOT_WRITABLE), 1
        body = b""
    elif header.pdu_type == fc.GET:
        body, status, index = _get(snap, oids, v1)
    elif header.pdu_type == fc.GET_NEXT:
        body, status, index = _get_next(snap, oids, v1)
    else:
        body = _get_bulk(snap, oids, header.error_status, header.error_index)
    if status:
        body = _echo(oids)
    return status, index, body


def _echo(oids: Sequence[Oid]) -> bytes:
    return b"".join(fc.request_varbind(oid) for oid in oids)


def _absent(oid: Oid, why: Absent) -> bytes:
    return fc.tlv(fc.SEQUENCE, _oid_tlv(oid) + fc.encode_value(why))


def _get(snap: EncodedSnapshot, oids: Sequence[Oid], v1: bool) -> tuple[bytes, int, int]:
    out = []
    known, varbinds = snap.oids, snap.varbinds
    for n, oid in enumerate(oids, start=1):
        i = bisect.bisect_left(known, oid)
        if i < len(known) and known[i] == oid and not (v1 and i in snap.counter64):
            out.append(varbinds[i])
            continue
        if v1:
            return b"", _NO_SUCH_NAME, n
        missing = snap.table.get(oid)
        out.append(
            _absent(
                oid, _MISSING[missing] if isinstance(missing, Missing) else Absent.NO_SUCH_OBJECT
            )
        )
    return b"".join(out), 0, 0


def _get_next(snap: EncodedSnapshot, oids: Sequence[Oid], v1: bool) -> tuple[bytes, int, int]:
    out = []
    known, varbinds = snap.oids, snap.varbinds
    for n, oid in enumerate(oids, start=1):
        i = bisect.bisect_right(known, oid)
        if v1:  # SNMPv1 GETNEXT skips what it cannot carry (RFC 2576 4.1.2.1)
            while i in snap.counter64:
                i += 1
        if i < len(known):
            out.append(varbinds[i])
        elif v1:
            return b"", _NO_SUCH_NAME, n
        else:
            out.append(_absent(oid, Absent.END_OF_MIB_VIEW))
    return b"".join(out), 0, 0


def _get_bulk(
    snap: EncodedSnapshot, oids: Sequence[Oid], non_repeaters: int, max_repetitions: int
) -> bytes:
    """RFC 3416 4.2.3; stops once every repeater is past the end (no padding rows)."""
    known, varbinds = snap.oids, snap.varbinds
    count = len(known)
    n = min(max(non_repeaters, 0), len(oids))
    out: list[bytes] = []
    size = 0
    for oid in oids[:n]:
        i = bisect.bisect_right(known, oid)
        out.append(varbinds[i] if i < count else _absent(oid, Absent.END_OF_MIB_VIEW))
    repeaters = oids[n:]
    if not repeaters:
        return b"".join(out)
    cursors = [bisect.bisect_right(known, oid) for oid in repeaters]
    starts = list(cursors)
    size = sum(map(len, out))
    for _ in range(min(max(max_repetitions, 0), MAX_REPETITIONS)):
        ended = all(c >= count for c in cursors)
        row = []
        for j, c in enumerate(cursors):
            if c < count:
                row.append(varbinds[c])
                cursors[j] = c + 1
            else:  # named after the last instance this column returned, as in RFC 3416 4.2.3
                last = known[c - 1] if c > starts[j] else repeaters[j]
                row.append(_absent(last, Absent.END_OF_MIB_VIEW))
        row_size = sum(map(len, row))
        if size + row_size > MAX_RESPONSE - 200:
            break  # whole rows only, and the response stays one datagram
        size += row_size
        out.extend(row)
        if ended:
            break  # one row of endOfMibView says it all
    return b"".join(out)


# --- the benchmark fleet ----------------------------------------------------------

SYSTEM: Oid = (1, 3, 6, 1, 2, 1, 1)
OUTLET_SWITCHED_STATUS: Oid = (*RPDU2, 9, 2, 3, 1)
SENSOR_TH_STATUS: Oid = (*RPDU2, 10, 2, 2, 1)
AKCP_TEMP: Oid = (1, 3, 6, 1, 4, 1, 3854, 1, 2, 2, 1, 16, 1)
AKCP_HUMIDITY: Oid = (1, 3, 6, 1, 4, 1, 3854, 1, 2, 2, 1, 17, 1)


@dataclass(frozen=True, slots=True)
class FleetDevice:
    """One device of the benchmark fleet: what the monitor's inventory needs."""

    id: str
    kind: str
    profile: str
    community: str


def _system(t: TableBuilder, name: str, sys_object_id: Oid, uptime_s: float, descr: str) -> None:
    t.scalar((*SYSTEM, 1), OctetString(descr))
    t.scalar((*SYSTEM, 2), ObjectIdentifier(sys_object_id))
    t.scalar((*SYSTEM, 3), TimeTicks(int(uptime_s * 100) % 2**32))
    t.scalar((*SYSTEM, 5), OctetString(name))


class SyntheticRackPdu:
    """An APC rPDU2 rack PDU (AP8xxx): device, 3 phases, 6 banks, 24 metered+switched
    outlets and one temperature/humidity probe, with loads that drift over time.

    The hall model's `ApcRpdu2Device` needs a whole simulated hall; this one stands
    alone so thousands fit in one process, and follows the same MIB.
    """

    outlets = 24
    banks = 6

    def __init__(self, name: str, seed: int, clock: Callable[[], float] = time.time) -> None:
        self._name = name
        self._clock = clock
        rng = random.Random(seed)
        self._phase = rng.uniform(0, 2 * math.pi)
        self._outlet_w = [rng.uniform(50, 400) for _ in range(self.outlets)]
        self._on = [rng.random() > 0.05 for _ in range(self.outlets)]
        self._energy0 = rng.uniform(1e3, 1e5)
        self._started = clock()
        self._labels = [OctetString(f"Outlet {o + 1}") for o in range(self.outlets)]

    @property
    def name(self) -> str:
        return self._name

    def snapshot(self) -> OidTable:
        now = self._clock()
        swing = 1.0 + 0.1 * math.sin(now / 300.0 + self._phase)
        watts = [w * swing if on else 0.0 for w, on in zip(self._outlet_w, self._on, strict=True)]
        amps = [w / 230.0 for w in watts]
        total = sum(watts)
        t = TableBuilder()
        _system(
            t,
            self._name,
            (1, 3, 6, 1, 4, 1, 318, 1, 3, 4, 5),
            now - self._started,
            "APC Rack PDU (synthetic)",
        )
        one = (1,)
        for col, value in (
            (1, Integer32(1)),
            (2, Integer32(1)),
            (3, OctetString(self._name)),
            (4, Integer32(2)),
            (5, Integer32(round(total / 10))),
            (9, Integer32(round((self._energy0 + total * (now - self._started) / 3.6e6) * 10))),
            (16, Integer32(round(total / 0.95 / 10))),
            (17, Integer32(95)),
        ):
            t.cell((*DEVICE_STATUS, col), one, value)
        per_bank = self.outlets // self.banks
        bank_a = [sum(amps[b * per_bank : (b + 1) * per_bank]) for b in range(self.banks)]
        for p in range(3):
            idx = (p + 1,)
            phase_a = bank_a[2 * p] + bank_a[2 * p + 1]
            t.cell((*PHASE_STATUS, 1), idx, Integer32(p + 1))
            t.cell((*PHASE_STATUS, 2), idx, Integer32(1))
            t.cell((*PHASE_STATUS, 3), idx, Integer32(p + 1))
            t.cell((*PHASE_STATUS, 4), idx, Integer32(2))
            t.cell((*PHASE_STATUS, 5), idx, Integer32(round(phase_a * 10)))
            t.cell((*PHASE_STATUS, 6), idx, Integer32(230))
            t.cell((*PHASE_STATUS, 7), idx, Integer32(round(phase_a * 230 / 10)))
        for b in range(self.banks):
            idx = (b + 1,)
            t.cell((*BANK_STATUS, 1), idx, Integer32(b + 1))
            t.cell((*BANK_STATUS, 2), idx, Integer32(1))
            t.cell((*BANK_STATUS, 3), idx, Integer32(b + 1))
            t.cell((*BANK_STATUS, 4), idx, Integer32(2))
            t.cell((*BANK_STATUS, 5), idx, Integer32(round(bank_a[b] * 10)))
        for o in range(self.outlets):
            idx = (o + 1,)
            label = self._labels[o]
            t.cell((*OUTLET_METERED_STATUS, 1), idx, Integer32(o + 1))
            t.cell((*OUTLET_METERED_STATUS, 3), idx, label)
            t.cell((*OUTLET_METERED_STATUS, 6), idx, Integer32(round(amps[o] * 10)))
            t.cell((*OUTLET_METERED_STATUS, 7), idx, Integer32(round(watts[o])))
            t.cell((*OUTLET_METERED_STATUS, 11), idx, Integer32(round(self._energy0 / 24 * 10)))
            t.cell((*OUTLET_SWITCHED_STATUS, 1), idx, Integer32(o + 1))
            t.cell((*OUTLET_SWITCHED_STATUS, 3), idx, label)
            t.cell((*OUTLET_SWITCHED_STATUS, 5), idx, Integer32(2 if self._on[o] else 1))
        t.cell((*SENSOR_TH_STATUS, 1), one, Integer32(1))
        t.cell((*SENSOR_TH_STATUS, 3), one, OctetString("Rack inlet"))
        t.cell(
            (*SENSOR_TH_STATUS, 8),
            one,
            Integer32(round(220 + 20 * math.sin(now / 600 + self._phase))),
        )
        t.cell((*SENSOR_TH_STATUS, 10), one, Integer32(45))
        return t.build()


class SyntheticSensorProbe:
    """An AKCP sensorProbe (SPAGENT-MIB) with two temperature and two humidity probes."""

    def __init__(self, name: str, seed: int, clock: Callable[[], float] = time.time) -> None:
        self._name = name
        self._clock = clock
        self._phase = random.Random(seed).uniform(0, 2 * math.pi)
        self._started = clock()

    @property
    def name(self) -> str:
        return self._name

    def snapshot(self) -> OidTable:
        now = self._clock()
        t = TableBuilder()
        _system(
            t,
            self._name,
            (1, 3, 6, 1, 4, 1, 3854, 1),
            now - self._started,
            "sensorProbe2 (synthetic)",
        )
        for n in (1, 2):
            idx = (n - 1,)
            wave = math.sin(now / 600 + self._phase + n)
            t.cell((*AKCP_TEMP, 1), idx, OctetString(f"Temp {n}"))
            t.cell((*AKCP_TEMP, 5), idx, Integer32(1))
            t.cell((*AKCP_TEMP, 12), idx, Integer32(1))
            t.cell((*AKCP_TEMP, 14), idx, Integer32(round(230 + 30 * wave)))
            t.cell((*AKCP_HUMIDITY, 1), idx, OctetString(f"Humidity {n}"))
            t.cell((*AKCP_HUMIDITY, 3), idx, Integer32(round(45 + 5 * wave)))
            t.cell((*AKCP_HUMIDITY, 5), idx, Integer32(1))
        return t.build()


def fleet(count: int) -> list[FleetDevice]:
    """The benchmark fleet: per 20 devices 17 rack PDUs, 2 sensor probes, 1 UPS."""
    out = []
    for n in range(count):
        slot = n % 20
        if slot == 19:
            kind, profile = "ups", "ups-mib-rfc1628"
        elif slot >= 17:
            kind, profile = "sensor", "akcp-sensorprobe"
        else:
            kind, profile = "pdu", "apc-rpdu2"
        device_id = f"{kind}-{n:05d}"
        out.append(FleetDevice(device_id, kind, profile, f"c-{device_id}"))
    return out


def fleet_devices(devices: Sequence[FleetDevice]) -> dict[str, MibDevice]:
    """The simulated devices of a fleet, by community."""
    from dcim.clock import SimClock
    from simulators.ups import UpsModel
    from simulators.ups_mib import UpsDevice

    clock = SimClock()
    out: dict[str, MibDevice] = {}
    for n, d in enumerate(devices):
        if d.kind == "ups":
            model = UpsModel(rated_va=20000.0, rated_w=18000.0, seed=n)
            out[d.community] = UpsDevice(d.id, model, clock)
        elif d.kind == "sensor":
            out[d.community] = SyntheticSensorProbe(d.id, n)
        else:
            out[d.community] = SyntheticRackPdu(d.id, n)
    return out


async def _main(args: argparse.Namespace) -> int:
    agent = FastAgent(fleet_devices(fleet(args.devices)), cache_s=args.cache_s, v3=args.v3)
    ports = await agent.start(args.host, args.port, args.ports)
    ready: dict[str, Any] = {"host": args.host, "ports": ports, "devices": args.devices}
    if args.v3:
        ready["engine_ids"] = agent.engine_ids
    print(json.dumps(ready), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        agent.close()
        print(json.dumps({"stats": agent.stats.__dict__}), file=sys.stderr, flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ports", type=int, default=1)
    parser.add_argument("--cache-s", type=float, default=1.0)
    parser.add_argument(
        "--v3",
        action="store_true",
        help=f"also answer SNMPv3 authPriv as user {BENCH_V3_USER!r} (SHA-256/AES-128), "
        "the device chosen by contextName = its community",
    )
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_main(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
