"""A lean BER codec for SNMPv1/v2c messages: GET, GETNEXT, GETBULK and their responses.

A general ASN.1 library builds and parses a message as a tree of objects, about
3 ms of CPU per poll; a poller only needs a handful of fixed shapes. Requests are
prebuilt once per var-bind list (`RequestTemplate`): only the 4-byte
request-id changes, and it is kept in 0x00800000..0x7FFFFFFF so its minimal
BER encoding always has exactly four content octets and can be spliced in.
Responses are parsed with a flat cursor over the bytes; OIDs that come back
every poll are decoded once (`_OID_CACHE`). Values become plain Python
(`collectors.snmp.types.SnmpValue`: int, bytes, dotted str for OIDs and IP
addresses, `Absent` for the v2 exception values).

The agent side (`simulators.fast_agent`) decodes requests and encodes
responses with the same calls; an independent SNMP stack is the oracle in the
tests. SNMPv3 (`collectors.snmp.fastv3`) wraps the PDU-level pieces here (`pdu_template`,
`encode_pdu`, `decode_pdu`) in its scoped PDUs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from collectors.snmp.types import Absent, Oid, SnmpValue, TypedVarBind, VarBind

# PDU tags (context-specific, constructed)
GET = 0xA0
GET_NEXT = 0xA1
RESPONSE = 0xA2
SET = 0xA3
GET_BULK = 0xA5
REPORT = 0xA8

# universal and SMI application tags
INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05
OBJECT_IDENTIFIER = 0x06
SEQUENCE = 0x30
IP_ADDRESS = 0x40
COUNTER32 = 0x41
GAUGE32 = 0x42
TIME_TICKS = 0x43
OPAQUE = 0x44
COUNTER64 = 0x46
NO_SUCH_OBJECT = 0x80
NO_SUCH_INSTANCE = 0x81
END_OF_MIB_VIEW = 0x82

VERSION_1 = 0
VERSION_2C = 1

#: Request-ids stay in this range: always four minimal content octets.
REQUEST_ID_MIN = 0x00800000
REQUEST_ID_MAX = 0x7FFFFFFF

_INTEGER_TAGS = frozenset({INTEGER, COUNTER32, GAUGE32, TIME_TICKS, COUNTER64})
_EXCEPTIONS: dict[int, Absent] = {
    NO_SUCH_OBJECT: Absent.NO_SUCH_OBJECT,
    NO_SUCH_INSTANCE: Absent.NO_SUCH_INSTANCE,
    END_OF_MIB_VIEW: Absent.END_OF_MIB_VIEW,
}
_ABSENT_TAGS: dict[Absent, int] = {absent: tag for tag, absent in _EXCEPTIONS.items()}

#: Decoded OIDs by their content octets; cleared when it grows past the bound.
_OID_CACHE: dict[bytes, Oid] = {}
_OID_CACHE_MAX = 200_000
#: Request var-bind TLVs (OID, NULL) by OID, for building requests.
_VARBIND_CACHE: dict[Oid, bytes] = {}
_VARBIND_CACHE_MAX = 200_000


class CodecError(ValueError):
    """Bytes that are not a well-formed SNMP message of the expected shape."""


# --- encoding ---------------------------------------------------------------


def encode_length(length: int) -> bytes:
    """BER definite length, short form below 128, else minimal long form."""
    if length < 0x80:
        return bytes((length,))
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, content: bytes) -> bytes:
    """One tag-length-value."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    return bytes((tag,)) + encode_length(n) + content


def integer_content(value: int) -> bytes:
    """Minimal two's-complement octets of an integer."""
    return value.to_bytes((value + (value < 0)).bit_length() // 8 + 1, "big", signed=True)


def encode_integer(value: int, tag: int = INTEGER) -> bytes:
    return tlv(tag, integer_content(value))


def oid_content(oid: Sequence[int]) -> bytes:
    """Content octets of an OBJECT IDENTIFIER (first two arcs joined as 40*X+Y)."""
    if len(oid) < 2:
        raise CodecError(f"OID {oid!r} has fewer than two arcs")
    first, second = oid[0], oid[1]
    if first > 2 or (first < 2 and second >= 40) or min(oid) < 0:
        raise CodecError(f"OID {oid!r} is not encodable")
    out = bytearray()
    for arc in (first * 40 + second, *oid[2:]):
        if arc < 0x80:
            out.append(arc)
            continue
        chunk = [arc & 0x7F]
        rest = arc >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


def encode_oid(oid: Sequence[int]) -> bytes:
    return tlv(OBJECT_IDENTIFIER, oid_content(oid))


def request_varbind(oid: Oid) -> bytes:
    """The var-bind (OID, NULL) of a request, cached by OID."""
    vb = _VARBIND_CACHE.get(oid)
    if vb is None:
        if len(_VARBIND_CACHE) >= _VARBIND_CACHE_MAX:
            _VARBIND_CACHE.clear()
        vb = _VARBIND_CACHE[oid] = tlv(SEQUENCE, encode_oid(oid) + b"\x05\x00")
    return vb


def encode_value(value: Any) -> bytes:
    """The TLV of a var-bind value: pyasn1 SMI objects (the simulators' MIBs) or plain Python.

    pyasn1 objects carry their tag (`tagSet`), so every SMI type keeps its
    own (Counter32, Gauge32, TimeTicks, IpAddress, Opaque...). Plain `int`
    encodes as INTEGER, `bytes`/`str` as OCTET STRING, a tuple as an OID,
    `Absent` as its exception value, None as NULL.
    """
    if isinstance(value, Absent):
        return bytes((_ABSENT_TAGS[value], 0))
    if value is None:
        return b"\x05\x00"
    if isinstance(value, bool):
        raise CodecError("bool is not an SNMP value")
    if isinstance(value, int):
        return encode_integer(value)
    if isinstance(value, bytes):
        return tlv(OCTET_STRING, value)
    if isinstance(value, str):
        return tlv(OCTET_STRING, value.encode())
    if isinstance(value, tuple):
        return encode_oid(value)
    tag_set = getattr(value, "tagSet", None)
    if tag_set is None or not tag_set:
        raise CodecError(f"cannot encode {type(value).__name__}")
    base = tag_set[-1]  # SMI types are implicitly tagged: the outermost tag is on the wire
    tag = base.tagClass | base.tagFormat | base.tagId
    if tag in _INTEGER_TAGS:
        return encode_integer(int(value), tag)
    if tag == OBJECT_IDENTIFIER:
        return encode_oid(tuple(value))
    if tag in (NULL, NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW):
        return bytes((tag, 0))
    return tlv(tag, bytes(value.asOctets()))


def encode_varbind(oid: Oid, value: Any) -> bytes:
    """One response var-bind (OID, value)."""
    return tlv(SEQUENCE, encode_oid(oid) + encode_value(value))


def encode_message(
    version: int,
    community: bytes,
    pdu_type: int,
    *,
    request_id: int,
    error_status: int,
    error_index: int,
    varbinds: bytes,
) -> bytes:
    """A whole message around already-encoded var-binds.

    For GETBULK, `error_status`/`error_index` are non-repeaters/max-repetitions.
    """
    pdu = encode_pdu(
        pdu_type,
        request_id=request_id,
        error_status=error_status,
        error_index=error_index,
        varbinds=varbinds,
    )
    return tlv(SEQUENCE, encode_integer(version) + tlv(OCTET_STRING, community) + pdu)


def encode_pdu(
    pdu_type: int, *, request_id: int, error_status: int, error_index: int, varbinds: bytes
) -> bytes:
    """One PDU TLV around already-encoded var-binds (an SNMPv3 scoped PDU carries this)."""
    content = (
        encode_integer(request_id)
        + encode_integer(error_status)
        + encode_integer(error_index)
        + tlv(SEQUENCE, varbinds)
    )
    return tlv(pdu_type, content)


@dataclass(frozen=True, slots=True)
class RequestTemplate:
    """A request with everything but its request-id encoded: `build(id)` splices it in."""

    prefix: bytes
    suffix: bytes

    def build(self, request_id: int) -> bytes:
        return self.prefix + request_id.to_bytes(4, "big") + self.suffix


def pdu_template(
    pdu_type: int,
    oids: Iterable[Oid],
    *,
    non_repeaters: int = 0,
    max_repetitions: int = 0,
) -> RequestTemplate:
    """Prebuild a GET/GETNEXT/GETBULK PDU of `oids` (var-bind values NULL)."""
    varbinds = b"".join([request_varbind(oid) for oid in oids])
    tail = encode_integer(non_repeaters) + encode_integer(max_repetitions) + tlv(SEQUENCE, varbinds)
    pdu_length = 6 + len(tail)  # 02 04 xx xx xx xx + tail
    prefix = bytes((pdu_type,)) + encode_length(pdu_length) + b"\x02\x04"
    return RequestTemplate(prefix, tail)


def wrap_template(head: bytes, inner: RequestTemplate, *, tag: int = SEQUENCE) -> RequestTemplate:
    """`inner` placed after `head` inside one constructed TLV (the request-id keeps its size)."""
    length = len(head) + len(inner.prefix) + 4 + len(inner.suffix)
    return RequestTemplate(
        bytes((tag,)) + encode_length(length) + head + inner.prefix, inner.suffix
    )


def request_template(
    version: int,
    community: bytes,
    pdu_type: int,
    oids: Iterable[Oid],
    *,
    non_repeaters: int = 0,
    max_repetitions: int = 0,
) -> RequestTemplate:
    """Prebuild a v1/v2c GET/GETNEXT/GETBULK message of `oids` (var-bind values NULL)."""
    pdu = pdu_template(pdu_type, oids, non_repeaters=non_repeaters, max_repetitions=max_repetitions)
    return wrap_template(encode_integer(version) + tlv(OCTET_STRING, community), pdu)


# --- decoding ---------------------------------------------------------------


def _length(data: bytes, pos: int) -> tuple[int, int]:
    """(length, position after it) of the length octets at `pos`."""
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0 or count > 4:
        raise CodecError("indefinite or oversized length")
    end = pos + 1 + count
    if end > len(data):
        raise CodecError("truncated length")
    return int.from_bytes(data[pos + 1 : end], "big"), end


def expect_tlv(data: bytes, pos: int, tag: int, limit: int) -> tuple[int, int]:
    """(content start, content end) of a TLV with `tag` at `pos`, within `limit`."""
    if pos >= limit or data[pos] != tag:
        got = f"0x{data[pos]:02x}" if pos < limit else "end of data"
        raise CodecError(f"expected tag 0x{tag:02x} at {pos}, got {got}")
    length, start = _length(data, pos + 1)
    end = start + length
    if end > limit:
        raise CodecError("value runs past its container")
    return start, end


def integer_at(data: bytes, pos: int, limit: int) -> tuple[int, int]:
    start, end = expect_tlv(data, pos, INTEGER, limit)
    if start == end:
        raise CodecError("empty INTEGER")
    return int.from_bytes(data[start:end], "big", signed=True), end


def decode_oid(content: bytes) -> Oid:
    """Arcs of OBJECT IDENTIFIER content octets."""
    if not content or content[-1] & 0x80:
        raise CodecError("empty or unterminated OID")
    arcs: list[int] = []
    arc = 0
    for octet in content:
        arc = (arc << 7) | (octet & 0x7F)
        if not octet & 0x80:
            arcs.append(arc)
            arc = 0
    first = arcs[0]
    if first < 40:
        head: tuple[int, int] = (0, first)
    elif first < 80:
        head = (1, first - 40)
    else:
        head = (2, first - 80)
    return (*head, *arcs[1:])


def _oid(content: bytes) -> Oid:
    oid = _OID_CACHE.get(content)
    if oid is None:
        if len(_OID_CACHE) >= _OID_CACHE_MAX:
            _OID_CACHE.clear()
        oid = _OID_CACHE[content] = decode_oid(content)
    return oid


def _value(tag: int, content: bytes) -> SnmpValue:
    """Plain Python value of one var-bind value (`SnmpValue`)."""
    if tag in _INTEGER_TAGS:
        if not content:
            raise CodecError("empty INTEGER")
        return int.from_bytes(content, "big", signed=True)
    if tag in (OCTET_STRING, OPAQUE):
        return content
    absent = _EXCEPTIONS.get(tag)
    if absent is not None:
        return absent
    if tag == OBJECT_IDENTIFIER:
        return ".".join(map(str, decode_oid(content)))
    if tag == IP_ADDRESS:
        return ".".join(map(str, content))
    return Absent.NO_SUCH_OBJECT  # NULL or a type no profile can use


def decode_varbinds(data: bytes, pos: int, end: int) -> list[VarBind]:
    """Var-binds (OID, value) from a VarBindList's content `data[pos:end]`."""
    out: list[VarBind] = []
    oid_cache = _OID_CACHE
    append = out.append
    try:
        while pos < end:
            if data[pos] != SEQUENCE:
                raise CodecError(f"expected a var-bind at {pos}")
            length = data[pos + 1]
            if length < 0x80:
                pos += 2
            else:
                length, pos = _length(data, pos + 1)
            vb_end = pos + length
            if data[pos] != OBJECT_IDENTIFIER:
                raise CodecError(f"expected an OID at {pos}")
            length = data[pos + 1]
            if length < 0x80:
                pos += 2
            else:
                length, pos = _length(data, pos + 1)
            raw = data[pos : pos + length]
            oid = oid_cache.get(raw)
            if oid is None:
                oid = _oid(raw)
            pos += length
            tag = data[pos]
            length = data[pos + 1]
            if length < 0x80:
                pos += 2
            else:
                length, pos = _length(data, pos + 1)
            if pos + length != vb_end or vb_end > end:
                raise CodecError("var-bind length does not match its parts")
            if tag == INTEGER and length == 1:
                value: SnmpValue = data[pos] - 256 if data[pos] > 127 else data[pos]
            else:
                value = _value(tag, data[pos:vb_end])
            append(VarBind(oid, value))
            pos = vb_end
    except IndexError:
        raise CodecError("truncated var-bind list") from None
    return out


def decode_typed_varbinds(data: bytes, pos: int, end: int) -> list[TypedVarBind]:
    """Var-binds with their value's tag; slower than `decode_varbinds`, for tools."""
    out: list[TypedVarBind] = []
    try:
        while pos < end:
            start, vb_end = expect_tlv(data, pos, SEQUENCE, end)
            ostart, oend = expect_tlv(data, start, OBJECT_IDENTIFIER, vb_end)
            oid = decode_oid(data[ostart:oend])
            tag = data[oend]
            length, vstart = _length(data, oend + 1)
            if vstart + length != vb_end:
                raise CodecError("var-bind length does not match its parts")
            content = data[vstart:vb_end]
            out.append(TypedVarBind(oid, tag, content, _value(tag, content)))
            pos = vb_end
    except IndexError:
        raise CodecError("truncated var-bind list") from None
    return out


@dataclass(frozen=True, slots=True)
class Header:
    """A message up to its var-bind list (which is `data[varbinds_start:varbinds_end]`).

    For GETBULK requests `error_status`/`error_index` hold non-repeaters and
    max-repetitions.
    """

    version: int
    community: bytes
    pdu_type: int
    request_id: int
    error_status: int
    error_index: int
    varbinds_start: int
    varbinds_end: int


def decode_header(data: bytes) -> Header:
    """Parse a v1/v2c message down to its var-bind list; CodecError if malformed."""
    try:
        limit = len(data)
        start, end = expect_tlv(data, 0, SEQUENCE, limit)
        limit = end
        version, pos = integer_at(data, start, limit)
        if version not in (VERSION_1, VERSION_2C):
            raise CodecError(f"not SNMPv1/v2c (version field {version})")
        cstart, cend = expect_tlv(data, pos, OCTET_STRING, limit)
        community = data[cstart:cend]
        return decode_pdu(data, cend, limit, version, community)
    except IndexError:
        raise CodecError("truncated message") from None


def decode_pdu(data: bytes, pos: int, limit: int, version: int, community: bytes) -> Header:
    """Parse the PDU at `pos` down to its var-bind list (`version`/`community` are copied)."""
    try:
        pdu_type = data[pos]
        if pdu_type not in (GET, GET_NEXT, RESPONSE, SET, GET_BULK, REPORT):
            raise CodecError(f"unsupported PDU type 0x{pdu_type:02x}")
        pstart, pend = expect_tlv(data, pos, pdu_type, limit)
        request_id, pos = integer_at(data, pstart, pend)
        error_status, pos = integer_at(data, pos, pend)
        error_index, pos = integer_at(data, pos, pend)
        vstart, vend = expect_tlv(data, pos, SEQUENCE, pend)
    except IndexError:
        raise CodecError("truncated PDU") from None
    return Header(version, community, pdu_type, request_id, error_status, error_index, vstart, vend)


@dataclass(frozen=True, slots=True)
class Response:
    header: Header
    var_binds: list[VarBind]


def decode_response(data: bytes) -> Response:
    """A whole message with its var-binds decoded (tests, tools)."""
    header = decode_header(data)
    return Response(header, decode_varbinds(data, header.varbinds_start, header.varbinds_end))


def decode_request_oids(data: bytes, header: Header) -> list[Oid]:
    """The OIDs a request asks for (its var-bind values are ignored)."""
    return [vb.oid for vb in decode_varbinds(data, header.varbinds_start, header.varbinds_end)]
