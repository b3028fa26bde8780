"""SNMP security settings: which are weak, and one warning per device (or per fleet) saying so.

USM protocol names (`SnmpV3Config`, `collectors.snmp.usmcrypto`) follow
net-snmp's `-a`/`-x` options, so what works with `snmpget` works here:
`aes192`/`aes256` are the draft-blumenthal key extension net-snmp and most
embedded agents use; `aes192c`/`aes256c` are the variant Cisco uses
(net-snmp's AES-192-C/AES-256-C). The two only differ when the auth
hash is shorter than the AES key (MD5, SHA-1, SHA-224 with AES-256).
"""

from __future__ import annotations

import logging

from dcim.inventory import SnmpConfig, SnmpVersion

log = logging.getLogger(__name__)

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
