"""A narrow async SNMP client over pysnmp 7's low-level command generators.

Everything a request needs (target registration, var-binds) is built once per
device; a poll only sends prebuilt var-binds. MIB lookup is never used: values
come back as raw pyasn1 objects and are converted to plain Python here, so a
faster engine can replace this module without touching the rest.
"""

from __future__ import annotations

import asyncio
import enum
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
from pysnmp.hlapi.v3arch.asyncio import auth as hlauth
from pysnmp.hlapi.v3arch.asyncio.cmdgen import LCD
from pysnmp.proto import errind, rfc1902, rfc1905
from pysnmp.proto.rfc1902 import ObjectName

from dcim.errors import (
    CollectError,
    DeviceAuthError,
    DeviceProtocolError,
    DeviceTimeoutError,
)
from dcim.inventory import SnmpConfig, SnmpVersion

Oid = tuple[int, ...]


class Absent(enum.Enum):
    """SNMPv2 exception values: the agent answered, but has no value here."""

    NO_SUCH_OBJECT = "noSuchObject"
    NO_SUCH_INSTANCE = "noSuchInstance"
    END_OF_MIB_VIEW = "endOfMibView"


#: A var-bind value converted to plain Python.
SnmpValue = int | bytes | str | Absent

AUTH_PROTOCOLS: dict[str, Any] = {
    "none": hlauth.USM_AUTH_NONE,
    "md5": hlauth.USM_AUTH_HMAC96_MD5,
    "sha": hlauth.USM_AUTH_HMAC96_SHA,
    "sha224": hlauth.USM_AUTH_HMAC128_SHA224,
    "sha256": hlauth.USM_AUTH_HMAC192_SHA256,
    "sha384": hlauth.USM_AUTH_HMAC256_SHA384,
    "sha512": hlauth.USM_AUTH_HMAC384_SHA512,
}
PRIV_PROTOCOLS: dict[str, Any] = {
    "none": hlauth.USM_PRIV_NONE,
    "des": hlauth.USM_PRIV_CBC56_DES,
    "3des": hlauth.USM_PRIV_CBC168_3DES,
    "aes": hlauth.USM_PRIV_CFB128_AES,
    "aes128": hlauth.USM_PRIV_CFB128_AES,
    "aes192": hlauth.USM_PRIV_CFB192_AES,
    "aes256": hlauth.USM_PRIV_CFB256_AES,
}

_AUTH_INDICATIONS = (
    errind.UnknownUserName,
    errind.UnknownSecurityName,
    errind.WrongDigest,
    errind.DecryptionError,
    errind.AuthenticationError,
    errind.AuthenticationFailure,
    errind.UnsupportedSecurityLevel,
    errind.UnknownCommunityName,
    errind.NotInTimeWindow,
    errind.UnknownEngineID,
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


def build_object_names(oids: Sequence[str | Oid]) -> list[tuple[Any, Any]]:
    """Prebuilt request var-binds (name, NULL) for a list of OIDs."""
    return [(ObjectName(oid), _NULL) for oid in oids]


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
        return SnmpSession(self, device_id, addr_name, context_name)

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


class SnmpSession:
    """Requests to one device. One request at a time per device is the caller's rule."""

    def __init__(
        self, host: SnmpEngineHost, device_id: str, addr_name: str, context_name: bytes
    ) -> None:
        self._host = host
        self.device_id = device_id
        self._addr_name = addr_name
        self._context_name = context_name

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
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[Any, int, int, Any]] = loop.create_future()

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
            indication, status, index, vbs = await future
        if indication:
            raise _indication_error(self.device_id, indication)
        if status:
            raise SnmpStatusError(self.device_id, status, index)
        return [VarBind(tuple(name), to_python(value)) for name, value in vbs]


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
        self.error_class = "tooBig" if status == 1 else "status"
        super().__init__(device_id, f"agent answered {name} (var-bind {index})")


def _indication_error(device_id: str, indication: Any) -> CollectError:
    text = str(indication)
    if isinstance(indication, errind.RequestTimedOut):
        return DeviceTimeoutError(device_id, "no answer (timeout after retries)")
    if isinstance(indication, _AUTH_INDICATIONS):
        return DeviceAuthError(device_id, f"SNMP security: {text}")
    return DeviceProtocolError(device_id, f"SNMP engine: {text}")
