"""A lean codec for SNMPv3 messages with USM security (RFC 3412, 3414), over `fastcodec`.

    SEQUENCE { version 3,
               SEQUENCE { msgID, msgMaxSize, msgFlags, msgSecurityModel 3 },
               OCTET STRING { SEQUENCE { engineID, boots, time, userName,
                                         authParams, privParams } },
               scopedPDU SEQUENCE { contextEngineID, contextName, PDU }
               | OCTET STRING (the scoped PDU encrypted) }

A request is a prebuilt scoped PDU (`fastcodec` templates, the request-id
spliced in) sealed by `encode_message`: encrypted, wrapped, and signed by
computing the HMAC over the whole message with a zeroed digest field and
splicing it in. `decode_message` parses the clear parts with a flat cursor and
records where the digest sits; `authentic` checks it, `scoped_plaintext`
decrypts, `decode_scoped` parses the PDU. The agent side
(`simulators.fast_v3`) uses the same calls the other way round.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from collectors.snmp import fastcodec as fc
from collectors.snmp.fastcodec import CodecError
from collectors.snmp.types import Oid
from collectors.snmp.usmcrypto import UsmCryptoError, UsmKeys

VERSION_3 = 3
USM = 3  # msgSecurityModel
FLAG_AUTH = 0x01
FLAG_PRIV = 0x02
FLAG_REPORTABLE = 0x04
#: msgMaxSize we announce: the largest UDP payload.
MAX_SIZE = 65507

USM_STATS: Oid = (1, 3, 6, 1, 6, 3, 15, 1, 1)
UNSUPPORTED_SEC_LEVELS: Oid = (*USM_STATS, 1, 0)
NOT_IN_TIME_WINDOWS: Oid = (*USM_STATS, 2, 0)
UNKNOWN_USER_NAMES: Oid = (*USM_STATS, 3, 0)
UNKNOWN_ENGINE_IDS: Oid = (*USM_STATS, 4, 0)
WRONG_DIGESTS: Oid = (*USM_STATS, 5, 0)
DECRYPTION_ERRORS: Oid = (*USM_STATS, 6, 0)
UNKNOWN_CONTEXTS: Oid = (1, 3, 6, 1, 6, 3, 12, 1, 5, 0)

#: REPORT var-bind OID -> the `SnmpSecurityError` reason it becomes.
REPORT_REASONS: dict[Oid, str] = {
    UNSUPPORTED_SEC_LEVELS: "security_level",
    NOT_IN_TIME_WINDOWS: "time_window",
    UNKNOWN_USER_NAMES: "unknown_user",
    UNKNOWN_ENGINE_IDS: "unknown_engine",
    WRONG_DIGESTS: "wrong_auth",
    DECRYPTION_ERRORS: "wrong_priv",
}
#: Names of other reports an agent may send (RFC 3412, 3413), for messages.
REPORT_NAMES: dict[Oid, str] = {
    UNKNOWN_CONTEXTS: "snmpUnknownContexts",
    (1, 3, 6, 1, 6, 3, 12, 1, 4, 0): "snmpUnavailableContexts",
    (1, 3, 6, 1, 6, 3, 11, 2, 1, 1, 0): "snmpUnknownSecurityModels",
    (1, 3, 6, 1, 6, 3, 11, 2, 1, 2, 0): "snmpInvalidMsgs",
    (1, 3, 6, 1, 6, 3, 11, 2, 1, 3, 0): "snmpUnknownPDUHandlers",
}

_V3_VERSION = b"\x02\x01\x03"
_V3_TAIL = b"\x02\x01\x03"  # msgSecurityModel 3, the last field of msgGlobalData
_MAX_SIZE = fc.encode_integer(MAX_SIZE)


def v3_msg_id(data: bytes) -> int | None:
    """The msgID of an SNMPv3 message, None if it is not one (a v1/v2c message).

    Cheap enough for every datagram: the receive path matches answers with it
    before anything is decrypted or verified.
    """
    try:
        if data[0] != fc.SEQUENCE:
            return None
        first = data[1]
        pos = 2 if first < 0x80 else 2 + (first & 0x7F)
        if data[pos : pos + 3] != _V3_VERSION:
            return None
        pos += 3
        if data[pos] != fc.SEQUENCE:
            return None
        first = data[pos + 1]
        pos += 2 if first < 0x80 else 2 + (first & 0x7F)
        if data[pos] != fc.INTEGER:
            return None
        length = data[pos + 1]
        if not 0 < length <= 5:
            return None
        return int.from_bytes(data[pos + 2 : pos + 2 + length], "big", signed=True)
    except IndexError:
        return None


# --- encoding ---------------------------------------------------------------


def scoped_template(
    context_engine_id: bytes,
    context_name: bytes,
    pdu_type: int,
    oids: tuple[Oid, ...],
    *,
    max_repetitions: int = 0,
) -> fc.RequestTemplate:
    """A scoped PDU with everything but the request-id encoded."""
    pdu = fc.pdu_template(pdu_type, oids, max_repetitions=max_repetitions)
    head = fc.tlv(fc.OCTET_STRING, context_engine_id) + fc.tlv(fc.OCTET_STRING, context_name)
    return fc.wrap_template(head, pdu)


def scoped_pdu(context_engine_id: bytes, context_name: bytes, pdu: bytes) -> bytes:
    """A scoped PDU around an encoded PDU."""
    return fc.tlv(
        fc.SEQUENCE,
        fc.tlv(fc.OCTET_STRING, context_engine_id) + fc.tlv(fc.OCTET_STRING, context_name) + pdu,
    )


def encode_message(
    msg_id: int,
    flags: int,
    *,
    engine_id: bytes,
    boots: int,
    time: int,
    user: bytes,
    keys: UsmKeys | None,
    scoped: bytes,
) -> bytes:
    """A whole message: encrypted if `flags` has FLAG_PRIV, signed if FLAG_AUTH.

    `boots`/`time` are the authoritative engine's (ours when we answer, our
    estimate of the agent's when we ask); `keys` localized to `engine_id`.
    """
    priv_params = b""
    if flags & FLAG_PRIV:
        assert keys is not None
        encrypted, priv_params = keys.encrypt(scoped, boots, time)
        msg_data = fc.tlv(fc.OCTET_STRING, encrypted)
    else:
        msg_data = scoped
    mac_length = keys.mac_length if flags & FLAG_AUTH and keys is not None else 0
    if flags & FLAG_AUTH and not mac_length:
        raise ValueError("an authenticated message needs an auth key")
    params_head = (
        fc.tlv(fc.OCTET_STRING, engine_id)
        + fc.encode_integer(boots)
        + fc.encode_integer(time)
        + fc.tlv(fc.OCTET_STRING, user)
        + bytes((fc.OCTET_STRING, mac_length))
    )
    params_tail = fc.tlv(fc.OCTET_STRING, priv_params)
    params_length = len(params_head) + mac_length + len(params_tail)
    params_seq_head = bytes((fc.SEQUENCE,)) + fc.encode_length(params_length)
    params_total = len(params_seq_head) + params_length
    global_data = fc.tlv(
        fc.SEQUENCE,
        fc.encode_integer(msg_id) + _MAX_SIZE + bytes((fc.OCTET_STRING, 1, flags)) + _V3_TAIL,
    )
    octets_head = bytes((fc.OCTET_STRING,)) + fc.encode_length(params_total)
    body_length = (
        len(_V3_VERSION) + len(global_data) + len(octets_head) + params_total + len(msg_data)
    )
    head = (
        bytes((fc.SEQUENCE,))
        + fc.encode_length(body_length)
        + _V3_VERSION
        + global_data
        + octets_head
        + params_seq_head
        + params_head
    )
    tail = params_tail + msg_data
    if not mac_length:
        return head + tail
    assert keys is not None
    return head + keys.sign(head + bytes(mac_length) + tail) + tail


def discovery_probe(msg_id: int) -> bytes:
    """RFC 3414 4: noAuthNoPriv, reportable, empty user and engine id, an empty GET."""
    pdu = fc.encode_pdu(fc.GET, request_id=msg_id, error_status=0, error_index=0, varbinds=b"")
    return encode_message(
        msg_id,
        FLAG_REPORTABLE,
        engine_id=b"",
        boots=0,
        time=0,
        user=b"",
        keys=None,
        scoped=scoped_pdu(b"", b"", pdu),
    )


def report_pdu(request_id: int, oid: Oid, count: int) -> bytes:
    """A REPORT PDU carrying one counter (usmStats...)."""
    value = fc.encode_integer(count, fc.COUNTER32)
    varbind = fc.tlv(fc.SEQUENCE, fc.encode_oid(oid) + value)
    return fc.encode_pdu(
        fc.REPORT, request_id=request_id, error_status=0, error_index=0, varbinds=varbind
    )


# --- decoding ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """An SNMPv3 message's clear parts; its digest is `data[auth_start:auth_end]`.

    `data_start:data_end` is the scoped PDU TLV, or with FLAG_PRIV the content
    of the OCTET STRING holding it encrypted.
    """

    msg_id: int
    max_size: int
    flags: int
    security_model: int
    engine_id: bytes
    boots: int
    time: int
    user: bytes
    auth_start: int
    auth_end: int
    priv_params: bytes
    data_start: int
    data_end: int


def decode_message(data: bytes) -> Message:
    """Parse an SNMPv3 message up to its (maybe encrypted) scoped PDU; CodecError if malformed."""
    expect, integer = fc.expect_tlv, fc.integer_at
    try:
        start, limit = expect(data, 0, fc.SEQUENCE, len(data))
        version, pos = integer(data, start, limit)
        if version != VERSION_3:
            raise CodecError(f"not SNMPv3 (version field {version})")
        gstart, gend = expect(data, pos, fc.SEQUENCE, limit)
        msg_id, gpos = integer(data, gstart, gend)
        max_size, gpos = integer(data, gpos, gend)
        fstart, fend = expect(data, gpos, fc.OCTET_STRING, gend)
        if fend - fstart != 1:
            raise CodecError("msgFlags is not one octet")
        flags = data[fstart]
        security_model, _ = integer(data, fend, gend)
        pstart, pend = expect(data, gend, fc.OCTET_STRING, limit)
        if security_model != USM:
            return Message(msg_id, max_size, flags, security_model, b"", 0, 0, b"", 0, 0, b"", pend, limit)  # fmt: skip
        sstart, send = expect(data, pstart, fc.SEQUENCE, pend)
        estart, eend = expect(data, sstart, fc.OCTET_STRING, send)
        boots, spos = integer(data, eend, send)
        time, spos = integer(data, spos, send)
        ustart, uend = expect(data, spos, fc.OCTET_STRING, send)
        astart, aend = expect(data, uend, fc.OCTET_STRING, send)
        vstart, vend = expect(data, aend, fc.OCTET_STRING, send)
        if flags & FLAG_PRIV:
            dstart, dend = expect(data, pend, fc.OCTET_STRING, limit)
        else:
            dstart = pend
            _, dend = expect(data, pend, fc.SEQUENCE, limit)
    except IndexError:
        raise CodecError("truncated SNMPv3 message") from None
    return Message(
        msg_id,
        max_size,
        flags,
        security_model,
        data[estart:eend],
        boots,
        time,
        data[ustart:uend],
        astart,
        aend,
        data[vstart:vend],
        dstart,
        dend,
    )


def authentic(data: bytes, message: Message, keys: UsmKeys) -> bool:
    """Whether the message's digest is right for `keys` (RFC 3414 6.3.2, 7.3.2)."""
    mac_length = keys.mac_length
    if not mac_length or message.auth_end - message.auth_start != mac_length:
        return False
    start, end = message.auth_start, message.auth_end
    expected = keys.sign(data[:start] + bytes(mac_length) + data[end:])
    return hmac.compare_digest(expected, data[start:end])


def scoped_plaintext(data: bytes, message: Message, keys: UsmKeys | None) -> bytes:
    """The scoped PDU's bytes, decrypted when the message is (UsmCryptoError if it cannot be)."""
    body = data[message.data_start : message.data_end]
    if not message.flags & FLAG_PRIV:
        return body
    if keys is None or keys.priv is None:
        raise UsmCryptoError("message is encrypted but we have no privacy key")
    return keys.decrypt(body, message.boots, message.time, message.priv_params)


@dataclass(frozen=True, slots=True)
class Scoped:
    """A scoped PDU: `header` positions are in `plaintext` (`header.community` = context name)."""

    context_engine_id: bytes
    context_name: bytes
    header: fc.Header
    plaintext: bytes


def decode_scoped(plaintext: bytes) -> Scoped:
    """Parse a scoped PDU (trailing cipher padding allowed); CodecError if malformed."""
    try:
        start, end = fc.expect_tlv(plaintext, 0, fc.SEQUENCE, len(plaintext))
        estart, eend = fc.expect_tlv(plaintext, start, fc.OCTET_STRING, end)
        nstart, nend = fc.expect_tlv(plaintext, eend, fc.OCTET_STRING, end)
    except IndexError:
        raise CodecError("truncated scoped PDU") from None
    context_name = plaintext[nstart:nend]
    header = fc.decode_pdu(plaintext, nend, end, VERSION_3, context_name)
    return Scoped(plaintext[estart:eend], context_name, header, plaintext)


@dataclass(frozen=True, slots=True)
class Incoming:
    """An answer to one of our requests: digest checked (if `authenticated`), decrypted."""

    message: Message
    scoped: Scoped
    authenticated: bool


def report_oid(scoped: Scoped) -> Oid | None:
    """The OID of a REPORT's first var-bind (what it reports), None if none or malformed."""
    header = scoped.header
    try:
        varbinds = fc.decode_varbinds(scoped.plaintext, header.varbinds_start, header.varbinds_end)
    except CodecError:
        return None
    return varbinds[0].oid if varbinds else None
