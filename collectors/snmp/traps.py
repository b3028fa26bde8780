"""SNMP trap receiver: v1, v2c and v3 (USM) notifications -> `event.trap` readings.

Which trap means which event is data (`collectors/profiles/snmp/traps/*.yaml`).
A trap is attributed to the inventory device whose SNMP host is the sender's
address (several devices behind one address are told apart by their poll
community or v3 user). Traps from unknown addresses, with wrong credentials or
undecodable are counted in `device.trap_errors` (tag `reason`) and dropped.

    config = TrapReceiverConfig(host="192.0.2.10", port=1162, communities=["traps"])
    receiver = TrapReceiver(config, devices)
    await receiver.start()          # receiver.port is bound now
    await receiver.run(emit)        # until cancelled
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

import yaml
from pyasn1.codec.ber import decoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pydantic import Field, ValidationError
from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.entity import config as snmp_config
from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413 import ntfrcv
from pysnmp.hlapi.v3arch.asyncio import auth as hlauth
from pysnmp.proto import rfc1902, rfc1905
from pysnmp.proto.api import v2c
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

from collectors.snmp.types import Absent, Oid, SnmpValue
from dcim.configmodel import Strict
from dcim.errors import ProfileError
from dcim.inventory import PlacedDevice, SnmpTrapConfig, SnmpV3Config
from dcim.plausible import ImplausibleValueError, check_value
from dcim.reading import Reading, now_ns
from dcim.vocabulary import load_vocabulary

log = logging.getLogger(__name__)
# pysnmp is chatty at INFO about internals operators cannot act on
logging.getLogger("pysnmp").setLevel(logging.WARNING)

SNMP_TRAP_OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
#: Longest tag value taken from a trap; device text is not a place for essays.
MAX_TAG_CHARS = 128
#: Distinct (address, reason) pairs we log once each; beyond that only counters grow.
MAX_LOGGED_DROPS = 1000
#: Engine ids learned per sender address (a card reset may change it once or twice).
MAX_ENGINES_PER_ADDRESS = 4


# --- pysnmp: the receiver's engine --------------------------------------------------
# The trap receiver is the one part on pysnmp: it is the authoritative engine for
# informs and learns each sender's engine for traps (USM, RFC 3414), which the poll
# path's lean codec (a command generator) has no need for.

#: `SnmpV3Config` protocol names (net-snmp's) -> pysnmp's protocol ids.
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
    "aes192": hlauth.USM_PRIV_CFB192_AES_BLUMENTHAL,
    "aes256": hlauth.USM_PRIV_CFB256_AES_BLUMENTHAL,
    "aes192c": hlauth.USM_PRIV_CFB192_AES,
    "aes256c": hlauth.USM_PRIV_CFB256_AES,
}


def to_python(value: Any) -> SnmpValue:
    """One pyasn1 var-bind value as the poll path gives it (`SnmpValue`)."""
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


# --- configuration -----------------------------------------------------------------


#: Defined in the inventory schema (dcim must not import pysnmp); the old name stays.
TrapReceiverConfig = SnmpTrapConfig


# --- the trap map (data) ---------------------------------------------------------


class _VarbindSpec(Strict):
    oid: str = Field(pattern=r"^[0-9]+(\.[0-9]+)+$")
    metric: str | None = None
    scale: float = 1.0
    tag: str | None = None
    lookup: str | None = None


class _TrapSpec(Strict):
    oid: str = Field(pattern=r"^[0-9]+(\.[0-9]+)+$")
    name: str
    event: str
    tags: dict[str, str] = Field(default_factory=dict)
    varbinds: list[_VarbindSpec] = Field(default_factory=list)


class _TrapFile(Strict):
    mib: str
    traps: list[_TrapSpec]
    common_varbinds: list[_VarbindSpec] = Field(default_factory=list)
    lookups: dict[str, dict[str, str]] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VarbindRule:
    """What to do with a var-bind whose OID starts with `prefix`."""

    prefix: Oid
    metric: str | None
    unit: str | None
    scale: float
    tag: str | None
    lookup: Mapping[str, str] | None


@dataclass(frozen=True, slots=True)
class TrapRule:
    """One known trap: its event name, fixed tags and var-bind rules."""

    oid: Oid
    name: str
    event: str
    tags: Mapping[str, str]
    varbinds: tuple[VarbindRule, ...]


@dataclass(frozen=True, slots=True)
class TrapCatalog:
    rules: Mapping[Oid, TrapRule] = field(default_factory=dict)

    def get(self, oid: Oid) -> TrapRule | None:
        return self.rules.get(oid)


def _oid(text: str) -> Oid:
    return tuple(int(part) for part in text.split("."))


def parse_trap_file(text: str, source: str) -> list[TrapRule]:
    """Validate one trap-map file; ProfileError names the file and the problem."""
    try:
        data = _TrapFile.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as exc:
        raise ProfileError(f"trap map {source}: {exc}") from None
    vocabulary = load_vocabulary()
    events = vocabulary.get("event.trap").values
    rules = []
    for trap in data.traps:
        if trap.event not in events:
            msg = f"trap map {source}: {trap.name}: event {trap.event!r} is not an event.trap value"
            raise ProfileError(msg)
        varbinds = []
        for spec in [*trap.varbinds, *data.common_varbinds]:
            if (spec.metric is None) == (spec.tag is None):
                msg = (
                    f"trap map {source}: {trap.name}: var-bind {spec.oid} needs one of metric, tag"
                )
                raise ProfileError(msg)
            lookup = None
            if spec.lookup is not None:
                if spec.lookup not in data.lookups:
                    msg = f"trap map {source}: {trap.name}: no lookup {spec.lookup!r}"
                    raise ProfileError(msg)
                lookup = MappingProxyType(data.lookups[spec.lookup])
            unit = vocabulary.get(spec.metric).unit if spec.metric else None
            varbinds.append(
                VarbindRule(_oid(spec.oid), spec.metric, unit, spec.scale, spec.tag, lookup)
            )
        rules.append(
            TrapRule(
                _oid(trap.oid),
                trap.name,
                trap.event,
                MappingProxyType(dict(trap.tags)),
                tuple(varbinds),
            )
        )
    return rules


@cache
def load_trap_catalog() -> TrapCatalog:
    """Every shipped trap map, merged; a trap OID defined twice is an error."""
    rules: dict[Oid, TrapRule] = {}
    folder = resources.files("collectors").joinpath("profiles/snmp/traps")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        for rule in parse_trap_file(entry.read_text(encoding="utf-8"), entry.name):
            if rule.oid in rules:
                msg = f"trap map {entry.name}: trap {rule.name} is defined twice"
                raise ProfileError(msg)
            rules[rule.oid] = rule
    return TrapCatalog(MappingProxyType(rules))


# --- turning a notification into readings ------------------------------------------


def _tag_text(value: object, lookup: Mapping[str, str] | None) -> str | None:
    if isinstance(value, Absent):
        return None
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    text = text.strip("\x00 \r\n\t")
    if lookup is not None:
        text = lookup.get(text, text)
    return text[:MAX_TAG_CHARS] or None


def trap_readings(
    device_id: str,
    device_tags: Mapping[str, str],
    var_binds: Sequence[tuple[Oid, object]],
    catalog: TrapCatalog,
    ts_ns: int,
    *,
    problems: list[tuple[str, str]] | None = None,
) -> list[Reading]:
    """The event reading (plus value readings) for one notification's var-binds.

    A value var-bind goes through the same check as a polled value (a number, finite,
    in the metric's plausible range); one that fails is left out and listed in
    `problems` as (reason, detail), and the event itself is still reported.
    """
    trap_oid: Oid | None = None
    for oid, value in var_binds:
        if oid == SNMP_TRAP_OID and isinstance(value, str):
            trap_oid = _oid(value)
    if trap_oid is None:
        raise ValueError("no snmpTrapOID.0 var-bind")
    oid_text = ".".join(map(str, trap_oid))
    rule = catalog.get(trap_oid)
    tags = {**device_tags, "trap_oid": oid_text}
    values: list[Reading] = []
    if rule is not None:
        tags["trap"] = rule.name
        tags.update(rule.tags)
        for oid, value in var_binds:
            for vb in rule.varbinds:
                if oid[: len(vb.prefix)] != vb.prefix:
                    continue
                if vb.tag is not None:
                    text = _tag_text(value, vb.lookup)
                    if text is not None:
                        tags[vb.tag] = text
                elif vb.metric is not None:
                    try:
                        if not isinstance(value, int) or isinstance(value, bool):
                            raise ImplausibleValueError(
                                "wrong_type", f"{vb.metric}: expected an integer, got {value!r}"
                            )
                        number = check_value(vb.metric, float(value) * vb.scale)
                    except ImplausibleValueError as exc:
                        if problems is not None:
                            problems.append((exc.reason, str(exc)))
                        break
                    values.append(
                        Reading(device_id, vb.metric, number, vb.unit, ts_ns, device_tags)
                    )
                break
    frozen = MappingProxyType(tags)
    event = rule.event if rule is not None else "unknown"
    return [Reading(device_id, "event.trap", event, None, ts_ns, frozen), *values]


# --- who sent it -----------------------------------------------------------------


def _resolve(host: str) -> str | None:
    """The IP address of a device's SNMP host (names resolved once, at start)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except OSError:
        log.warning("trap receiver: cannot resolve %s; its traps will count as unknown", host)
        return None
    return str(infos[0][4][0])


async def _resolve_all(hosts: set[str]) -> dict[str, str | None]:
    """IP address per host: numbers at once, names looked up together (not one by one:
    thousands of devices made a start take minutes)."""
    found: dict[str, str | None] = {}
    names: list[str] = []
    for host in hosts:
        try:
            found[host] = str(ipaddress.ip_address(host))
        except ValueError:
            names.append(host)
    if names:
        loop = asyncio.get_running_loop()
        looked_up = await asyncio.gather(*(loop.run_in_executor(None, _resolve, n) for n in names))
        found.update(zip(names, looked_up, strict=True))
    return found


@dataclass(frozen=True, slots=True)
class _Sender:
    placed: PlacedDevice
    community: str | None
    v3_user: str | None


def _usm_header(datagram: bytes) -> tuple[bytes, bytes] | None:
    """(authoritative engine id, user name) of an SNMPv3 message, else None."""
    try:
        message, _ = decoder.decode(datagram, asn1Spec=SNMPv3Message())
        params, _ = decoder.decode(
            bytes(message["msgSecurityParameters"]), asn1Spec=UsmSecurityParameters()
        )
        return bytes(params["msgAuthoritativeEngineId"]), bytes(params["msgUserName"])
    except (PyAsn1Error, ValueError, TypeError):
        return None


#: pysnmp's statistics counters that say why it dropped a message -> our reason.
_DROP_COUNTERS = (
    ("__SNMPv2-MIB", "snmpInBadCommunityNames", "wrong_community"),
    ("__SNMPv2-MIB", "snmpInASNParseErrs", "malformed"),
    ("__SNMPv2-MIB", "snmpInBadVersions", "malformed"),
    ("__SNMP-MPD-MIB", "snmpInvalidMsgs", "malformed"),
    ("__SNMP-MPD-MIB", "snmpUnknownSecurityModels", "malformed"),
    ("__SNMP-MPD-MIB", "snmpUnknownPDUHandlers", "not_a_notification"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownUserNames", "unknown_user"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsWrongDigests", "wrong_auth"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsDecryptionErrors", "wrong_priv"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsNotInTimeWindows", "time_window"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnsupportedSecLevels", "security_level"),
    ("__SNMP-USER-BASED-SM-MIB", "usmStatsUnknownEngineIDs", "unknown_engine"),
)


class _Transport(udp.UdpAsyncioTransport):  # type: ignore[misc]
    """pysnmp's UDP transport, but each datagram goes through the receiver first.

    pysnmp defers processing with call_soon and drops bad traps silently; handling
    the datagram synchronously lets the receiver see what pysnmp did with it.
    """

    hook: Callable[[Any, Any, bytes], None] | None = None

    def datagram_received(self, datagram: bytes, transportAddress: Any) -> None:
        if self.hook is not None:
            self.hook(self, transportAddress, datagram)


def _grow_receive_buffer(sock: socket.socket, wanted: int) -> int:
    """Ask for a `wanted`-byte receive buffer; returns what the kernel gave (logged if less).

    SO_RCVBUFFORCE passes the net.core.rmem_max cap when we may (root, CAP_NET_ADMIN);
    otherwise SO_RCVBUF is capped there, and the log says which sysctl to raise.
    """
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    try:
        if force is None:
            raise PermissionError
        sock.setsockopt(socket.SOL_SOCKET, force, wanted)
    except OSError:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, wanted)
    got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    # Linux reports twice the size asked for (it counts its bookkeeping too)
    if got < wanted:
        log.warning(
            "trap receiver: socket receive buffer is %d KiB, not the %d KiB asked for; a burst "
            "of traps may overflow it (raise net.core.rmem_max, or run with CAP_NET_ADMIN)",
            got // 1024,
            wanted // 1024,
        )
    return got


class TrapReceiver:
    """Receives notifications on one UDP socket and emits readings for known devices."""

    def __init__(
        self,
        config: TrapReceiverConfig,
        devices: Sequence[PlacedDevice],
        catalog: TrapCatalog | None = None,
    ) -> None:
        self.config = config
        self._catalog = catalog or load_trap_catalog()
        self._devices = list(devices)
        self._senders: dict[str, list[_Sender]] = {}
        self._engine: Any = None
        self._address: tuple[str, int] | None = None
        self._emit: Callable[[Sequence[Reading]], None] | None = None
        self._users = {user.user.encode(): user for user in config.v3_users}
        self._learned: dict[str, set[bytes]] = {}
        self._counters: list[tuple[Any, str]] = []
        self._communities: dict[str, str] = {}
        self._security: dict[str, Any] = {}
        self._handled = False
        #: (device id, reason) -> traps dropped since start
        self.errors: dict[tuple[str, str], int] = {}
        self._reported: dict[tuple[str, str], int] = {}
        self._logged: set[tuple[str, str]] = set()
        self.received = 0
        #: Bytes of socket receive buffer the kernel granted (after `start()`).
        self.receive_buffer = 0
        self._last_ts: dict[str, int] = {}

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound; valid after `start()`."""
        if self._address is None:
            raise RuntimeError("trap receiver not started")
        return self._address

    @property
    def port(self) -> int:
        return self.address[1]

    async def start(self) -> tuple[str, int]:
        """Bind the socket and configure the engine; returns the bound address."""
        if self._engine is not None:
            return self.address
        loop = asyncio.get_running_loop()
        addresses = await _resolve_all(
            {placed.device.snmp.host for placed in self._devices if placed.device.snmp}
        )
        for placed in self._devices:
            snmp = placed.device.snmp
            if snmp is None:
                continue
            ip = addresses.get(snmp.host)
            if ip is None:
                continue
            community = snmp.community.get_secret_value() if snmp.community else None
            user = snmp.v3.user if snmp.v3 else None
            self._senders.setdefault(ip, []).append(_Sender(placed, community, user))

        family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((self.config.host, self.config.port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self.receive_buffer = _grow_receive_buffer(sock, self.config.receive_buffer_kb * 1024)
        engine = SnmpEngine()
        transport = _Transport(loop=loop).open_server_mode(sock=sock)
        transport.hook = self._datagram
        domain = udp6.DOMAIN_NAME if family == socket.AF_INET6 else udp.DOMAIN_NAME
        snmp_config.add_transport(engine, domain, transport)
        for index, secret in enumerate(self.config.communities):
            name = f"trap-community-{index}"
            snmp_config.add_v1_system(engine, name, secret.get_secret_value())
            self._communities[name] = secret.get_secret_value()
        for v3_user in self.config.v3_users:
            # informs are sent to our engine id; traps use the sender's (learned below)
            self._add_user(engine, v3_user, None)
        ntfrcv.NotificationReceiver(engine, self._notification)
        engine.observer.register_observer(self._observe, "rfc3412.receiveMessage:request")
        builder = engine.get_mib_builder()
        for module, symbol, reason in _DROP_COUNTERS:
            try:
                (counter,) = builder.import_symbols(module, symbol)
            except Exception:  # a counter this pysnmp lacks only makes reasons coarser
                log.debug("pysnmp has no counter %s::%s", module, symbol)
                continue
            self._counters.append((counter, reason))
        self._engine = engine
        bound = sock.getsockname()
        self._address = (str(bound[0]), int(bound[1]))
        log.info("SNMP trap receiver listening on %s:%d", *self._address)
        return self._address

    @staticmethod
    def _add_user(engine: Any, user: SnmpV3Config, engine_id: bytes | None) -> None:
        snmp_config.add_v3_user(
            engine,
            user.user,
            AUTH_PROTOCOLS[user.auth_protocol],
            user.auth_key.get_secret_value() if user.auth_key else None,
            PRIV_PROTOCOLS[user.priv_protocol],
            user.priv_key.get_secret_value() if user.priv_key else None,
            securityEngineId=v2c.OctetString(engine_id) if engine_id else None,
        )

    async def run(self, emit: Callable[[Sequence[Reading]], None]) -> None:
        """Receive until cancelled; emits events as they come and error counters periodically."""
        self._emit = emit
        await self.start()
        try:
            while True:
                await asyncio.sleep(self.config.stats_interval_s)
                self.flush_errors()
        finally:
            self.flush_errors()
            self.close()

    def close(self) -> None:
        """Release the socket; safe to call twice."""
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None

    # --- per datagram ---------------------------------------------------------------

    def _datagram(self, transport: Any, address: Any, datagram: bytes) -> None:
        source = str(address[0])
        self.received += 1
        self._handled = False
        self._security = {}
        header = _usm_header(datagram)
        if header is not None:
            self._learn_engine(source, *header)
        before = [int(counter.syntax) for counter, _ in self._counters]
        try:
            callback = transport._callback_function
            if callback is not None:
                callback(transport, address, datagram)
        except Exception:  # nothing a sender does may stop the receiver
            log.debug("trap from %s: pysnmp failed on it", source, exc_info=True)
            if not self._handled:
                self._drop(source, "malformed")
                return
        if self._handled:
            return
        reason = "malformed"
        for (counter, why), old in zip(self._counters, before, strict=True):
            if int(counter.syntax) != old:
                reason = why
                break
        if reason == "unknown_engine" and header is not None and not header[1]:
            return  # an inform sender discovering our engine id: part of the protocol
        self._drop(source, reason)

    def _learn_engine(self, source: str, engine_id: bytes, user_name: bytes) -> None:
        """Register a v3 user for a known sender's engine id (traps are sent under it)."""
        user = self._users.get(user_name)
        if user is None or not engine_id or source not in self._senders:
            return
        learned = self._learned.setdefault(source, set())
        if engine_id in learned or len(learned) >= MAX_ENGINES_PER_ADDRESS:
            return
        learned.add(engine_id)
        self._add_user(self._engine, user, engine_id)

    def _observe(self, _engine: Any, _point: str, variables: Mapping[str, Any], _ctx: Any) -> None:
        self._security = {
            "model": int(variables.get("securityModel", 0)),
            "name": bytes(variables.get("securityName", b"")),
        }

    def _notification(
        self,
        _engine: Any,
        _state: Any,
        _context_engine_id: Any,
        _context_name: Any,
        var_binds: Any,
        _ctx: Any,
    ) -> None:
        self._handled = True
        domain_address = self._engine.message_dispatcher.get_transport_info(_state)
        source = str(domain_address[1][0])
        sender = self._sender(source)
        if sender is None:
            return
        problems: list[tuple[str, str]] = []
        device_id = sender.placed.device.id
        # stores keep milliseconds: two traps of one device in the same one would be one
        # point (the second overwriting the first), so each trap gets its own millisecond
        ts = max(now_ns(), self._last_ts.get(device_id, 0) + 1_000_000)
        self._last_ts[device_id] = ts
        try:
            pairs = [(tuple(name), to_python(value)) for name, value in var_binds]
            readings = trap_readings(
                device_id, sender.placed.tags, pairs, self._catalog, ts, problems=problems
            )
        except (ValueError, TypeError) as exc:
            self._drop(source, "undecodable", detail=str(exc))
            return
        for reason, detail in problems:
            self._drop(source, reason, detail=detail, what="a value of a trap")
        if self._emit is not None:
            self._emit(readings)

    def _sender(self, source: str) -> _Sender | None:
        """The device that sent this trap; counts and returns None when unclear."""
        candidates = self._senders.get(source, [])
        if not candidates:
            self._drop(source, "unknown_source")
            return None
        if len(candidates) == 1:
            return candidates[0]
        name = self._security.get("name", b"").decode("utf-8", "replace")
        if self._security.get("model") == 3:
            matches = [c for c in candidates if c.v3_user == name]
        else:
            community = self._communities.get(name)
            matches = [c for c in candidates if c.community == community]
        if len(matches) == 1:
            return matches[0]
        self._drop(source, "ambiguous_source")
        return None

    def _drop(self, source: str, reason: str, detail: str = "", what: str = "trap") -> None:
        self._handled = True
        candidates = self._senders.get(source)
        device_id = candidates[0].placed.device.id if candidates else self.config.id
        key = (device_id, reason)
        self.errors[key] = self.errors.get(key, 0) + 1
        logged = (source, reason)
        if logged not in self._logged and len(self._logged) < MAX_LOGGED_DROPS:
            self._logged.add(logged)
            suffix = f": {detail}" if detail else ""
            log.warning(
                "%s from %s dropped (%s, device %s)%s; further ones are only counted",
                what,
                source,
                reason,
                device_id,
                suffix,
            )

    def flush_errors(self) -> None:
        """Emit `device.trap_errors` for every (device, reason) counter that changed."""
        if self._emit is None:
            return
        ts = now_ns()
        readings = []
        for (device_id, reason), count in self.errors.items():
            if self._reported.get((device_id, reason)) == count:
                continue
            self._reported[(device_id, reason)] = count
            readings.append(
                Reading(
                    device_id, "device.trap_errors", count, None, ts, self._tags(device_id, reason)
                )
            )
        if readings:
            self._emit(readings)

    def _tags(self, device_id: str, reason: str) -> Mapping[str, str]:
        for placed in self._devices:
            if placed.device.id == device_id:
                return MappingProxyType({**placed.tags, "reason": reason})
        return MappingProxyType({"device": device_id, "reason": reason})
