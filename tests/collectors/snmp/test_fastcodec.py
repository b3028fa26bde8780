"""The lean SNMP codec against pysnmp/pyasn1 as oracle, and the client on real UDP."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api
from pysnmp.proto.rfc1902 import (
    Counter32,
    Counter64,
    Gauge32,
    Integer32,
    IpAddress,
    ObjectIdentifier,
    OctetString,
    Opaque,
    TimeTicks,
)
from pysnmp.proto.rfc1905 import endOfMibView, noSuchInstance, noSuchObject

from collectors.registry import CollectorFactory
from collectors.snmp import fastcodec as fc
from collectors.snmp.client import SnmpHost
from collectors.snmp.collector import SnmpCollector
from collectors.snmp.communitysession import CommunitySession
from collectors.snmp.transport import OUTSTANDING_FACTOR, SLOT_HOLD_S
from collectors.snmp.traps import to_python
from collectors.snmp.types import Absent, SnmpStatusError, VarBind
from dcim.clock import SimClock
from dcim.errors import DeviceAuthError, DeviceTimeoutError
from dcim.inventory import DeviceConfig, PlacedDevice, SnmpConfig
from simulators.fast_agent import FastAgent
from simulators.mib import OidTable, TableBuilder
from simulators.snmp_agent import SnmpAgent, serve
from simulators.ups import UpsModel
from simulators.ups_mib import UpsDevice
from tests.support.pysnmp_oracle import PysnmpHost

V1 = api.PROTOCOL_MODULES[api.SNMP_VERSION_1]
V2 = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]

# --- strategies --------------------------------------------------------------

arcs = st.one_of(
    st.integers(0, 127),
    st.integers(128, 2**14),
    st.integers(0, 2**32 - 1),
)
oids = st.one_of(
    st.tuples(st.integers(0, 1), st.integers(0, 39)),
    st.tuples(st.just(2), st.integers(0, 2**20)),
).flatmap(lambda head: st.lists(arcs, min_size=0, max_size=20).map(lambda tail: (*head, *tail)))
communities = st.binary(min_size=0, max_size=40)
request_ids = st.integers(fc.REQUEST_ID_MIN, fc.REQUEST_ID_MAX)

smi_values = st.one_of(
    st.integers(-(2**31), 2**31 - 1).map(Integer32),
    st.binary(max_size=300).map(OctetString),
    st.integers(0, 2**32 - 1).map(Counter32),
    st.integers(0, 2**32 - 1).map(Gauge32),
    st.integers(0, 2**32 - 1).map(TimeTicks),
    st.integers(0, 2**64 - 1).map(Counter64),
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: IpAddress(bytes(t))),
    st.binary(max_size=20).map(Opaque),
    oids.map(ObjectIdentifier),
    st.sampled_from([noSuchObject, noSuchInstance, endOfMibView]),
)


def pysnmp_request(  # noqa: PLR0917 - mirrors the message's fields in order
    version: int,
    community: bytes,
    pdu_type: int,
    request_id: int,
    names: list[tuple[int, ...]],
    non_repeaters: int = 0,
    max_repetitions: int = 0,
) -> bytes:
    module = V1 if version == 0 else V2
    if pdu_type == fc.GET:
        pdu = module.GetRequestPDU()
    elif pdu_type == fc.GET_NEXT:
        pdu = module.GetNextRequestPDU()
    else:
        pdu = V2.GetBulkRequestPDU()
    api_pdu: Any = V2.apiBulkPDU if pdu_type == fc.GET_BULK else module.apiPDU
    api_pdu.set_defaults(pdu)
    api_pdu.set_request_id(pdu, request_id)
    if pdu_type == fc.GET_BULK:
        api_pdu.set_non_repeaters(pdu, non_repeaters)
        api_pdu.set_max_repetitions(pdu, max_repetitions)
    api_pdu.set_varbinds(pdu, [(name, module.Null("")) for name in names])
    message = module.Message()
    module.apiMessage.set_defaults(message)
    module.apiMessage.set_community(message, community)
    module.apiMessage.set_pdu(message, pdu)
    return bytes(encoder.encode(message))


def pysnmp_response(
    community: bytes, request_id: int, status: int, index: int, var_binds: list[tuple[Any, Any]]
) -> bytes:
    pdu = V2.ResponsePDU()
    V2.apiPDU.set_defaults(pdu)
    V2.apiPDU.set_request_id(pdu, request_id)
    V2.apiPDU.set_error_status(pdu, status)
    V2.apiPDU.set_error_index(pdu, index)
    V2.apiPDU.set_varbinds(pdu, var_binds)
    message = V2.Message()
    V2.apiMessage.set_defaults(message)
    V2.apiMessage.set_community(message, community)
    V2.apiMessage.set_pdu(message, pdu)
    return bytes(encoder.encode(message))


# --- requests ------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    version=st.sampled_from([0, 1]),
    community=communities,
    pdu_type=st.sampled_from([fc.GET, fc.GET_NEXT, fc.GET_BULK]),
    request_id=request_ids,
    names=st.lists(oids, min_size=1, max_size=60),
    non_repeaters=st.integers(0, 10),
    max_repetitions=st.integers(0, 200),
)
def test_requests_are_byte_identical_to_pysnmp(
    *,
    version: int,
    community: bytes,
    pdu_type: int,
    request_id: int,
    names: list[tuple[int, ...]],
    non_repeaters: int,
    max_repetitions: int,
) -> None:
    if pdu_type == fc.GET_BULK:
        version = 1  # GETBULK exists from SNMPv2c on
    else:
        non_repeaters = max_repetitions = 0
    template = fc.request_template(
        version,
        community,
        pdu_type,
        names,
        non_repeaters=non_repeaters,
        max_repetitions=max_repetitions,
    )
    ours = template.build(request_id)
    expected = pysnmp_request(
        version, community, pdu_type, request_id, names, non_repeaters, max_repetitions
    )
    assert ours == expected
    # and our decoder reads back what was asked
    header = fc.decode_header(ours)
    assert (header.version, header.community, header.pdu_type) == (version, community, pdu_type)
    assert header.request_id == request_id
    assert fc.decode_request_oids(ours, header) == names


def test_one_template_serves_every_request_id() -> None:
    template = fc.request_template(1, b"public", fc.GET, [(1, 3, 6, 1, 2, 1, 1, 3, 0)])
    for request_id in (fc.REQUEST_ID_MIN, 0x00FFFFFF, 0x01000000, fc.REQUEST_ID_MAX):
        assert template.build(request_id) == pysnmp_request(
            1, b"public", fc.GET, request_id, [(1, 3, 6, 1, 2, 1, 1, 3, 0)]
        )


# --- responses -------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    community=communities,
    request_id=st.integers(-(2**31), 2**31 - 1),
    status=st.integers(0, 18),
    index=st.integers(0, 60),
    var_binds=st.lists(st.tuples(oids, smi_values), max_size=50),
)
def test_responses_decode_like_pysnmp(
    community: bytes,
    request_id: int,
    status: int,
    index: int,
    var_binds: list[tuple[tuple[int, ...], Any]],
) -> None:
    data = pysnmp_response(community, request_id, status, index, var_binds)
    # the oracle: pysnmp's own decoding, converted the way the pysnmp session converts
    message, _ = decoder.decode(data, asn1Spec=V2.Message())
    pdu = V2.apiMessage.get_pdu(message)
    expected = [
        VarBind(tuple(name), to_python(value)) for name, value in V2.apiPDU.get_varbinds(pdu)
    ]
    got = fc.decode_response(data)
    assert got.var_binds == expected
    header = got.header
    assert header.community == community
    assert header.pdu_type == fc.RESPONSE
    # raw components: pysnmp's getters refuse an error-index beyond the var-binds
    assert (header.request_id, header.error_status, header.error_index) == (
        int(pdu[0]),
        int(pdu[1]),
        int(pdu[2]),
    )
    # types the collector relies on
    for vb in got.var_binds:
        assert isinstance(vb.value, int | bytes | str | Absent)


@settings(max_examples=300, deadline=None)
@given(
    version=st.sampled_from([0, 1]),
    community=communities,
    request_id=st.integers(-(2**31), 2**31 - 1),
    status=st.integers(0, 18),
    index=st.integers(0, 60),
    var_binds=st.lists(st.tuples(oids, smi_values), max_size=50),
)
def test_agent_responses_are_byte_identical_to_pysnmp(
    *,
    version: int,
    community: bytes,
    request_id: int,
    status: int,
    index: int,
    var_binds: list[tuple[tuple[int, ...], Any]],
) -> None:
    if version == 0:  # SNMPv1 has none of the v2 types
        var_binds = [
            (n, v) for n, v in var_binds if not isinstance(v, Counter64) and v.tagSet[-1][0] != 128
        ]
    body = b"".join(fc.encode_varbind(name, value) for name, value in var_binds)
    ours = fc.encode_message(
        version,
        community,
        fc.RESPONSE,
        request_id=request_id,
        error_status=status,
        error_index=index,
        varbinds=body,
    )
    module = V1 if version == 0 else V2
    pdu = module.GetResponsePDU() if version == 0 else V2.ResponsePDU()
    module.apiPDU.set_defaults(pdu)
    module.apiPDU.set_request_id(pdu, request_id)
    module.apiPDU.set_error_status(pdu, status)
    module.apiPDU.set_error_index(pdu, index)
    module.apiPDU.set_varbinds(pdu, var_binds)
    message = module.Message()
    module.apiMessage.set_defaults(message)
    module.apiMessage.set_community(message, community)
    module.apiMessage.set_pdu(message, pdu)
    theirs = bytes(encoder.encode(message))
    # pysnmp decodes our message to the same thing it would have sent
    ours_decoded, rest = decoder.decode(ours, asn1Spec=module.Message())
    assert not rest
    theirs_decoded, _ = decoder.decode(theirs, asn1Spec=module.Message())
    assert ours_decoded == theirs_decoded
    # and the bytes are the same, except that pyasn1 spends a needless 0xff octet on
    # -2**(8k-1) (-128, -32768...), where X.690's minimal form is ours
    integers = [
        request_id,
        *(int(v) for _, v in var_binds if v.tagSet[-1][0] == 0 and v.tagSet[-1][2] == 2),
    ]
    if not any(i < 0 and (-i) & (-i - 1) == 0 and (-i).bit_length() % 8 == 0 for i in integers):
        assert ours == theirs


def test_plain_python_values_encode_as_their_smi_types() -> None:
    assert fc.encode_value(-5) == bytes(encoder.encode(Integer32(-5)))
    assert fc.encode_value(b"x") == bytes(encoder.encode(OctetString(b"x")))
    assert fc.encode_value("ü") == bytes(encoder.encode(OctetString("ü".encode())))
    assert fc.encode_value((1, 3, 6, 1)) == bytes(encoder.encode(ObjectIdentifier((1, 3, 6, 1))))
    assert fc.encode_value(Absent.END_OF_MIB_VIEW) == b"\x82\x00"
    with pytest.raises(fc.CodecError):
        fc.encode_value(True)


@settings(max_examples=200, deadline=None)
@given(
    var_binds=st.lists(st.tuples(oids, smi_values), min_size=1, max_size=10),
    cut=st.integers(0, 10_000),
    flip=st.integers(0, 10_000),
)
def test_damaged_messages_raise_codec_error_only(
    var_binds: list[tuple[tuple[int, ...], Any]], cut: int, flip: int
) -> None:
    data = pysnmp_response(b"public", 12345678, 0, 0, var_binds)
    truncated = data[: cut % len(data)]
    with pytest.raises(fc.CodecError):
        fc.decode_response(truncated)
    damaged = bytearray(data)
    damaged[flip % len(data)] ^= 0xFF
    with contextlib.suppress(fc.CodecError):
        fc.decode_response(bytes(damaged))


def test_not_v1_v2c_is_refused() -> None:
    data = bytearray(pysnmp_response(b"public", 1, 0, 0, []))
    data[4] = 3  # version field: SNMPv3
    with pytest.raises(fc.CodecError, match="not SNMPv1/v2c"):
        fc.decode_header(bytes(data))


# --- the fast client on real UDP: the pysnmp agent as peer -------------------------------

UPS = (1, 3, 6, 1, 2, 1, 33, 1)


class Table:
    """A small device: scalars, a 30-row table, a string and a counter."""

    name = "tbl"

    def snapshot(self) -> OidTable:
        t = TableBuilder()
        t.scalar((*UPS, 4, 1), Integer32(3))
        t.scalar((*UPS, 2, 7), Integer32(-4))
        t.scalar((*UPS, 3, 1), Counter32(2**32 - 1))
        t.scalar((1, 3, 6, 1, 2, 1, 1, 5), OctetString(b"ups\xff name"))
        t.scalar((1, 3, 6, 1, 2, 1, 1, 2), ObjectIdentifier((1, 3, 6, 1, 4, 1, 318)))
        for row in range(1, 31):
            t.cell((*UPS, 4, 4, 1, 2), (row,), Integer32(200 + row))
        return t.build()


@pytest.fixture
async def agent() -> AsyncIterator[SnmpAgent]:
    ups = UpsDevice("ups1", UpsModel(rated_va=10000.0, rated_w=9000.0, seed=7), SimClock())
    agent = await serve({"public-ups": ups, "tbl": Table()}, "127.0.0.1", 0)
    yield agent
    agent.close()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def config(port: int, **extra: Any) -> SnmpConfig:
    return SnmpConfig.model_validate({"host": "127.0.0.1", "port": port, **extra})


async def session(host: SnmpHost, port: int, **extra: Any) -> CommunitySession:
    made = await host.session("dev", config(port, **{"community": "tbl", **extra}))
    assert isinstance(made, CommunitySession)
    return made


async def test_fast_client_get_next_bulk_against_pysnmp_agent(agent: SnmpAgent) -> None:
    host = SnmpHost()
    try:
        s = await session(host, agent.port)
        names = [
            (*UPS, 4, 1, 0),
            (*UPS, 2, 7, 0),
            (*UPS, 3, 1, 0),
            (1, 3, 6, 1, 2, 1, 1, 5, 0),
            (1, 3, 6, 1, 2, 1, 1, 2, 0),
            (*UPS, 4, 4, 1, 2, 99),
            (1, 3, 6, 1, 9),
        ]
        got = await s.get(names)
        assert [vb.value for vb in got] == [
            3,
            -4,
            2**32 - 1,
            b"ups\xff name",
            "1.3.6.1.4.1.318",
            Absent.NO_SUCH_INSTANCE,
            Absent.NO_SUCH_OBJECT,
        ]
        nxt = await s.get_next([(*UPS, 4, 4, 1, 2)])
        assert nxt == [VarBind((*UPS, 4, 4, 1, 2, 1), 201)]
        bulk = await s.get_bulk([(*UPS, 4, 4, 1, 2)], 40)
        assert [vb.value for vb in bulk[:30]] == [200 + r for r in range(1, 31)]
        assert bulk[-1].value is Absent.END_OF_MIB_VIEW
        # many requests at once share the socket: every answer finds its request
        answers = await asyncio.gather(*(s.get([(*UPS, 4, 4, 1, 2, r)]) for r in range(1, 31)))
        assert [a[0].value for a in answers] == [200 + r for r in range(1, 31)]
    finally:
        host.close()


async def test_fast_client_v1_error_status(agent: SnmpAgent) -> None:
    host = SnmpHost()
    try:
        s = await session(host, agent.port, version="v1")
        with pytest.raises(SnmpStatusError) as info:
            await s.get([(*UPS, 4, 1, 0), (1, 3, 6, 1, 9, 0)])
        assert (info.value.status, info.value.index) == (2, 2)
    finally:
        host.close()


async def test_fast_client_timeout_and_wrong_community(agent: SnmpAgent) -> None:
    host = SnmpHost()
    try:
        dead = await session(host, free_udp_port(), timeout_s=0.2, retries=1)
        started = asyncio.get_running_loop().time()
        with pytest.raises(DeviceTimeoutError, match="2 tries"):
            await dead.get([(1, 3, 6, 1, 2, 1, 1, 5, 0)])
        assert asyncio.get_running_loop().time() - started >= 0.39
        wrong = await session(host, agent.port, community="nope", timeout_s=0.2, retries=0)
        with pytest.raises(DeviceAuthError, match="wrong_community"):
            await wrong.get([(1, 3, 6, 1, 2, 1, 1, 5, 0)])
    finally:
        host.close()


def placed(snmp: dict[str, Any], device_id: str = "ups-1") -> PlacedDevice:
    device = DeviceConfig.model_validate(
        {"id": device_id, "kind": "ups", "profile": "ups-mib-rfc1628", "snmp": snmp}
    )
    tags = MappingProxyType({"site": "dc1", "device": device_id, "kind": "ups"})
    return PlacedDevice(device, "dc1", "hall", "", "", tags)


@pytest.mark.parametrize("version", ["v1", "v2c"])
async def test_collector_reads_the_same_through_both_clients(
    agent: SnmpAgent, version: str
) -> None:
    """The monitor's collector through the production client and through pysnmp (the oracle)."""
    snmp = {"host": "127.0.0.1", "port": agent.port, "community": "public-ups", "version": version}
    device = placed(snmp)
    assert device.device.snmp is not None
    plan = CollectorFactory().snmp_plan(device.device.profile)
    readings = {}
    for name, host in (("pysnmp", PysnmpHost()), ("ours", SnmpHost())):
        try:
            collector = SnmpCollector(device, plan, host, device.device.snmp)
            async with collector:
                got = await collector.poll()
        finally:
            host.close()
        readings[name] = {(r.metric, tuple(sorted(r.tags.items()))): (r.value, r.unit) for r in got}
    ours, oracle = readings["ours"], readings["pysnmp"]
    assert ours.keys() == oracle.keys()
    assert len(ours) >= 19
    for key, (value, unit) in oracle.items():
        our_value, our_unit = ours[key]
        assert our_unit == unit
        assert type(our_value) is type(value)
        if isinstance(value, float):  # the UPS model moves between the two polls
            assert our_value == pytest.approx(value, rel=0.05, abs=1)
        elif key[0] not in {"ups.battery_runtime_s", "ups.on_battery_s"}:
            assert our_value == value, key


# --- in-flight slots: dead devices must not starve live ones ------------------------------

SYS_NAME = [(1, 3, 6, 1, 2, 1, 1, 5, 0)]


async def test_dead_devices_do_not_starve_live_ones() -> None:
    """300 devices that never answer (nothing listens on their ports) and one live device.

    All share one socket with 100 in-flight slots. Before, each dead request held
    its slot for its whole timeout, so the live device waited behind them.
    """
    live_agent = FastAgent({"tbl": Table()})
    await live_agent.start("127.0.0.1", 0)
    host = SnmpHost(max_in_flight=100, devices_per_socket=1000)
    loop = asyncio.get_running_loop()
    try:
        dead = [
            await host.session(
                f"dead-{n}", config(free_udp_port(), community="tbl", timeout_s=1.5, retries=0)
            )
            for n in range(300)
        ]
        live = await host.session("live", config(live_agent.port, community="tbl", retries=0))
        assert host.sockets == 1
        dead_polls = [asyncio.create_task(s.get(SYS_NAME)) for s in dead]
        await asyncio.sleep(0)  # one loop pass: each poll runs until it waits
        assert host.in_flight == 100  # every slot is taken by a dead device
        started = loop.time()
        for _ in range(5):
            assert (await live.get(SYS_NAME))[0].value == b"ups\xff name"
        elapsed = loop.time() - started
        assert not any(poll.done() for poll in dead_polls)  # still waiting for their timeout
        # the dead requests free their slots SLOT_HOLD_S after sending (3 rounds of 100)
        assert elapsed < 4 * SLOT_HOLD_S + 0.3
        results = await asyncio.gather(*dead_polls, return_exceptions=True)
        assert all(isinstance(r, DeviceTimeoutError) for r in results)
    finally:
        host.close()
        live_agent.close()


async def test_outstanding_requests_are_bounded_across_the_whole_host() -> None:
    """Requests that gave their slot back still count against a host-wide bound.

    Without it an agent that fell behind (or many dead devices) received an
    ever-growing pile of requests and retries; with it the pollers wait.
    """
    host = SnmpHost(max_in_flight=5, devices_per_socket=10)
    bound = OUTSTANDING_FACTOR * 5
    try:
        dead = [
            await host.session(
                f"dead-{n}", config(free_udp_port(), community="tbl", timeout_s=0.6, retries=0)
            )
            for n in range(60)
        ]
        assert host.sockets == 6  # the bound holds over sockets, not per socket
        polls = [asyncio.create_task(s.get(SYS_NAME)) for s in dead]
        peak = 0
        while not all(poll.done() for poll in polls):
            peak = max(peak, host.in_flight)
            await asyncio.sleep(SLOT_HOLD_S / 3)
        assert peak == bound  # reached, never passed
        results = await asyncio.gather(*polls, return_exceptions=True)
        assert all(isinstance(r, DeviceTimeoutError) for r in results)  # all tried, in turn
    finally:
        host.close()


class _SlowAgent(asyncio.DatagramProtocol):
    """Answers like the fast agent, but only after `delay_s`."""

    def __init__(self, agent: FastAgent, delay_s: float) -> None:
        self.agent = agent
        self.delay_s = delay_s
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        answer = self.agent.answer(data)
        if answer is not None:
            asyncio.get_running_loop().call_later(self.delay_s, self.transport.sendto, answer, addr)


async def test_an_answer_after_the_slot_was_given_back_still_counts() -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _SlowAgent(FastAgent({"tbl": Table()}), 3 * SLOT_HOLD_S),
        local_addr=("127.0.0.1", 0),
    )
    host = SnmpHost(max_in_flight=1)
    try:
        port = transport.get_extra_info("sockname")[1]
        slow = await host.session("slow", config(port, community="tbl", timeout_s=2.0, retries=0))
        started = loop.time()
        first = asyncio.create_task(slow.get(SYS_NAME))
        # a second request queues for the only slot, which the first gives back early
        second = asyncio.create_task(slow.get(SYS_NAME))
        answers = await asyncio.gather(first, second)
        assert [a[0].value for a in answers] == [b"ups\xff name"] * 2
        # both were in flight at once: well under two sequential delays
        assert loop.time() - started < 2 * 3 * SLOT_HOLD_S
    finally:
        host.close()
        transport.close()
