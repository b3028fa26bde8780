"""SNMPv3 for the fast agent: the authoritative side of USM, one engine per agent port.

An engine knows one user (the fast agent's benchmark user) who may read at
authPriv; the device is the one whose community equals the request's
contextName (`simulators.fast_agent`). The engine answers a
discovery probe (or any other engine id) with usmStatsUnknownEngineIDs, other
users with usmStatsUnknownUserNames, a wrong digest with usmStatsWrongDigests,
a stale boots/time with an authenticated usmStatsNotInTimeWindows and a
scoped PDU that does not decrypt with usmStatsDecryptionErrors (RFC 3414 3.2),
each only if the request is reportable.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from collectors.snmp import fastcodec as fc
from collectors.snmp import fastv3 as fv3
from collectors.snmp.fastcodec import CodecError
from collectors.snmp.types import Oid
from collectors.snmp.usmcrypto import UsmCryptoError, UsmKeys, local_keys

#: RFC 3414 3.2.7 a: a request further than this from the engine's time is refused.
TIME_WINDOW_S = 150
#: An engine id of format 5 (octets) under net-snmp's enterprise number (RFC 3411).
_ENGINE_ID_PREFIX = bytes.fromhex("80001f8805")


def new_engine_id(port: int) -> bytes:
    """A fresh engine id: random octets and the port, so two agents never share one."""
    return _ENGINE_ID_PREFIX + secrets.token_bytes(6) + port.to_bytes(2, "big")


@dataclass(frozen=True, slots=True)
class UsmUser:
    """A USM user; protocol names as in `SnmpV3Config`."""

    name: str
    auth_protocol: str
    auth_key: str = field(repr=False)
    priv_protocol: str
    priv_key: str = field(repr=False)

    def keys(self, engine_id: bytes) -> UsmKeys:
        """The user's keys localized to an engine (cached by `usmcrypto`)."""
        return local_keys(
            self.auth_protocol,
            self.auth_key.encode(),
            self.priv_protocol,
            self.priv_key.encode(),
            engine_id,
        )


@dataclass(frozen=True, slots=True)
class V3Request:
    """A request that passed USM: its clear parts, scoped PDU and the keys to answer with."""

    message: fv3.Message
    scoped: fv3.Scoped
    keys: UsmKeys


class UsmEngine:
    """One authoritative SNMP engine (an agent port) with one user."""

    def __init__(
        self,
        engine_id: bytes,
        user: UsmUser,
        *,
        boots: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine_id = engine_id
        self.boots = boots
        self._clock = clock
        self._started = clock()
        self._user = user
        self.user = user.name.encode()
        self.keys = user.keys(engine_id)
        self.reports: dict[Oid, int] = {}

    def time(self) -> int:
        """Seconds since the engine (re)booted."""
        return int(self._clock() - self._started)

    def reboot(self, engine_id: bytes | None = None) -> None:
        """Restart: boots go up and the time restarts (a new card: a new engine id too)."""
        self.boots += 1
        self._started = self._clock()
        if engine_id is not None:
            self.engine_id = engine_id
            self.keys = self._user.keys(engine_id)

    def open(self, data: bytes) -> V3Request | bytes | None:
        """A request that passed USM, the REPORT to send back, or None to drop it."""
        try:
            message = fv3.decode_message(data)
        except CodecError:
            return None
        level = message.flags & (fv3.FLAG_AUTH | fv3.FLAG_PRIV)
        if message.security_model != fv3.USM or level == fv3.FLAG_PRIV:
            return None  # priv without auth is an invalid message (RFC 3412 7.2.5)
        if message.engine_id != self.engine_id:
            return self._report(message, data, fv3.UNKNOWN_ENGINE_IDS)
        if message.user != self.user:
            return self._report(message, data, fv3.UNKNOWN_USER_NAMES)
        keys = self.keys
        if level:
            if not fv3.authentic(data, message, keys):
                return self._report(message, data, fv3.WRONG_DIGESTS)
            if message.boots != self.boots or abs(message.time - self.time()) > TIME_WINDOW_S:
                return self._report(message, data, fv3.NOT_IN_TIME_WINDOWS, authenticated=True)
        try:
            scoped = fv3.decode_scoped(fv3.scoped_plaintext(data, message, keys))
        except (CodecError, UsmCryptoError):
            if level & fv3.FLAG_PRIV:
                return self._report(message, data, fv3.DECRYPTION_ERRORS)
            return None
        return V3Request(message, scoped, keys)

    def seal(self, request: V3Request, pdu: bytes) -> bytes:
        """The answer to a request: its PDU at the request's security level."""
        message = request.message
        scoped = fv3.scoped_pdu(self.engine_id, request.scoped.context_name, pdu)
        return fv3.encode_message(
            message.msg_id,
            message.flags & (fv3.FLAG_AUTH | fv3.FLAG_PRIV),
            engine_id=self.engine_id,
            boots=self.boots,
            time=self.time(),
            user=message.user,
            keys=request.keys,
            scoped=scoped,
        )

    def report(self, request: V3Request, oid: Oid) -> bytes | None:
        """A REPORT about a request that passed USM (snmpUnknownContexts...), at its level."""
        count = self.reports[oid] = self.reports.get(oid, 0) + 1
        if not request.message.flags & fv3.FLAG_REPORTABLE:
            return None
        pdu = fv3.report_pdu(request.scoped.header.request_id, oid, count)
        return self.seal(request, pdu)

    def _report(
        self, message: fv3.Message, data: bytes, oid: Oid, *, authenticated: bool = False
    ) -> bytes | None:
        """A USM error REPORT: clear text, or authNoPriv for notInTimeWindow (RFC 3414 3.2.7)."""
        count = self.reports[oid] = self.reports.get(oid, 0) + 1
        if not message.flags & fv3.FLAG_REPORTABLE:
            return None
        request_id = 0  # unknown unless the request's scoped PDU was readable
        if not message.flags & fv3.FLAG_PRIV:
            with contextlib.suppress(CodecError, UsmCryptoError):
                scoped = fv3.decode_scoped(fv3.scoped_plaintext(data, message, None))
                request_id = scoped.header.request_id
        pdu = fv3.report_pdu(request_id, oid, count)
        return fv3.encode_message(
            message.msg_id,
            fv3.FLAG_AUTH if authenticated else 0,
            engine_id=self.engine_id,
            boots=self.boots,
            time=self.time(),
            user=message.user,
            keys=self.keys if authenticated else None,
            scoped=fv3.scoped_pdu(self.engine_id, b"", pdu),
        )


def request_oids(request: V3Request) -> list[Oid]:
    """The OIDs a v3 request asks for."""
    return fc.decode_request_oids(request.scoped.plaintext, request.scoped.header)
