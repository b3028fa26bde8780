"""A narrow async SNMP client over pysnmp 7's low-level command generators.

Everything a request needs (target registration, var-binds) is built once per
device; a poll only sends prebuilt var-binds. MIB lookup is never used: values
come back as raw pyasn1 objects and are converted to plain Python here, so a
faster engine can replace this module without touching the rest.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pyasn1.type import univ
from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413 import cmdgen
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    UdpTransportTarget,
    UsmUserData,
)
from pysnmp.hlapi.v3arch.asyncio.cmdgen import LCD
from pysnmp.proto import errind, rfc1902, rfc1905
from pysnmp.proto.rfc1902 import ObjectName

from collectors.snmp.security import (
    AUTH_PROTOCOLS,
    PRIV_PROTOCOLS,
    cached_engine_id,
    discover_engine_id,
    forget_engine_id,
)
from dcim.errors import (
    CollectError,
    DeviceAuthError,
    DeviceProtocolError,
    DeviceTimeoutError,
)
from dcim.inventory import SnmpConfig, SnmpVersion

log = logging.getLogger(__name__)

Oid = tuple[int, ...]


class Absent(enum.Enum):
    """SNMPv2 exception values: the agent answered, but has no value here."""

    NO_SUCH_OBJECT = "noSuchObject"
    NO_SUCH_INSTANCE = "noSuchInstance"
    END_OF_MIB_VIEW = "endOfMibView"


#: A var-bind value converted to plain Python.
SnmpValue = int | bytes | str | Absent

#: pysnmp error indications that mean "credentials refused", with our reason tag.
_AUTH_REASONS: tuple[tuple[type[Any], str], ...] = (
    (errind.UnknownUserName, "unknown_user"),
    (errind.WrongDigest, "wrong_auth"),
    (errind.AuthenticationError, "wrong_auth"),
    (errind.AuthenticationFailure, "wrong_auth"),
    (errind.DecryptionError, "wrong_priv"),
    (errind.UnsupportedSecurityLevel, "security_level"),
    (errind.NotInTimeWindow, "time_window"),
    (errind.UnknownEngineID, "unknown_engine"),
    (errind.UnknownSecurityName, "unknown_user"),
    (errind.UnknownCommunityName, "wrong_community"),
)

_GET = cmdgen.GetCommandGenerator()
_BULK = cmdgen.BulkCommandGeneratorSingleRun()
_NEXT = cmdgen.NextCommandGeneratorSingleRun()
_NULL = univ.Null("")


def to_python(value: Any) -> SnmpValue:
    """Convert one pyasn1 var-bind value to plain Python."""
    if isinstance(value, rfc1905.NoSuchInstance):
        return Absent.NO_SUCH_INSTANCE
    if isinstance(value, rfc1905.NoSuchObject):
        return Absent.NO_SUCH_OBJECT
    if isinstance(value, rfc1905.EndOfMibView):
        return Absent.END_OF_MIB_VIEW
    if isinstance(value, rfc1902.IpAddress):
        return ".".join(str(octet) for octet in value.asOctets())
    if isinstance(value, univ.OctetString):
        return bytes(value.asOctets())
    if isinstance(value, univ.ObjectIdentifier):
        return ".".join(str(part) for part in value)
    if isinstance(value, univ.Integer):
        return int(value)
    return Absent.NO_SUCH_OBJECT  # NULL or a type no profile can use


#: ObjectNames by OID: building one costs ~5 µs and table walks ask for the same
#: cursors poll after poll (pyasn1 values are immutable, so sharing is safe).
_NAMES: dict[str | Oid, Any] = {}
_NAMES_MAX = 100_000


def build_object_names(oids: Sequence[str | Oid]) -> list[tuple[Any, Any]]:
    """Prebuilt request var-binds (name, NULL) for a list of OIDs."""
    out = []
    for oid in oids:
        name = _NAMES.get(oid)
        if name is None:
            if len(_NAMES) >= _NAMES_MAX:
                _NAMES.clear()
            name = _NAMES[oid] = ObjectName(oid)
        out.append((name, _NULL))
    return out


@dataclass(frozen=True, slots=True)
class VarBind:
    oid: Oid
    value: SnmpValue


class SnmpEngineHost:
    """One pysnmp engine (one UDP socket) shared by many devices.

    More than ~100 requests in flight on one socket dropped packets here (kernel
    receive buffer), so requests wait on a semaphore beyond `max_in_flight`.
    """

    def __init__(self, max_in_flight: int = 100) -> None:
        self.engine = SnmpEngine()
        self._in_flight = asyncio.Semaphore(max_in_flight)

    async def session(self, device_id: str, config: SnmpConfig) -> SnmpSession:
        """Register a device's target on the engine and return its session."""
        target = await UdpTransportTarget.create(
            (config.host, config.port), timeout=config.timeout_s, retries=config.retries
        )
        auth = _auth_data(config)
        context_name = config.v3.context_name.encode() if config.v3 else b""
        addr_name, _ = LCD.configure(self.engine, auth, target, context_name)
        address = (str(target.transport_address[0]), int(target.transport_address[1]))
        return SnmpSession(self, device_id, addr_name, context_name, config=config, address=address)

    def close(self) -> None:
        """Close the engine's transports."""
        dispatcher = self.engine.transport_dispatcher
        if dispatcher is not None:
            dispatcher.close_dispatcher()


def _auth_data(config: SnmpConfig) -> CommunityData | UsmUserData:
    if config.version is SnmpVersion.V3:
        v3 = config.v3
        assert v3 is not None  # validated by SnmpConfig
        return UsmUserData(
            v3.user,
            authKey=v3.auth_key.get_secret_value() if v3.auth_key else None,
            privKey=v3.priv_key.get_secret_value() if v3.priv_key else None,
            authProtocol=AUTH_PROTOCOLS[v3.auth_protocol],
            privProtocol=PRIV_PROTOCOLS[v3.priv_protocol],
        )
    assert config.community is not None  # validated by SnmpConfig
    mp_model = 0 if config.version is SnmpVersion.V1 else 1
    return CommunityData(config.community.get_secret_value(), mpModel=mp_model)


class SnmpSecurityError(DeviceAuthError):
    """The agent refused our credentials; `reason` says how (unknown_user, wrong_auth...).

    Messages name the device, the reason and the SNMPv3 user (not a secret),
    never a key or community.
    """

    def __init__(self, device_id: str, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(device_id, f"{detail} [{reason}]")


_Result = tuple[Any, int, int, Any]


class SnmpSession:
    """Requests to one device. One request at a time per device is the caller's rule."""

    def __init__(
        self,
        host: SnmpEngineHost,
        device_id: str,
        addr_name: str,
        context_name: bytes,
        *,
        config: SnmpConfig,
        address: tuple[str, int],
    ) -> None:
        self._host = host
        self.device_id = device_id
        self._addr_name = addr_name
        self._context_name = context_name
        self._config = config
        self.address = address

    async def get(self, var_binds: Sequence[tuple[Any, Any]]) -> list[VarBind]:
        """GET prebuilt var-binds in one PDU."""
        return await self._request(_GET, None, var_binds)

    async def get_next(self, var_binds: Sequence[tuple[Any, Any]]) -> list[VarBind]:
        """GETNEXT (SNMPv1 has no GETBULK)."""
        return await self._request(_NEXT, None, var_binds)

    async def get_bulk(
        self, var_binds: Sequence[tuple[Any, Any]], max_repetitions: int
    ) -> list[VarBind]:
        """GETBULK (non-repeaters 0) from the given OIDs."""
        return await self._request(_BULK, max_repetitions, var_binds)

    async def _request(
        self, generator: Any, max_repetitions: int | None, var_binds: Sequence[tuple[Any, Any]]
    ) -> list[VarBind]:
        indication, status, index, vbs = await self._send(generator, max_repetitions, var_binds)
        probed: bytes | None = None
        if isinstance(indication, errind.RequestTimedOut):
            # A silent agent may be dead, or alive and dropping what we send: ask it.
            probed = await self._discover()
            if probed is not None and self._engine_changed(probed):
                indication, status, index, vbs = await self._send(
                    generator, max_repetitions, var_binds
                )
        if isinstance(indication, errind.RequestTimedOut):
            raise self._timeout_error(probed)
        if indication:
            raise _indication_error(self.device_id, indication, self._config)
        if status:
            raise SnmpStatusError(self.device_id, status, index)
        return [VarBind(tuple(name), to_python(value)) for name, value in vbs]

    async def _send(
        self, generator: Any, max_repetitions: int | None, var_binds: Sequence[tuple[Any, Any]]
    ) -> _Result:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_Result] = loop.create_future()

        def done(
            _engine: Any,
            _handle: Any,
            indication: Any,
            status: Any,
            index: Any,
            vbs: Any,
            _ctx: Any,
        ) -> None:
            if not future.done():
                future.set_result((indication, int(status), int(index), vbs))

        engine = self._host.engine
        async with self._host._in_flight:
            if max_repetitions is None:
                generator.send_varbinds(
                    engine, self._addr_name, None, self._context_name, var_binds, done
                )
            else:
                generator.send_varbinds(
                    engine,
                    self._addr_name,
                    None,
                    self._context_name,
                    0,
                    max_repetitions,
                    var_binds,
                    done,
                )
            return await future

    async def _discover(self) -> bytes | None:
        return await discover_engine_id(*self.address, timeout_s=self._config.timeout_s)

    def _engine_changed(self, probed: bytes) -> bool:
        """True when the agent now has another engine id than the one pysnmp cached.

        pysnmp would keep the old id for minutes and drop every answer; forget it
        so the retry rediscovers. A changed id means a replaced or reset card (or
        someone else answering), so it is logged.
        """
        if self._config.version is not SnmpVersion.V3:
            return False
        cached = cached_engine_id(self._host.engine, self.address)
        if cached is None or cached == probed:
            return False
        log.warning(
            "device %s: SNMP engine id changed from %s to %s (card replaced or reset?); "
            "rediscovering",
            self.device_id,
            cached.hex(),
            probed.hex(),
        )
        return forget_engine_id(self._host.engine, self.address)

    def _timeout_error(self, probed: bytes | None) -> CollectError:
        tries = self._config.retries + 1
        if probed is None:
            return DeviceTimeoutError(
                self.device_id,
                f"no answer (timeout after {tries} tries of {self._config.timeout_s} s)",
            )
        v3 = self._config.v3
        if self._config.version is not SnmpVersion.V3:
            return SnmpSecurityError(
                self.device_id,
                "wrong_community",
                f"agent answers SNMPv3 engine discovery but ignores our SNMP{self._config.version.value} "
                "requests: wrong community, or this address is not allowed",
            )
        assert v3 is not None
        if v3.priv_protocol != "none":
            return SnmpSecurityError(
                self.device_id,
                "wrong_priv",
                f"agent answers engine discovery but drops our requests: wrong priv key or "
                f"priv protocol ({v3.priv_protocol}) for SNMPv3 user {v3.user!r}",
            )
        return DeviceTimeoutError(
            self.device_id,
            f"no answer to requests (timeout after {tries} tries), though the agent "
            "answers engine discovery",
        )


class SnmpStatusError(DeviceProtocolError):
    """The agent answered with an error-status (v1 noSuchName, tooBig, genErr...)."""

    STATUS_NAMES: ClassVar[dict[int, str]] = {
        1: "tooBig",
        2: "noSuchName",
        3: "badValue",
        4: "readOnly",
        5: "genErr",
        6: "noAccess",
        16: "authorizationError",
    }

    def __init__(self, device_id: str, status: int, index: int) -> None:
        self.status = status
        self.index = index
        name = self.STATUS_NAMES.get(status, f"error-status {status}")
        # authorizationError: the agent knows us but denies access (VACM): an auth problem
        self.error_class = {1: "tooBig", 16: "auth"}.get(status, "status")
        super().__init__(device_id, f"agent answered {name} (var-bind {index})")


def _indication_error(device_id: str, indication: Any, config: SnmpConfig) -> CollectError:
    text = str(indication)
    if isinstance(indication, errind.RequestTimedOut):
        return DeviceTimeoutError(device_id, "no answer (timeout after retries)")
    for kind, reason in _AUTH_REASONS:
        if isinstance(indication, kind):
            return SnmpSecurityError(device_id, reason, _security_detail(reason, text, config))
    return DeviceProtocolError(device_id, f"SNMP engine: {text}")


def _security_detail(reason: str, text: str, config: SnmpConfig) -> str:
    """A message for a refused request; names the user, never a key or community."""
    v3 = config.v3
    user = repr(v3.user) if v3 is not None else "(none)"
    details = {
        "unknown_user": f"agent does not know SNMPv3 user {user}",
        "wrong_auth": f"authentication failed for SNMPv3 user {user}: wrong auth key or "
        f"auth protocol ({v3.auth_protocol if v3 else '-'})",
        "wrong_priv": f"agent could not decrypt our request: wrong priv key or priv protocol "
        f"({v3.priv_protocol if v3 else '-'}) for SNMPv3 user {user}",
        "security_level": f"agent refuses this security level for SNMPv3 user {user}",
        "time_window": "agent says our request is outside its time window (engine boots/time)",
        "unknown_engine": "agent does not recognise the engine id we used",
        "wrong_community": "agent refused the community",
    }
    return details.get(reason, f"SNMP security: {text}")
