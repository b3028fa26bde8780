"""`dcim walk`: record a device's MIB in snmprec format through the production client.

The recording is what snmpsim serves (`OID|TYPE|VALUE`, the format of the device
captures in ../shared/peer-data), so a device nobody here has seen can be
brought to the lab, replayed, and profiled (`dcim discover`, `dcim poll`) without
its owner's network. The walk is the monitor's own SNMP client (v1, v2c, v3):
GETBULK from each subtree's root, max-repetitions halved on tooBig or timeouts,
stopped at the subtree's end, at endOfMibView, or when an agent answers an OID
that does not increase (a loop).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence

from collectors.snmp import fastcodec as fc
from collectors.snmp.types import (
    Oid,
    RecordingSession,
    SnmpStatusError,
    TypedVarBind,
    oid_text,
    parse_oid,
)
from dcim.errors import DeviceProtocolError, DeviceTimeoutError

log = logging.getLogger(__name__)

#: Everything under iso.org.dod.internet: mib-2, the vendors' enterprises.
DEFAULT_SUBTREES = ("1.3.6.1",)
START_REPETITIONS = 25

#: snmprec type codes are the wire tags of the SMI types.
_NUMBER_TAGS = frozenset({fc.INTEGER, fc.COUNTER32, fc.GAUGE32, fc.TIME_TICKS, fc.COUNTER64})
_EXCEPTION_TAGS = frozenset({fc.NO_SUCH_OBJECT, fc.NO_SUCH_INSTANCE, fc.END_OF_MIB_VIEW})


def snmprec_line(vb: TypedVarBind) -> str | None:
    """One snmprec line for a var-bind (None for the v2 exception values)."""
    oid = oid_text(vb.oid)
    tag = vb.tag
    if tag in _EXCEPTION_TAGS:
        return None
    if tag in _NUMBER_TAGS:
        return f"{oid}|{tag}|{int.from_bytes(vb.content, 'big', signed=True)}"
    if tag == fc.OBJECT_IDENTIFIER:
        return f"{oid}|{tag}|{oid_text(fc.decode_oid(vb.content))}"
    if tag == fc.IP_ADDRESS and len(vb.content) == 4:
        return f"{oid}|{tag}|{'.'.join(str(octet) for octet in vb.content)}"
    if tag == fc.NULL:
        return f"{oid}|{tag}|"
    if tag == fc.OCTET_STRING and _plain(vb.content):
        return f"{oid}|{tag}|{vb.content.decode('ascii')}"
    # anything else (binary strings, Opaque, odd IP addresses) as hex: snmprec's `x` flag
    return f"{oid}|{tag}x|{vb.content.hex()}"


def _plain(content: bytes) -> bool:
    """Printable ASCII that survives a text line as is (no separators, no edge spaces)."""
    return (
        all(0x20 <= byte < 0x7F for byte in content)
        and b"|" not in content
        and content == content.strip()
    )


async def walk(
    session: RecordingSession,
    subtrees: Sequence[str] = DEFAULT_SUBTREES,
    *,
    max_repetitions: int = START_REPETITIONS,
) -> AsyncIterator[TypedVarBind]:
    """Every object under `subtrees`, in OID order per subtree."""
    for subtree in subtrees:
        root = parse_oid(subtree)
        async for vb in _walk_subtree(session, root, max_repetitions):
            yield vb


async def _walk_subtree(
    session: RecordingSession, root: Oid, max_repetitions: int
) -> AsyncIterator[TypedVarBind]:
    cursor = root
    repetitions = max_repetitions
    while True:
        try:
            answers = await session.get_bulk_typed([cursor], repetitions)
        except (SnmpStatusError, DeviceTimeoutError) as exc:
            too_big = isinstance(exc, SnmpStatusError) and exc.status == 1
            timed_out = isinstance(exc, DeviceTimeoutError)
            if (too_big or timed_out) and repetitions > 1:
                repetitions = max(1, repetitions // 2)
                log.info("walk %s: %s, max-repetitions now %d", session.device_id, exc, repetitions)
                continue
            if isinstance(exc, SnmpStatusError) and exc.status == 2:
                return  # SNMPv1 noSuchName: past the end of the agent's MIB
            raise
        if not answers:
            return
        for vb in answers:
            if vb.tag == fc.END_OF_MIB_VIEW or vb.oid[: len(root)] != root:
                return
            if vb.oid <= cursor:
                msg = f"agent answered {oid_text(vb.oid)} after {oid_text(cursor)}: a loop"
                raise DeviceProtocolError(session.device_id, msg)
            cursor = vb.oid
            yield vb
