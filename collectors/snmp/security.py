"""SNMP security: USM protocol names, engine-id discovery, weak-security warnings.

Protocol names follow net-snmp's `-a`/`-x` options, so what works with
`snmpget` works here: `aes192`/`aes256` are the draft-blumenthal key extension
net-snmp and most embedded agents use; `aes192c`/`aes256c` are the variant
Cisco uses (net-snmp's AES-192-C/AES-256-C). The two only differ when the auth
hash is shorter than the AES key (MD5, SHA-1, SHA-224 with AES-256).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.hlapi.v3arch.asyncio import auth as hlauth
from pysnmp.proto.api import v2c
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

from dcim.inventory import SnmpConfig, SnmpVersion

log = logging.getLogger(__name__)

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

#: Broken or guessable protections, by config value (RFC 3414/3826 era choices).
_WEAK_AUTH = {"md5": "auth MD5 (broken hash)"}
_WEAK_PRIV = {
    "des": "privacy DES (56-bit key)",
    "3des": "privacy 3DES (64-bit block cipher)",
}


def weaknesses(config: SnmpConfig) -> list[str]:
    """What is weak in a device's SNMP security settings; empty when nothing is."""
    if config.version is not SnmpVersion.V3:
        return [f"SNMP{config.version.value} (community sent in clear text, no authentication)"]
    v3 = config.v3
    assert v3 is not None  # validated by SnmpConfig
    found = []
    if v3.auth_protocol == "none":
        found.append("SNMPv3 noAuthNoPriv (no authentication, no privacy)")
    elif v3.priv_protocol == "none":
        found.append("SNMPv3 authNoPriv (values travel unencrypted)")
    if v3.auth_protocol in _WEAK_AUTH:
        found.append(_WEAK_AUTH[v3.auth_protocol])
    if v3.priv_protocol in _WEAK_PRIV:
        found.append(_WEAK_PRIV[v3.priv_protocol])
    return found


def warn_weak_security(device_id: str, config: SnmpConfig) -> bool:
    """Log one warning naming the device and everything weak; True when it warned.

    Called once per device when its collector is built: weak settings are allowed
    (old management cards offer nothing better) but never silent.
    """
    found = weaknesses(config)
    if not found:
        return False
    log.warning("device %s: weak SNMP security: %s", device_id, "; ".join(found))
    return True


class WeakSecurityReporter:
    """`warn_weak_security` for a whole fleet: the first devices per weakness one by one,
    the rest at DEBUG, so 5,000 v2c PDUs make ten warning lines, not 5,000."""

    def __init__(self, listed: int = 10) -> None:
        self._listed = listed
        self._seen: dict[str, int] = {}

    def report(self, device_id: str, config: SnmpConfig) -> bool:
        found = weaknesses(config)
        if not found:
            return False
        what = "; ".join(found)
        count = self._seen[what] = self._seen.get(what, 0) + 1
        if count < self._listed:
            log.warning("device %s: weak SNMP security: %s", device_id, what)
        elif count == self._listed:
            log.warning(
                "device %s: weak SNMP security: %s (further devices with this are logged "
                "at DEBUG only)",
                device_id,
                what,
            )
        else:
            log.debug("device %s: weak SNMP security: %s", device_id, what)
        return True


# --- engine-id discovery --------------------------------------------------------


def _discovery_request(msg_id: int) -> bytes:
    """An RFC 3414 4 discovery probe: noAuthNoPriv, empty user and engine id."""
    pdu = v2c.GetRequestPDU()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_request_id(pdu, msg_id)
    message = SNMPv3Message()
    message["msgVersion"] = 3
    header = message["msgGlobalData"]
    header["msgID"] = msg_id
    header["msgMaxSize"] = 65507
    header["msgFlags"] = b"\x04"  # reportable
    header["msgSecurityModel"] = 3
    params = UsmSecurityParameters()
    params["msgAuthoritativeEngineId"] = b""
    params["msgAuthoritativeEngineBoots"] = 0
    params["msgAuthoritativeEngineTime"] = 0
    params["msgUserName"] = b""
    params["msgAuthenticationParameters"] = b""
    params["msgPrivacyParameters"] = b""
    message["msgSecurityParameters"] = encoder.encode(params)
    scoped = message["msgData"]["plaintext"]
    scoped["contextEngineId"] = b""
    scoped["contextName"] = b""
    scoped["data"]["get-request"] = pdu
    return bytes(encoder.encode(message))


def parse_engine_id(datagram: bytes, msg_id: int | None = None) -> bytes | None:
    """The authoritative engine id of an SNMPv3 message; None if it is not one."""
    try:
        message, _ = decoder.decode(datagram, asn1Spec=SNMPv3Message())
        if msg_id is not None and int(message["msgGlobalData"]["msgID"]) != msg_id:
            return None
        params, _ = decoder.decode(
            bytes(message["msgSecurityParameters"]), asn1Spec=UsmSecurityParameters()
        )
        engine_id = bytes(params["msgAuthoritativeEngineId"])
    except (PyAsn1Error, ValueError, TypeError):
        return None
    return engine_id or None


class _Probe(asyncio.DatagramProtocol):
    def __init__(self, msg_id: int) -> None:
        self.msg_id = msg_id
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        engine_id = parse_engine_id(data, self.msg_id)
        if engine_id is not None and not self.answer.done():
            self.answer.set_result(engine_id)


async def discover_engine_id(host: str, port: int, timeout_s: float) -> bytes | None:
    """Ask an agent for its engine id (RFC 3414 discovery); None if it does not answer.

    Used to tell apart, after a v3 timeout, a dead agent (no answer here either)
    from an agent that drops our requests (wrong privacy key) or one whose engine
    id changed (replaced or reset card).
    """
    loop = asyncio.get_running_loop()
    msg_id = random.randint(1, 2**31 - 1)
    transport, probe = await loop.create_datagram_endpoint(
        lambda: _Probe(msg_id), remote_addr=(host, port)
    )
    try:
        transport.sendto(_discovery_request(msg_id))
        async with asyncio.timeout(timeout_s):
            return await probe.answer
    except TimeoutError:
        return None
    finally:
        transport.close()


def cached_engine_id(engine: Any, address: tuple[str, int]) -> bytes | None:
    """The engine id pysnmp learned for an agent address, if any."""
    mp = engine.message_processing_subsystems.get(3)
    for domain in (udp.DOMAIN_NAME, udp6.DOMAIN_NAME):
        with contextlib.suppress(Exception):
            security_engine_id, _, _ = mp.get_peer_engine_info(domain, address)
            if security_engine_id is not None:
                return bytes(security_engine_id)
    return None


def forget_engine_id(engine: Any, address: tuple[str, int]) -> bool:
    """Drop pysnmp's cached engine id for an agent so the next request rediscovers it.

    pysnmp keeps a discovered engine id for minutes and then drops the new
    agent's reports (they name an engine it has no keys for), so a replaced card
    would look dead until then. pysnmp has no public call for this; if the
    private cache moves, this returns False and the caller reports the change.
    """
    mp = engine.message_processing_subsystems.get(3)
    cache = getattr(mp, "_SnmpV3MessageProcessingModel__engineIdCache", None)
    if not isinstance(cache, dict):
        return False
    stale = [key for key in cache if tuple(key[1]) == tuple(address)]
    for key in stale:
        del cache[key]
    return bool(stale)
