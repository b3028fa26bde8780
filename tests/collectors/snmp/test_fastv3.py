"""The SNMPv3 path: USM crypto and messages against pysnmp, the client against real agents.

Oracles: RFC 3414 A.3 key vectors; pysnmp's own USM services (the ones the
trap receiver picks for each config name) verify and decrypt what `fastv3`
builds and build what it must read; a real net-snmp `snmpd` answers the
client (and pysnmp, through `tests/pysnmp_oracle.py`, answers alike), and
net-snmp's `snmpget` polls the fast agent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pyasn1.codec.ber import decoder, encoder
from pyasn1.type import univ
from pysnmp.entity import config as pysnmp_config
from pysnmp.proto.api import v2c
from pysnmp.proto.mpmod.rfc3412 import ScopedPDU, SNMPv3Message
from pysnmp.proto.rfc1902 import Counter64, Integer32, OctetString
from pysnmp.proto.secmod.rfc3414.service import SnmpUSMSecurityModel, UsmSecurityParameters

from collectors.registry import CollectorFactory
from collectors.snmp import fastcodec as fc
from collectors.snmp import fastv3 as fv3
from collectors.snmp import usmcrypto
from collectors.snmp.client import SnmpHost
from collectors.snmp.traps import AUTH_PROTOCOLS, PRIV_PROTOCOLS
from collectors.snmp.types import SnmpSecurityError, SnmpStatusError, VarBind, parse_oid
from collectors.snmp.usmsession import UsmSession
from dcim.clock import SimClock
from dcim.errors import DeviceProtocolError, DeviceTimeoutError
from dcim.inventory import DeviceConfig, PlacedDevice, SnmpConfig
from simulators import snmp_agent
from simulators.fast_agent import (
    BENCH_V3_AUTH_KEY,
    BENCH_V3_PRIV_KEY,
    BENCH_V3_USER,
    FastAgent,
    fleet,
    fleet_devices,
)
from simulators.snmp_agent import V3User
from simulators.ups import UpsModel
from simulators.ups_mib import UpsDevice
from tests.support.pysnmp_oracle import PysnmpHost
from tests.support.snmpd import (
    NO_MIBS_ENV,
    SYS_DESCR,
    Snmpd,
    UsmUser,
    free_udp_port,
    require_binary,
)

AUTH_KEY = "auth-secret-4711"
PRIV_KEY = "priv-secret-0815"
ENGINE_ID = bytes.fromhex("80001f88046463696d30303031")
PYSNMP_ENGINE_ID = univ.OctetString(ENGINE_ID)

#: our config name -> net-snmp's name
AUTH = {
    "md5": "MD5",
    "sha": "SHA",
    "sha224": "SHA-224",
    "sha256": "SHA-256",
    "sha384": "SHA-384",
    "sha512": "SHA-512",
}
PRIV = {
    "des": "DES",
    "aes128": "AES",
    "aes192": "AES-192",
    "aes256": "AES-256",
    "aes192c": "AES-192-C",
    "aes256c": "AES-256-C",
}
ALL_PRIV = [*PRIV, "3des", "aes", "none"]
SYSTEM = [f"1.3.6.1.2.1.1.{n}.0" for n in (1, 2, 4, 5, 6)]


def assert_no_secret(exc: BaseException) -> None:
    for text in (str(exc), repr(exc)):
        for secret in (AUTH_KEY, PRIV_KEY, "wrong-key", BENCH_V3_AUTH_KEY, BENCH_V3_PRIV_KEY):
            assert secret not in text


# --- keys -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hash_name", "ku", "kul"),
    [
        (
            "md5",
            "9faf3283884e92834ebc9847d8edd963",
            "526f5eed9fcce26f8964c2930787d82b",
        ),
        (
            "sha1",
            "9fb5cc0381497b3793528939ff788d5d79145211",
            "6695febc9288e36282235fc7151f128497b38f3f",
        ),
    ],
)
def test_password_to_key_matches_rfc3414_a3(hash_name: str, ku: str, kul: str) -> None:
    key = usmcrypto.password_key(b"maplesyrup", hash_name)
    assert key.hex() == ku
    assert (
        usmcrypto.localize(key, bytes.fromhex("000000000000000000000002"), hash_name).hex() == kul
    )


def pysnmp_auth(name: str) -> Any:
    return SnmpUSMSecurityModel.AUTH_SERVICES[tuple(AUTH_PROTOCOLS[name])]


def pysnmp_priv(name: str) -> Any:
    return SnmpUSMSecurityModel.PRIV_SERVICES[tuple(PRIV_PROTOCOLS[name])]


def pysnmp_keys(auth: str, priv: str) -> tuple[bytes, bytes]:
    """(auth key, priv key) localized to ENGINE_ID by pysnmp's services."""
    auth_service = pysnmp_auth(auth)
    auth_key = auth_service.localize_key(auth_service.hash_passphrase(AUTH_KEY), PYSNMP_ENGINE_ID)
    if priv == "none":
        return bytes(auth_key), b""
    auth_id = tuple(AUTH_PROTOCOLS[auth])
    priv_service = pysnmp_priv(priv)
    ku = priv_service.hash_passphrase(auth_id, PRIV_KEY)
    return bytes(auth_key), bytes(priv_service.localize_key(auth_id, ku, PYSNMP_ENGINE_ID))


def our_keys(auth: str, priv: str) -> usmcrypto.UsmKeys:
    return usmcrypto.local_keys(auth, AUTH_KEY.encode(), priv, PRIV_KEY.encode(), ENGINE_ID)


@pytest.mark.parametrize("priv", ALL_PRIV)
@pytest.mark.parametrize("auth", list(AUTH))
def test_localized_keys_match_pysnmp(auth: str, priv: str) -> None:
    keys = our_keys(auth, priv)
    auth_key, priv_key = pysnmp_keys(auth, priv)
    assert keys.auth_key == auth_key
    # pysnmp's AES/3DES services may return more than the cipher uses; the prefix counts
    assert priv_key[: len(keys.priv_key)] == keys.priv_key
    assert len(keys.priv_key) == {
        "none": 0,
        "des": 16,
        "3des": 32,
        "aes192": 24,
        "aes192c": 24,
        "aes256": 32,
        "aes256c": 32,
    }.get(priv, 16)
    assert AUTH_KEY not in repr(keys)
    assert keys.auth_key.hex() not in repr(keys)


# --- messages against pysnmp ---------------------------------------------------------


def pysnmp_open(data: bytes, auth: str, priv: str) -> tuple[Any, Any, Any]:
    """(message, security parameters, scoped PDU) as pysnmp reads, verifies and decrypts them."""
    message, rest = decoder.decode(data, asn1Spec=SNMPv3Message())
    assert rest == b""
    params, _ = decoder.decode(
        bytes(message["msgSecurityParameters"]), asn1Spec=UsmSecurityParameters()
    )
    auth_key, priv_key = pysnmp_keys(auth, priv)
    pysnmp_auth(auth).authenticate_incoming_message(
        univ.OctetString(auth_key), params["msgAuthenticationParameters"], data
    )  # raises unless the digest is right
    if priv == "none":
        return message, params, message["msgData"]["plaintext"]
    plain = pysnmp_priv(priv).decrypt_data(
        univ.OctetString(priv_key),
        (
            params["msgAuthoritativeEngineBoots"],
            params["msgAuthoritativeEngineTime"],
            params["msgPrivacyParameters"],
        ),
        message["msgData"]["encryptedPDU"],
    )
    scoped, _ = decoder.decode(bytes(plain), asn1Spec=ScopedPDU())  # DES: padding follows
    return message, params, scoped


@pytest.mark.parametrize("priv", ALL_PRIV)
@pytest.mark.parametrize("auth", list(AUTH))
def test_requests_verify_and_decrypt_with_pysnmp(auth: str, priv: str) -> None:
    keys = our_keys(auth, priv)
    oids = ((1, 3, 6, 1, 2, 1, 1, 5, 0), (1, 3, 6, 1, 4, 1, 318, 1, 1, 26, 9, 4, 3, 1, 7))
    template = fv3.scoped_template(ENGINE_ID, b"c-pdu-00001", fc.GET_BULK, oids, max_repetitions=24)
    flags = fv3.FLAG_AUTH | fv3.FLAG_REPORTABLE | (0 if priv == "none" else fv3.FLAG_PRIV)
    data = fv3.encode_message(
        0x01234567,
        flags,
        engine_id=ENGINE_ID,
        boots=7,
        time=123_456,
        user=b"noc",
        keys=keys,
        scoped=template.build(0x01234567),
    )
    message, params, scoped = pysnmp_open(data, auth, priv)
    header = message["msgGlobalData"]
    assert int(header["msgID"]) == 0x01234567
    assert bytes(header["msgFlags"]) == bytes((flags,))
    assert int(header["msgSecurityModel"]) == 3
    assert bytes(params["msgAuthoritativeEngineId"]) == ENGINE_ID
    assert (
        int(params["msgAuthoritativeEngineBoots"]),
        int(params["msgAuthoritativeEngineTime"]),
    ) == (7, 123_456)
    assert bytes(params["msgUserName"]) == b"noc"
    assert bytes(scoped["contextEngineId"]) == ENGINE_ID
    assert bytes(scoped["contextName"]) == b"c-pdu-00001"
    pdu = scoped["data"]["get-bulk-request"]
    assert int(v2c.apiBulkPDU.get_request_id(pdu)) == 0x01234567
    assert int(v2c.apiBulkPDU.get_max_repetitions(pdu)) == 24
    assert [tuple(name) for name, _ in v2c.apiBulkPDU.get_varbinds(pdu)] == list(oids)


def pysnmp_response(auth: str, priv: str, msg_id: int, varbinds: list[tuple[Any, Any]]) -> bytes:
    """A RESPONSE built, encrypted and signed by pysnmp (an agent's view)."""
    pdu = v2c.ResponsePDU()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_request_id(pdu, msg_id)
    v2c.apiPDU.set_varbinds(pdu, varbinds)
    scoped = ScopedPDU()
    scoped["contextEngineId"] = ENGINE_ID
    scoped["contextName"] = b"ctx"
    scoped["data"]["response"] = pdu
    auth_key, priv_key = pysnmp_keys(auth, priv)
    auth_service = pysnmp_auth(auth)
    message = SNMPv3Message()
    message["msgVersion"] = 3
    header = message["msgGlobalData"]
    header["msgID"] = msg_id
    header["msgMaxSize"] = 65507
    header["msgFlags"] = b"\x01" if priv == "none" else b"\x03"
    header["msgSecurityModel"] = 3
    params = UsmSecurityParameters()
    params["msgAuthoritativeEngineId"] = ENGINE_ID
    params["msgAuthoritativeEngineBoots"] = 3
    params["msgAuthoritativeEngineTime"] = 99_999
    params["msgUserName"] = b"noc"
    params["msgAuthenticationParameters"] = bytes(auth_service.digest_length)
    if priv == "none":
        params["msgPrivacyParameters"] = b""
        message["msgData"]["plaintext"] = scoped
    else:
        encrypted, salt = pysnmp_priv(priv).encrypt_data(
            univ.OctetString(priv_key), (3, 99_999, None), encoder.encode(scoped)
        )
        params["msgPrivacyParameters"] = salt
        message["msgData"]["encryptedPDU"] = encrypted
    message["msgSecurityParameters"] = encoder.encode(params)
    whole = bytes(encoder.encode(message))
    return bytes(auth_service.authenticate_outgoing_message(univ.OctetString(auth_key), whole))


@pytest.mark.parametrize("priv", ALL_PRIV)
@pytest.mark.parametrize("auth", list(AUTH))
def test_pysnmp_responses_verify_and_decrypt(auth: str, priv: str) -> None:
    varbinds = [
        ((1, 3, 6, 1, 2, 1, 1, 5, 0), OctetString(b"pdu \xff 7")),
        ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 1), Counter64(2**64 - 1)),
        ((1, 3, 6, 1, 2, 1, 33, 1, 2, 7, 0), Integer32(-4)),
    ]
    data = pysnmp_response(auth, priv, 0x00ABCDEF, varbinds)
    keys = our_keys(auth, priv)
    assert fv3.v3_msg_id(data) == 0x00ABCDEF
    message = fv3.decode_message(data)
    assert (message.engine_id, message.boots, message.time) == (ENGINE_ID, 3, 99_999)
    assert fv3.authentic(data, message, keys)
    scoped = fv3.decode_scoped(fv3.scoped_plaintext(data, message, keys))
    assert scoped.context_name == b"ctx"
    assert scoped.header.pdu_type == fc.RESPONSE
    assert scoped.header.request_id == 0x00ABCDEF
    got = fc.decode_varbinds(
        scoped.plaintext, scoped.header.varbinds_start, scoped.header.varbinds_end
    )
    assert got == [
        VarBind((1, 3, 6, 1, 2, 1, 1, 5, 0), b"pdu \xff 7"),
        VarBind((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 1), 2**64 - 1),
        VarBind((1, 3, 6, 1, 2, 1, 33, 1, 2, 7, 0), -4),
    ]
    # one flipped bit anywhere but the digest fails the check
    tampered = bytearray(data)
    tampered[-3] ^= 0x01
    assert not fv3.authentic(bytes(tampered), fv3.decode_message(bytes(tampered)), keys)
    other = usmcrypto.local_keys(auth, b"another-key-0", priv, PRIV_KEY.encode(), ENGINE_ID)
    assert not fv3.authentic(data, message, other)


def test_discovery_probe_reads_as_pysnmp_builds_it() -> None:
    ours = fv3.discovery_probe(4711)
    message, _ = decoder.decode(ours, asn1Spec=SNMPv3Message())
    assert int(message["msgGlobalData"]["msgID"]) == 4711
    assert bytes(message["msgGlobalData"]["msgFlags"]) == b"\x04"
    params, _ = decoder.decode(
        bytes(message["msgSecurityParameters"]), asn1Spec=UsmSecurityParameters()
    )
    assert bytes(params["msgAuthoritativeEngineId"]) == b""
    assert bytes(params["msgUserName"]) == b""
    assert "get-request" in message["msgData"]["plaintext"]["data"]


def test_v1_v2c_messages_are_not_v3() -> None:
    request = fc.request_template(fc.VERSION_2C, b"public", fc.GET, [(1, 3, 6, 1, 2, 1, 1, 5, 0)])
    assert fv3.v3_msg_id(request.build(fc.REQUEST_ID_MIN)) is None
    assert fv3.v3_msg_id(b"\x30") is None
    with pytest.raises(fc.CodecError, match="not SNMPv3"):
        fv3.decode_message(request.build(fc.REQUEST_ID_MIN))


# --- the fast client against a real net-snmp snmpd ---------------------------------------


def user_name(auth: str, priv: str) -> str:
    return f"u-{auth}-{priv}"


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpd]:
    users = [
        UsmUser(user_name(auth, priv), AUTH[auth], AUTH_KEY, PRIV[priv], PRIV_KEY)
        for auth in AUTH
        for priv in PRIV
    ]
    users += [UsmUser(user_name(auth, "none"), AUTH[auth], AUTH_KEY) for auth in AUTH]
    server = Snmpd(
        require_binary("snmpd", "/usr/sbin/snmpd"), tmp_path_factory.mktemp("snmpd"), users=users
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def host() -> AsyncIterator[SnmpHost]:
    fast = SnmpHost()
    yield fast
    fast.close()


def v3_config(  # noqa: PLR0917 - the fields of a v3 section, in order
    port: int,
    user: str,
    auth: str,
    priv: str,
    auth_key: str = AUTH_KEY,
    priv_key: str = PRIV_KEY,
    context: str = "",
    timeout_s: float = 1.0,
) -> SnmpConfig:
    v3: dict[str, Any] = {"user": user, "auth_protocol": auth, "auth_key": auth_key}
    v3["priv_protocol"] = priv
    if priv != "none":
        v3["priv_key"] = priv_key
    v3["context_name"] = context
    snmp = {"host": "127.0.0.1", "port": port, "version": "v3", "v3": v3}
    return SnmpConfig.model_validate({**snmp, "timeout_s": timeout_s, "retries": 0})


async def values(session: Any, oids: list[str]) -> list[object]:
    return [vb.value for vb in await session.get([parse_oid(oid) for oid in oids])]


@pytest.mark.parametrize(
    ("auth", "priv"),
    [(auth, priv) for auth in AUTH for priv in [*PRIV, "none"]],
)
async def test_fast_client_polls_snmpd_like_pysnmp(
    snmpd: Snmpd, host: SnmpHost, auth: str, priv: str
) -> None:
    config = v3_config(snmpd.port, user_name(auth, priv), auth, priv)
    session = await host.session("ups-v3", config)
    assert isinstance(session, UsmSession)
    fast = await values(session, SYSTEM)
    slow_host = PysnmpHost()
    try:
        slow = await values(await slow_host.session("ups-v3", config), SYSTEM)
    finally:
        slow_host.close()
    assert fast == slow
    assert fast[0] == b"dcim test agent"
    walked = await session.get_bulk([(1, 3, 6, 1, 2, 1, 1)], 8)
    assert walked[0] == VarBind((1, 3, 6, 1, 2, 1, 1, 1, 0), b"dcim test agent")
    assert len(walked) == 8


async def test_wrong_credentials_are_typed_security_errors(snmpd: Snmpd, host: SnmpHost) -> None:
    cases = [
        (v3_config(snmpd.port, "nobody", "sha256", "aes128"), "unknown_user", "'nobody'"),
        (
            v3_config(
                snmpd.port,
                user_name("sha256", "aes128"),
                "sha256",
                "aes128",
                auth_key="wrong-key-123",
            ),
            "wrong_auth",
            "sha256",
        ),
        (
            # net-snmp drops what it cannot decrypt: the probe tells it apart from a dead agent
            v3_config(
                snmpd.port,
                user_name("sha512", "aes256"),
                "sha512",
                "aes256",
                priv_key="wrong-key-456",
                timeout_s=0.3,
            ),
            "wrong_priv",
            "aes256",
        ),
        (
            # privacy asked of a user that has none
            v3_config(snmpd.port, user_name("sha", "none"), "sha", "aes128"),
            "security_level",
            "'u-sha-none'",
        ),
    ]
    for config, reason, named in cases:
        session = await host.session("pdu-3", config)
        with pytest.raises(SnmpSecurityError) as info:
            await values(session, [SYS_DESCR])
        assert info.value.reason == reason
        assert "pdu-3" in str(info.value)
        assert named in str(info.value)
        assert info.value.error_class == "auth"
        assert_no_secret(info.value)


async def test_lower_security_level_than_the_user_needs_is_an_auth_status(
    snmpd: Snmpd, host: SnmpHost
) -> None:
    config = v3_config(snmpd.port, user_name("sha512", "aes256"), "sha512", "none")
    with pytest.raises(SnmpStatusError) as info:
        await values(await host.session("ups-7", config), [SYS_DESCR])
    assert info.value.status == 16


async def test_dead_agent_is_a_timeout(host: SnmpHost) -> None:
    config = v3_config(free_udp_port(), "noc", "sha256", "aes128", timeout_s=0.2)
    with pytest.raises(DeviceTimeoutError) as info:
        await values(await host.session("dead-ups", config), [SYS_DESCR])
    assert "dead-ups" in str(info.value)
    assert_no_secret(info.value)


async def test_replaced_card_new_engine_id_is_adopted_and_logged(
    tmp_path: Path, host: SnmpHost, caplog: pytest.LogCaptureFixture
) -> None:
    user = UsmUser("noc", "SHA-256", AUTH_KEY, "AES", PRIV_KEY)
    server = Snmpd(require_binary("snmpd", "/usr/sbin/snmpd"), tmp_path, users=[user])
    server.start()
    try:
        session = await host.session("ups-9", v3_config(server.port, "noc", "sha256", "aes128"))
        assert await values(session, [SYS_DESCR]) == [b"dcim test agent"]
        old_engine = server.engine_id
        server.restart(engine_id="80001f88046463696d39393939")
        with caplog.at_level(logging.WARNING, logger="collectors.snmp.usmsession"):
            assert await values(session, [SYS_DESCR]) == [b"dcim test agent"]
            assert await values(session, [SYS_DESCR]) == [b"dcim test agent"]
    finally:
        server.stop()
    changed = [r.getMessage() for r in caplog.records if "engine id changed" in r.getMessage()]
    assert len(changed) == 1, changed
    assert "ups-9" in changed[0]
    assert old_engine in changed[0]
    assert "80001f88046463696d39393939" in changed[0]


# --- the fast agent's SNMPv3 --------------------------------------------------------------

MEMBERS = fleet(40)


@pytest.fixture
async def fast_agent() -> AsyncIterator[FastAgent]:
    agent = FastAgent(fleet_devices(MEMBERS), v3=True)
    await agent.start("127.0.0.1", 0)
    yield agent
    agent.close()


def bench_config(port: int, context: str, **changes: str) -> SnmpConfig:
    keys = {"auth_key": BENCH_V3_AUTH_KEY, "priv_key": BENCH_V3_PRIV_KEY, **changes}
    return v3_config(
        port,
        keys.pop("user", BENCH_V3_USER),
        "sha256",
        "aes128",
        context=context,
        timeout_s=0.5,
        **keys,
    )


async def test_fast_agent_v3_answers_like_v2c_to_both_clients(
    fast_agent: FastAgent, host: SnmpHost
) -> None:
    oids = [*SYSTEM[:2], "1.3.6.1.2.1.1.5.0"]
    member = MEMBERS[3]
    v2 = SnmpConfig.model_validate(
        {"host": "127.0.0.1", "port": fast_agent.port, "community": member.community}
    )
    expected = await values(await host.session(member.id, v2), oids)
    assert expected[-1] == member.id.encode()
    v3 = bench_config(fast_agent.port, member.community)
    assert await values(await host.session(member.id, v3), oids) == expected
    pysnmp_host = PysnmpHost()
    try:
        assert await values(await pysnmp_host.session(member.id, v3), oids) == expected
    finally:
        pysnmp_host.close()


async def test_one_discovery_serves_every_session_to_an_agent(
    fast_agent: FastAgent, host: SnmpHost
) -> None:
    sessions = [
        await host.session(m.id, bench_config(fast_agent.port, m.community)) for m in MEMBERS
    ]
    names = await asyncio.gather(*(values(s, ["1.3.6.1.2.1.1.5.0"]) for s in sessions))
    assert names == [[m.id.encode()] for m in MEMBERS]
    (engine,) = fast_agent.engines
    assert engine.reports == {fv3.UNKNOWN_ENGINE_IDS: 1}


async def test_agent_reboot_is_recovered(fast_agent: FastAgent, host: SnmpHost) -> None:
    member = MEMBERS[0]
    session = await host.session(member.id, bench_config(fast_agent.port, member.community))
    assert await values(session, ["1.3.6.1.2.1.1.5.0"]) == [member.id.encode()]
    fast_agent.reboot()  # boots 1 -> 2: our next request is outside the time window
    assert await values(session, ["1.3.6.1.2.1.1.5.0"]) == [member.id.encode()]
    (engine,) = fast_agent.engines
    assert engine.boots == 2
    assert engine.reports.get(fv3.NOT_IN_TIME_WINDOWS) == 1
    fast_agent.reboot(new_engine_ids=True)  # a new card at the same address
    assert await values(session, ["1.3.6.1.2.1.1.5.0"]) == [member.id.encode()]
    assert engine.reports.get(fv3.UNKNOWN_ENGINE_IDS) == 2


async def test_fast_agent_reports_become_the_right_errors(
    fast_agent: FastAgent, host: SnmpHost
) -> None:
    port, context = fast_agent.port, MEMBERS[1].community
    cases = [
        (bench_config(port, context, user="intruder"), "unknown_user"),
        (bench_config(port, context, auth_key="wrong-key-123"), "wrong_auth"),
        (bench_config(port, context, priv_key="wrong-key-456"), "wrong_priv"),
    ]
    for config, reason in cases:
        with pytest.raises(SnmpSecurityError) as info:
            await values(await host.session("pdu-1", config), [SYS_DESCR])
        assert info.value.reason == reason
        assert_no_secret(info.value)
    with pytest.raises(DeviceProtocolError, match=r"snmpUnknownContexts.*'no-such-device'"):
        await values(await host.session("pdu-1", bench_config(port, "no-such-device")), [SYS_DESCR])
    (engine,) = fast_agent.engines
    for oid in (fv3.UNKNOWN_USER_NAMES, fv3.WRONG_DIGESTS, fv3.DECRYPTION_ERRORS):
        assert engine.reports[oid] == 1


async def test_collector_polls_v3_through_the_fast_client(fast_agent: FastAgent) -> None:
    member = next(m for m in MEMBERS if m.kind == "ups")
    snmp = bench_config(fast_agent.port, member.community).model_dump(mode="json")
    snmp["v3"]["auth_key"] = BENCH_V3_AUTH_KEY  # model_dump masks secrets
    snmp["v3"]["priv_key"] = BENCH_V3_PRIV_KEY
    device = DeviceConfig.model_validate(
        {"id": member.id, "kind": "ups", "profile": member.profile, "snmp": snmp}
    )
    placed = PlacedDevice(device, "dc1", "hall", "", "", {"site": "dc1", "device": member.id})
    factory = CollectorFactory()
    try:
        collector = factory.build(placed)
        async with collector:
            readings = await collector.poll()
        assert factory._snmp_host is not None
    finally:
        factory.close()
    assert len(readings) >= 10


def snmpget(port: int, *options: str) -> subprocess.CompletedProcess[str]:
    binary = require_binary("snmpget", "/usr/bin/snmpget")
    return subprocess.run(
        [
            binary,
            "-v3",
            "-l",
            "authPriv",
            "-a",
            "SHA-256",
            "-x",
            "AES",
            *options,
            "-On",
            "-t",
            "1",
            "-r",
            "0",
            f"127.0.0.1:{port}",
            "1.3.6.1.2.1.1.5.0",
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **NO_MIBS_ENV},
        check=False,
        timeout=20,
    )


async def test_net_snmp_snmpget_polls_the_fast_agent_cli(host: SnmpHost) -> None:
    """`python -m simulators.fast_agent --v3`, checked by net-snmp's own client."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulators.fast_agent",
        "--devices",
        "30",
        "--ports",
        "2",
        "--v3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), timeout=60))
        ports, engine_ids = ready["ports"], ready["engine_ids"]
        assert len(engine_ids) == len(set(engine_ids)) == 2
        member = fleet(30)[17]
        good = ["-u", BENCH_V3_USER, "-A", BENCH_V3_AUTH_KEY, "-X", BENCH_V3_PRIV_KEY]
        for port, engine_id in zip(ports, engine_ids, strict=True):
            result = await asyncio.to_thread(snmpget, port, *good, "-n", member.community)
            assert result.returncode == 0, result.stderr
            assert f'STRING: "{member.id}"' in result.stdout
            probed = await host.probe("127.0.0.1", port, timeout_s=1.0)
            assert probed is not None
            assert probed.message.engine_id.hex() == engine_id
        port = ports[0]
        wrong_auth = ["-u", BENCH_V3_USER, "-A", "wrong-auth-key", "-X", BENCH_V3_PRIV_KEY]
        result = await asyncio.to_thread(snmpget, port, *wrong_auth, "-n", member.community)
        assert result.returncode != 0
        assert "Authentication failure" in result.stderr
        unknown = ["-u", "mallory", "-A", BENCH_V3_AUTH_KEY, "-X", BENCH_V3_PRIV_KEY]
        result = await asyncio.to_thread(snmpget, port, *unknown, "-n", member.community)
        assert result.returncode != 0
        assert "Unknown user name" in result.stderr
    finally:
        proc.terminate()
        await proc.wait()


@pytest.mark.parametrize(("priv", "agent_priv"), [("3des", "3DES"), ("aes192c", "AES-192")])
async def test_fast_client_polls_the_pysnmp_agent(
    host: SnmpHost, monkeypatch: pytest.MonkeyPatch, priv: str, agent_priv: str
) -> None:
    """What net-snmp 5.9 lacks (3DES) or names otherwise (pysnmp's AES-192 is our aes192c)."""
    monkeypatch.setitem(snmp_agent.PRIV_PROTOCOLS, "3DES", pysnmp_config.USM_PRIV_CBC168_3DES)
    device = UpsDevice("ups1", UpsModel(rated_va=3000.0, rated_w=2700.0, seed=1), SimClock())
    user = V3User("noc", AUTH_KEY, PRIV_KEY, auth_protocol="SHA", priv_protocol=agent_priv)
    agent = await snmp_agent.serve({"ups1": device}, "127.0.0.1", 0, v3_users=[user])
    try:
        config = v3_config(agent.port, "noc", "sha", priv)
        oids = ["1.3.6.1.2.1.33.1.1.1.0", "1.3.6.1.2.1.33.1.1.2.0"]
        fast = await values(await host.session("ups-p", config), oids)
        slow_host = PysnmpHost()
        try:
            assert fast == await values(await slow_host.session("ups-p", config), oids)
        finally:
            slow_host.close()
        assert all(isinstance(v, bytes) and v for v in fast)
    finally:
        agent.close()


class _Forger(asyncio.DatagramProtocol):
    """Answers like the fast agent, but first sends the answer with one octet changed."""

    def __init__(self, agent: FastAgent) -> None:
        self.agent = agent
        self.engine = agent.engines[0]
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        answer = self.agent.answer(data, self.engine)
        if answer is None:
            return
        if fv3.decode_message(answer).flags & fv3.FLAG_AUTH:
            forged = bytearray(answer)
            forged[-1] ^= 0x55  # same msgID, broken digest
            self.transport.sendto(bytes(forged), addr)
        self.transport.sendto(answer, addr)


async def test_a_forged_answer_is_dropped_and_the_real_one_taken(
    fast_agent: FastAgent, host: SnmpHost
) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Forger(fast_agent), local_addr=("127.0.0.1", 0)
    )
    try:
        port = transport.get_extra_info("sockname")[1]
        member = MEMBERS[5]
        session = await host.session(member.id, bench_config(port, member.community))
        assert await values(session, ["1.3.6.1.2.1.1.5.0"]) == [member.id.encode()]
        assert isinstance(session, UsmSession)
        assert session._channel.stray == 1  # the forgery, counted and ignored
    finally:
        transport.close()
