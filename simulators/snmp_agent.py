"""An asyncio SNMP agent (pysnmp 7) serving several simulated devices on one UDP port.

Each device is reached by its community (SNMPv1/v2c) or, for SNMPv3, by the
same string as context name; the first device also answers the empty v3
context, which is what most clients send by default. Values come from the
device's `snapshot()` at request time, through `DeviceInstrumController`.

    agent = await serve({"ups1": dev1, "ups2": dev2}, "127.0.0.1", 0)
    print(agent.port)           # the bound port (0 asks the OS for a free one)
    ...
    agent.close()
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import cmdrsp, context
from pysnmp.proto.api import v2c
from pysnmp.proto.rfc1905 import EndOfMibView

from simulators.instrum import DeviceInstrumController
from simulators.mib import MibDevice

#: Everything under iso.org.dod.internet is readable; devices decide what exists.
READ_VIEW = (1, 3, 6, 1)

AUTH_PROTOCOLS: dict[str, Any] = {
    "MD5": config.USM_AUTH_HMAC96_MD5,
    "SHA": config.USM_AUTH_HMAC96_SHA,
    "SHA-224": config.USM_AUTH_HMAC128_SHA224,
    "SHA-256": config.USM_AUTH_HMAC192_SHA256,
    "SHA-384": config.USM_AUTH_HMAC256_SHA384,
    "SHA-512": config.USM_AUTH_HMAC384_SHA512,
}
PRIV_PROTOCOLS: dict[str, Any] = {
    "DES": config.USM_PRIV_CBC56_DES,
    "AES": config.USM_PRIV_CFB128_AES,
    "AES-192": config.USM_PRIV_CFB192_AES,
    "AES-256": config.USM_PRIV_CFB256_AES,
}


@dataclass(frozen=True, slots=True)
class V3User:
    """An SNMPv3 USM user; no `priv_key` means authNoPriv.

    Protocol names match net-snmp's `-a` / `-x` options (SHA-256, AES, ...).
    """

    name: str
    auth_key: str
    priv_key: str | None = None
    auth_protocol: str = "SHA-256"
    priv_protocol: str = "AES"

    def __post_init__(self) -> None:
        if self.auth_protocol not in AUTH_PROTOCOLS:
            raise ValueError(f"unknown auth protocol {self.auth_protocol!r}")
        if self.priv_key is not None and self.priv_protocol not in PRIV_PROTOCOLS:
            raise ValueError(f"unknown privacy protocol {self.priv_protocol!r}")
        # RFC 3414 needs passphrases of at least 8 characters.
        for key in (self.auth_key, self.priv_key):
            if key is not None and len(key) < 8:
                raise ValueError("SNMPv3 keys must be at least 8 characters")


class _BulkResponder(cmdrsp.BulkCommandResponder):  # type: ignore[misc]
    """GETBULK that stops repeating once every repeater has hit endOfMibView.

    RFC 3416 4.2.3 lets the response end early there; pysnmp would pad it with
    max-repetitions rows of endOfMibView, which snmpbulkwalk prints verbatim.
    """

    _shape: tuple[int, int] | None = None

    def handle_management_operation(
        self, snmpEngine: Any, stateReference: Any, contextName: Any, PDU: Any
    ) -> None:
        n_vbs = len(v2c.apiPDU.get_varbinds(PDU))
        non_repeaters = min(max(int(v2c.apiBulkPDU.get_non_repeaters(PDU)), 0), n_vbs)
        # Synchronous call chain: send_varbinds runs before this returns.
        self._shape = (non_repeaters, n_vbs - non_repeaters)
        try:
            super().handle_management_operation(snmpEngine, stateReference, contextName, PDU)
        finally:
            self._shape = None

    def send_varbinds(
        self,
        snmpEngine: Any,
        stateReference: Any,
        errorStatus: Any,
        errorIndex: Any,
        varBinds: Any,
    ) -> None:
        if self._shape is not None and self._shape[1] > 0:
            n, r = self._shape
            end = n
            while end < len(varBinds):
                row = varBinds[end : end + r]
                end += r
                if all(isinstance(value, EndOfMibView) for _, value in row):
                    break
            varBinds = varBinds[:end]
        super().send_varbinds(snmpEngine, stateReference, errorStatus, errorIndex, varBinds)


def _bind_udp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class SnmpAgent:
    """One SNMP engine on one UDP port; `communities` maps community → device."""

    def __init__(
        self,
        communities: Mapping[str, MibDevice],
        *,
        v3_users: Sequence[V3User] = (),
    ) -> None:
        if not communities:
            raise ValueError("an agent needs at least one device")
        self.communities = dict(communities)
        self.v3_users = tuple(v3_users)
        self._engine: Any = None
        self._address: tuple[str, int] | None = None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound; only valid after `start()`."""
        if self._address is None:
            raise RuntimeError("agent not started")
        return self._address

    @property
    def port(self) -> int:
        return self.address[1]

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Bind, configure and begin answering; returns the bound (host, port)."""
        if self._engine is not None:
            raise RuntimeError("agent already started")
        if any(u.priv_key for u in self.v3_users) and not importlib.util.find_spec("cryptography"):
            # pysnmp silently answers decryptionError without it.
            raise RuntimeError("SNMPv3 privacy needs the 'cryptography' package")
        loop = asyncio.get_running_loop()
        # Binding our own socket gives the real port at once (port 0) and
        # queues early datagrams in the kernel until asyncio starts reading.
        sock = _bind_udp(host, port)
        bound = sock.getsockname()
        snmp_engine = engine.SnmpEngine()
        if sock.family == socket.AF_INET6:
            transport = udp6.Udp6AsyncioTransport(loop=loop).open_server_mode(sock=sock)
            config.add_transport(snmp_engine, udp6.DOMAIN_NAME, transport)
        else:
            transport = udp.UdpAsyncioTransport(loop=loop).open_server_mode(sock=sock)
            config.add_transport(snmp_engine, udp.DOMAIN_NAME, transport)

        snmp_context = context.SnmpContext(snmp_engine)
        contexts = list(self.communities)
        for community, device in self.communities.items():
            snmp_context.register_context_name(community, DeviceInstrumController(device))
            security_name = f"c-{community}"
            config.add_v1_system(snmp_engine, security_name, community, contextName=community)
            for security_model in (1, 2):  # SNMPv1, SNMPv2c
                config.add_vacm_user(
                    snmp_engine,
                    security_model,
                    security_name,
                    "noAuthNoPriv",
                    readSubTree=READ_VIEW,
                    contextName=community,
                )
        # v3 clients default to the empty context: give it the first device
        # rather than pysnmp's own engine MIBs.
        first = next(iter(self.communities.values()))
        snmp_context.unregister_context_name(b"")
        snmp_context.register_context_name(b"", DeviceInstrumController(first))

        for user in self.v3_users:
            priv = PRIV_PROTOCOLS[user.priv_protocol] if user.priv_key else config.USM_PRIV_NONE
            config.add_v3_user(
                snmp_engine,
                user.name,
                AUTH_PROTOCOLS[user.auth_protocol],
                user.auth_key,
                priv,
                user.priv_key,
            )
            level = "authPriv" if user.priv_key else "authNoPriv"
            for ctx in ["", *contexts]:
                config.add_vacm_user(
                    snmp_engine, 3, user.name, level, readSubTree=READ_VIEW, contextName=ctx
                )

        cmdrsp.GetCommandResponder(snmp_engine, snmp_context)
        cmdrsp.NextCommandResponder(snmp_engine, snmp_context)
        _BulkResponder(snmp_engine, snmp_context)
        cmdrsp.SetCommandResponder(snmp_engine, snmp_context)  # answers notWritable
        self._engine = snmp_engine
        self._address = (str(bound[0]), int(bound[1]))
        return self._address

    def close(self) -> None:
        """Stop answering and release the port; safe to call twice."""
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None

    async def __aenter__(self) -> SnmpAgent:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


async def serve(
    devices: Mapping[str, MibDevice] | Sequence[MibDevice],
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    v3_users: Sequence[V3User] = (),
) -> SnmpAgent:
    """Start an agent for `devices` and return it (see `agent.address` for the port).

    A mapping is community → device; a sequence uses each device's name as community.
    """
    communities = dict(devices) if isinstance(devices, Mapping) else {d.name: d for d in devices}
    agent = SnmpAgent(communities, v3_users=v3_users)
    await agent.start(host, port)
    return agent
