"""SNMPv3 sessions: USM engine discovery, time sync, REPORTs as errors.

An agent's engine (id, boots, time) is learned once per address by the RFC
3414 4 discovery probe and shared by every session to that address (a fleet
agent serving thousands of contexts is probed once). Our estimate of the
agent's clock is its reported time plus our monotonic clock since.

REPORTs that a resend cures are handled once per request: notInTimeWindow
(the agent rebooted: boots went up, or its clock jumped) resyncs boots/time
from the authenticated report; unknownEngineID naming another engine (card
replaced or reset) adopts it, re-localizes the keys and logs the change. The
other REPORTs become `SnmpSecurityError`s naming the reason. A request that
goes unanswered is followed by a discovery probe: a live agent that drops our
requests has the wrong priv key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from collectors.snmp import fastcodec as fc
from collectors.snmp import fastv3 as fv3
from collectors.snmp.transport import Channel, Requests, probe_engine
from collectors.snmp.types import (
    Oid,
    SnmpSecurityError,
    SnmpStatusError,
    TypedVarBind,
    VarBind,
)
from collectors.snmp.usmcrypto import UsmCryptoError, UsmKeys
from collectors.snmp.usmcrypto import local_keys as _local_keys
from dcim.errors import CollectError, DeviceProtocolError, DeviceTimeoutError
from dcim.inventory import SnmpConfig

log = logging.getLogger(__name__)
#: Engine time is a 31-bit counter (RFC 3414 2.2.1).
_TIME_MAX = 2**31 - 1


class EngineState:
    """What we know of one agent's SNMP engine; shared by every session to its address."""

    __slots__ = ("boots", "discovery", "engine_id", "time_base")

    def __init__(self) -> None:
        self.engine_id: bytes | None = None
        self.boots = 0
        self.time_base = 0.0  # agent's engine time minus our monotonic clock
        #: the probe under way for every session of this address: True answered,
        #: False unanswered, None abandoned (its session was cancelled)
        self.discovery: asyncio.Future[bool | None] | None = None

    def time(self) -> int:
        """Our estimate of the agent's engine time now."""
        return min(max(int(time.monotonic() + self.time_base), 0), _TIME_MAX)

    def sync(self, boots: int, engine_time: int) -> None:
        self.boots = boots
        self.time_base = engine_time - time.monotonic()

    def advance(self, boots: int, engine_time: int) -> None:
        """Take the values of an authentic message if they are newer (RFC 3414 3.2.7 b)."""
        if boots > self.boots or (boots == self.boots and engine_time > self.time()):
            self.sync(boots, engine_time)


class UsmSession:
    """Requests to one SNMPv3 device; one request at a time per device is the caller's rule."""

    def __init__(
        self,
        requests: Requests,
        channel: Channel,
        device_id: str,
        config: SnmpConfig,
        address: tuple[str, int],
        *,
        engine: EngineState,
    ) -> None:
        v3 = config.v3
        assert v3 is not None  # validated by SnmpConfig
        self._requests = requests
        self._channel = channel
        self.device_id = device_id
        self._config = config
        self.address = address
        self._engine = engine
        self._v3 = v3
        self._user = v3.user.encode()
        self._context = v3.context_name.encode()
        level = 0
        if v3.auth_protocol != "none":
            level |= fv3.FLAG_AUTH
            if v3.priv_protocol != "none":
                level |= fv3.FLAG_PRIV
        self._level = level
        self._timeout_s = config.timeout_s
        self._tries = config.retries + 1
        self._keys: UsmKeys | None = None
        self._keys_engine: bytes | None = None

    async def get(self, oids: Sequence[Oid]) -> list[VarBind]:
        return await self._v3_request(fc.GET, 0, oids)

    async def get_next(self, oids: Sequence[Oid]) -> list[VarBind]:
        return await self._v3_request(fc.GET_NEXT, 0, oids)

    async def get_bulk(self, oids: Sequence[Oid], max_repetitions: int) -> list[VarBind]:
        return await self._v3_request(fc.GET_BULK, max_repetitions, oids)

    async def get_bulk_typed(self, oids: Sequence[Oid], max_repetitions: int) -> list[TypedVarBind]:
        """GETBULK keeping each value's wire type (`dcim walk`)."""
        plaintext, header = await self._v3_answer(fc.GET_BULK, max_repetitions, oids)
        try:
            return fc.decode_typed_varbinds(plaintext, header.varbinds_start, header.varbinds_end)
        except fc.CodecError as exc:
            raise DeviceProtocolError(self.device_id, f"malformed SNMP response: {exc}") from None

    async def _v3_request(
        self, pdu_type: int, max_repetitions: int, oids: Sequence[Oid]
    ) -> list[VarBind]:
        plaintext, header = await self._v3_answer(pdu_type, max_repetitions, oids)
        try:
            return fc.decode_varbinds(plaintext, header.varbinds_start, header.varbinds_end)
        except fc.CodecError as exc:
            msg = f"malformed SNMP response: {exc}"
            raise DeviceProtocolError(self.device_id, msg) from None

    async def _v3_answer(
        self, pdu_type: int, max_repetitions: int, request: Sequence[Oid]
    ) -> tuple[bytes, fc.Header]:
        """The response's scoped-PDU plaintext and header; raises on silence, REPORTs, status."""
        oids = tuple(request)
        cured: set[str] = set()  # each cure at most once per request
        while True:
            engine_id = await self._engine_id()
            answer = await self._send_v3(engine_id, pdu_type, max_repetitions, oids)
            if answer is None:
                # a silent agent may be dead, or alive and dropping what we send: ask it
                probed = await self._probe()
                if probed is not None and "engine" not in cured:
                    cured.add("engine")
                    if self._adopt(probed.message, engine_id):
                        continue
                raise self._timeout_error(probed.message.engine_id if probed else None)
            message, header = answer.message, answer.scoped.header
            if header.pdu_type == fc.REPORT:
                if self._cure(answer, engine_id, cured):
                    continue
                raise self._report_error(answer)
            if answer.authenticated:  # digest checked on receipt
                self._engine.advance(message.boots, message.time)
            if header.error_status:
                raise SnmpStatusError(self.device_id, header.error_status, header.error_index)
            return answer.scoped.plaintext, header

    async def _send_v3(
        self, engine_id: bytes, pdu_type: int, max_repetitions: int, oids: tuple[Oid, ...]
    ) -> fv3.Incoming | None:
        engine = self._engine
        keys = self._local_keys(engine_id)
        template = self._requests.template(
            ("v3", engine_id, self._context, pdu_type, max_repetitions, oids),
            lambda: fv3.scoped_template(
                engine_id, self._context, pdu_type, oids, max_repetitions=max_repetitions
            ),
        )
        rid = self._requests.next_id()
        request = fv3.encode_message(
            rid,
            self._level | fv3.FLAG_REPORTABLE,
            engine_id=engine_id,
            boots=engine.boots,
            time=engine.time(),
            user=self._user,
            keys=keys,
            scoped=template.build(rid),
        )
        answer = await self._channel.exchange(
            self.device_id,
            rid,
            request,
            self.address,
            timeout_s=self._timeout_s,
            tries=self._tries,
            check=self._check,
        )
        assert answer is None or isinstance(answer, fv3.Incoming)
        return answer

    def _local_keys(self, engine_id: bytes) -> UsmKeys:
        if self._keys is None or self._keys_engine != engine_id:
            v3 = self._v3
            self._keys = _local_keys(
                v3.auth_protocol,
                v3.auth_key.get_secret_value().encode() if v3.auth_key else b"",
                v3.priv_protocol,
                v3.priv_key.get_secret_value().encode() if v3.priv_key else b"",
                engine_id,
            )
            self._keys_engine = engine_id
        return self._keys

    def _check(self, data: bytes, msg_id: int) -> fv3.Incoming | None:
        """An answer to our request, verified and decrypted; None for anything else.

        Runs in the receive path, so a forged or corrupt datagram with our msgID
        is dropped there and the request keeps waiting for the real answer.
        """
        keys = self._keys
        try:
            message = fv3.decode_message(data)
            if message.security_model != fv3.USM:
                return None
            authenticated = bool(message.flags & fv3.FLAG_AUTH)
            if authenticated and (
                keys is None
                or message.user != self._user
                or message.engine_id != self._keys_engine
                or not fv3.authentic(data, message, keys)
            ):
                return None
            scoped = fv3.decode_scoped(fv3.scoped_plaintext(data, message, keys))
        except (fc.CodecError, UsmCryptoError):
            return None
        header = scoped.header
        if header.pdu_type == fc.RESPONSE:
            # an answer at another security level than asked is spoofed or downgraded
            if header.request_id != msg_id or message.flags & 3 != self._level:
                return None
        elif header.pdu_type != fc.REPORT:  # REPORTs of USM errors cannot be authenticated
            return None
        return fv3.Incoming(message, scoped, authenticated)

    async def _engine_id(self) -> bytes:
        """The agent's engine id, discovered on first contact (once for all its sessions)."""
        engine = self._engine
        while engine.engine_id is None:
            if engine.discovery is not None:
                answered = await asyncio.shield(engine.discovery)
                if answered is False:
                    raise self._timeout_error(None)
                continue
            future = engine.discovery = asyncio.get_running_loop().create_future()
            answered = None
            try:
                probed = await self._probe()
                answered = probed is not None
                if probed is None:
                    raise self._timeout_error(None)
                engine.engine_id = probed.message.engine_id
                engine.sync(probed.message.boots, probed.message.time)
            finally:
                engine.discovery = None
                future.set_result(answered)
        return engine.engine_id

    async def _probe(self) -> fv3.Incoming | None:
        """Send the discovery probe: the agent's REPORT (engine id, boots, time), or None."""
        return await probe_engine(
            self._channel,
            self._requests,
            self.device_id,
            self.address,
            timeout_s=self._timeout_s,
            tries=self._tries,
        )

    def _cure(self, answer: fv3.Incoming, sent_engine: bytes, cured: set[str]) -> bool:
        """Act on a REPORT a resend may cure; True to resend."""
        message = answer.message
        oid = fv3.report_oid(answer.scoped)
        if oid == fv3.NOT_IN_TIME_WINDOWS and answer.authenticated and "time" not in cured:
            cured.add("time")
            log.debug(
                "device %s: SNMP engine boots/time resynced to %d/%d",
                self.device_id,
                message.boots,
                message.time,
            )
            self._engine.sync(message.boots, message.time)
            return True
        if oid == fv3.UNKNOWN_ENGINE_IDS and "engine" not in cured:
            cured.add("engine")
            return self._adopt(message, sent_engine)
        return False

    def _adopt(self, message: fv3.Message, sent_engine: bytes) -> bool:
        """Take a new engine id the agent named; True when it differs from what we sent.

        A changed id means a replaced or reset card (or someone else answering),
        so it is logged.
        """
        new = message.engine_id
        if not new or new == sent_engine:
            return False
        engine = self._engine
        if engine.engine_id != new:  # another session to this agent may have seen it first
            log.warning(
                "device %s: SNMP engine id changed from %s to %s (card replaced or reset?); "
                "rediscovering",
                self.device_id,
                sent_engine.hex(),
                new.hex(),
            )
            engine.engine_id = new
            engine.sync(message.boots, message.time)
        return True

    def _timeout_error(self, probed: bytes | None) -> CollectError:
        """Every try unanswered: a dead agent, or (it answers the probe) a wrong priv key."""
        if probed is None:
            return DeviceTimeoutError(
                self.device_id,
                f"no answer (timeout after {self._tries} tries of {self._timeout_s} s)",
            )
        v3 = self._v3
        if v3.priv_protocol != "none":
            return SnmpSecurityError(
                self.device_id,
                "wrong_priv",
                f"agent answers engine discovery but drops our requests: wrong priv key or "
                f"priv protocol ({v3.priv_protocol}) for SNMPv3 user {v3.user!r}",
            )
        return DeviceTimeoutError(
            self.device_id,
            f"no answer to requests (timeout after {self._tries} tries), though the agent "
            "answers engine discovery",
        )

    def _report_error(self, answer: fv3.Incoming) -> CollectError:
        oid = fv3.report_oid(answer.scoped)
        reason = fv3.REPORT_REASONS.get(oid) if oid is not None else None
        if reason is not None:
            return SnmpSecurityError.refused(self.device_id, reason, self._config)
        if oid is None:
            return DeviceProtocolError(self.device_id, "agent sent an empty REPORT")
        name = fv3.REPORT_NAMES.get(oid, ".".join(map(str, oid)))
        if oid == fv3.UNKNOWN_CONTEXTS:
            name += f" (context name {self._v3.context_name!r})"
        return DeviceProtocolError(self.device_id, f"agent sent a REPORT: {name}")
