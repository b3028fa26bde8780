"""What every part of the SNMP client shares: OIDs, values, errors, the session interface.

The codec (`fastcodec`, `fastv3`), the sessions (`communitysession`,
`usmsession`), the host (`client`) and their users (collector, column walker,
`dcim walk`, discovery) all speak these types; none of them is tied to a
transport, so a test can hand the collector another implementation of
`SessionHost` (the tests' oracle, built on another SNMP stack).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from dcim.errors import DeviceAuthError, DeviceProtocolError
from dcim.inventory import SnmpConfig

Oid = tuple[int, ...]


def parse_oid(text: str) -> Oid:
    """`1.3.6.1.2.1.1.1.0` (a leading dot allowed) as a tuple of ints."""
    return tuple(int(part) for part in text.strip(".").split("."))


def oid_text(oid: Oid) -> str:
    return ".".join(str(part) for part in oid)


class Absent(enum.Enum):
    """SNMPv2 exception values: the agent answered, but has no value here."""

    NO_SUCH_OBJECT = "noSuchObject"
    NO_SUCH_INSTANCE = "noSuchInstance"
    END_OF_MIB_VIEW = "endOfMibView"


#: A var-bind value in plain Python: integers (every integer SMI type), octet
#: strings as bytes, OIDs and IP addresses as dotted text, `Absent` for exceptions.
SnmpValue = int | bytes | str | Absent


@dataclass(frozen=True, slots=True)
class VarBind:
    oid: Oid
    value: SnmpValue


@dataclass(frozen=True, slots=True)
class TypedVarBind:
    """A var-bind with its wire type (`dcim walk` records it): tag, content octets, value."""

    oid: Oid
    tag: int
    content: bytes
    value: SnmpValue


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


class SnmpSecurityError(DeviceAuthError):
    """The agent refused our credentials; `reason` says how (unknown_user, wrong_auth...).

    Messages name the device, the reason and the SNMPv3 user (not a secret),
    never a key or community.
    """

    def __init__(self, device_id: str, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(device_id, f"{detail} [{reason}]")

    @classmethod
    def refused(cls, device_id: str, reason: str, config: SnmpConfig) -> SnmpSecurityError:
        """The error for an agent's refusal (a USM REPORT), worded for `reason`."""
        v3 = config.v3
        user = repr(v3.user) if v3 is not None else "(none)"
        details = {
            "unknown_user": f"agent does not know SNMPv3 user {user}",
            "wrong_auth": f"authentication failed for SNMPv3 user {user}: wrong auth key or "
            f"auth protocol ({v3.auth_protocol if v3 else '-'})",
            "wrong_priv": f"agent could not decrypt our request: wrong priv key or priv "
            f"protocol ({v3.priv_protocol if v3 else '-'}) for SNMPv3 user {user}",
            "security_level": f"agent refuses this security level for SNMPv3 user {user}",
            "time_window": "agent says our request is outside its time window (engine boots/time)",
            "unknown_engine": "agent does not recognise the engine id we used",
            "wrong_community": "agent refused the community",
        }
        return cls(device_id, reason, details.get(reason, f"SNMP security: REPORT {reason}"))


class Session(Protocol):
    """Requests to one device; one request at a time per device is the caller's rule.

    Raises `DeviceTimeoutError` (no answer), `SnmpSecurityError` (credentials
    refused), `SnmpStatusError` (error-status) or `DeviceProtocolError`.
    """

    @property
    def device_id(self) -> str: ...

    async def get(self, oids: Sequence[Oid]) -> list[VarBind]:
        """GET the OIDs in one PDU."""
        ...

    async def get_next(self, oids: Sequence[Oid]) -> list[VarBind]:
        """GETNEXT (SNMPv1 has no GETBULK)."""
        ...

    async def get_bulk(self, oids: Sequence[Oid], max_repetitions: int) -> list[VarBind]:
        """GETBULK (non-repeaters 0) from the given OIDs."""
        ...


class RecordingSession(Session, Protocol):
    """A session that also keeps each value's wire type (what `dcim walk` records)."""

    async def get_bulk_typed(
        self, oids: Sequence[Oid], max_repetitions: int
    ) -> list[TypedVarBind]: ...


class SessionHost(Protocol):
    """Hands out sessions for devices; owns what they share (sockets) until `close`."""

    async def session(self, device_id: str, config: SnmpConfig) -> Session: ...

    def close(self) -> None: ...
