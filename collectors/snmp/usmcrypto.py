"""SNMPv3 USM crypto: keys from passwords, message digests and privacy ciphers.

RFC 3414 turns a password into a key by hashing one MiB of the repeated
password (Ku), then localizes it to one agent: H(Ku | engineID | Ku). The MiB
is the costly part and does not depend on the agent, so Ku is cached per
(password, hash) and localized keys per engine id: a fleet sharing one
password pays the MiB once.

Digests are HMACs truncated per protocol (RFC 3414: MD5, SHA-1 to 12 octets;
RFC 7860: SHA-224 16, SHA-256 24, SHA-384 32, SHA-512 48). Privacy is AES in
CFB mode (RFC 3826, IV = boots | time | 64-bit salt), DES-CBC (RFC 3414 8)
and 3DES-EDE-CBC (draft-reeder-snmpv3-usm-3desede). AES-192/256 keys are
longer than some hashes; the config names choose the extension as net-snmp
names them (`collectors.snmp.security`): `aes192`/`aes256` append
H(key) (draft-blumenthal-aes-usm), `aes192c`/`aes256c` and `3des` append the
localized password key of the key so far (draft-reeder, Cisco's AES).

Keys never appear in reprs or messages.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import itertools
import secrets
from dataclasses import dataclass, field

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

#: RFC 3414 A.2: the password is repeated to fill this many octets and hashed.
PASSWORD_EXPANSION = 1024 * 1024


class UsmCryptoError(ValueError):
    """Ciphertext or parameters that cannot be decrypted (wrong length, bad salt)."""


@dataclass(frozen=True, slots=True)
class AuthProtocol:
    name: str
    hash_name: str
    mac_length: int


@dataclass(frozen=True, slots=True)
class PrivProtocol:
    name: str
    cipher: str  # "aes", "des" or "3des"
    key_length: int  # octets of localized key the cipher uses (3DES/DES: key + pre-IV)
    extension: str  # "blumenthal" or "reeder": how a key shorter than key_length grows


#: By `SnmpV3Config.auth_protocol` name.
AUTH_PROTOCOLS: dict[str, AuthProtocol] = {
    "md5": AuthProtocol("md5", "md5", 12),
    "sha": AuthProtocol("sha", "sha1", 12),
    "sha224": AuthProtocol("sha224", "sha224", 16),
    "sha256": AuthProtocol("sha256", "sha256", 24),
    "sha384": AuthProtocol("sha384", "sha384", 32),
    "sha512": AuthProtocol("sha512", "sha512", 48),
}
#: By `SnmpV3Config.priv_protocol` name.
PRIV_PROTOCOLS: dict[str, PrivProtocol] = {
    "des": PrivProtocol("des", "des", 16, "blumenthal"),  # 16 <= every hash: never extended
    "3des": PrivProtocol("3des", "3des", 32, "reeder"),
    "aes": PrivProtocol("aes", "aes", 16, "blumenthal"),
    "aes128": PrivProtocol("aes128", "aes", 16, "blumenthal"),
    "aes192": PrivProtocol("aes192", "aes", 24, "blumenthal"),
    "aes256": PrivProtocol("aes256", "aes", 32, "blumenthal"),
    "aes192c": PrivProtocol("aes192c", "aes", 24, "reeder"),
    "aes256c": PrivProtocol("aes256c", "aes", 32, "reeder"),
}


@functools.lru_cache(maxsize=256)
def password_key(password: bytes, hash_name: str) -> bytes:
    """Ku of RFC 3414 A.2: the hash of the password repeated over one MiB."""
    if not password:
        raise ValueError("an SNMPv3 password must not be empty")
    repeats = PASSWORD_EXPANSION // len(password) + 1
    return hashlib.new(hash_name, (password * repeats)[:PASSWORD_EXPANSION]).digest()


def localize(key: bytes, engine_id: bytes, hash_name: str) -> bytes:
    """Kul of RFC 3414 2.6: a key bound to one authoritative engine."""
    return hashlib.new(hash_name, key + engine_id + key).digest()


def localized_auth_key(password: bytes, auth: AuthProtocol, engine_id: bytes) -> bytes:
    return localize(password_key(password, auth.hash_name), engine_id, auth.hash_name)


def localized_priv_key(
    password: bytes, auth: AuthProtocol, priv: PrivProtocol, engine_id: bytes
) -> bytes:
    """The privacy key: localized with the auth hash, extended to the cipher's length."""
    hash_name = auth.hash_name
    key = localized_auth_key(password, auth, engine_id)
    while len(key) < priv.key_length:
        if priv.extension == "reeder":
            key += localize(password_key(key, hash_name), engine_id, hash_name)
        else:
            key += hashlib.new(hash_name, key).digest()
    return key[: priv.key_length]


# Salts only need to be unique per key: a counter from a random start (RFC 3826 3.1.2.1).
_AES_SALT = itertools.count(secrets.randbits(63))
_DES_SALT = itertools.count(secrets.randbits(31))


@dataclass(frozen=True, slots=True)
class UsmKeys:
    """One user's keys localized to one engine, with what signs and encrypts with them."""

    auth: AuthProtocol | None
    priv: PrivProtocol | None
    auth_key: bytes = field(repr=False)
    priv_key: bytes = field(repr=False)
    _algorithm: algorithms.AES | TripleDES | None = field(repr=False, compare=False)

    @property
    def mac_length(self) -> int:
        return self.auth.mac_length if self.auth is not None else 0

    def sign(self, message: bytes) -> bytes:
        """The truncated HMAC of a whole message (its digest field zeroed)."""
        assert self.auth is not None
        return hmac.digest(self.auth_key, message, self.auth.hash_name)[: self.auth.mac_length]

    def encrypt(self, plaintext: bytes, boots: int, time: int) -> tuple[bytes, bytes]:
        """(ciphertext, msgPrivacyParameters) of a scoped PDU sent by engine boots/time."""
        assert self.priv is not None
        assert self._algorithm is not None
        if self.priv.cipher == "aes":
            salt = (next(_AES_SALT) & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")
            encryptor = Cipher(self._algorithm, CFB(_aes_iv(boots, time, salt))).encryptor()
            return encryptor.update(plaintext) + encryptor.finalize(), salt
        salt = (boots & 0xFFFFFFFF).to_bytes(4, "big") + (next(_DES_SALT) & 0xFFFFFFFF).to_bytes(
            4, "big"
        )
        padded = plaintext + bytes(-len(plaintext) % 8)  # the receiver ignores what follows
        encryptor = Cipher(self._algorithm, modes.CBC(self._des_iv(salt))).encryptor()
        return encryptor.update(padded) + encryptor.finalize(), salt

    def decrypt(self, ciphertext: bytes, boots: int, time: int, salt: bytes) -> bytes:
        """The plaintext scoped PDU (DES: with its padding); UsmCryptoError if malformed."""
        assert self.priv is not None
        assert self._algorithm is not None
        if len(salt) != 8:
            raise UsmCryptoError("privacy parameters are not 8 octets")
        if self.priv.cipher == "aes":
            decryptor = Cipher(self._algorithm, CFB(_aes_iv(boots, time, salt))).decryptor()
        else:
            if len(ciphertext) % 8:
                raise UsmCryptoError("DES ciphertext is not a whole number of blocks")
            decryptor = Cipher(self._algorithm, modes.CBC(self._des_iv(salt))).decryptor()
        return decryptor.update(ciphertext) + decryptor.finalize()

    def _des_iv(self, salt: bytes) -> bytes:
        pre_iv = self.priv_key[-8:]  # the last 8 octets of the localized key (RFC 3414 8.1.1.1)
        return bytes(a ^ b for a, b in zip(pre_iv, salt, strict=True))


def _aes_iv(boots: int, time: int, salt: bytes) -> bytes:
    return (boots & 0xFFFFFFFF).to_bytes(4, "big") + (time & 0xFFFFFFFF).to_bytes(4, "big") + salt


@functools.lru_cache(maxsize=16_384)
def local_keys(
    auth_name: str,
    auth_password: bytes,
    priv_name: str,
    priv_password: bytes,
    engine_id: bytes,
) -> UsmKeys:
    """A user's keys for one engine, computed once per (passwords, protocols, engine id).

    Names are `SnmpV3Config` protocol names; KeyError for one this module lacks.
    """
    auth = AUTH_PROTOCOLS[auth_name] if auth_name != "none" else None
    priv = PRIV_PROTOCOLS[priv_name] if priv_name != "none" else None
    if auth is None:
        if priv is not None:
            raise ValueError("privacy needs authentication")
        return UsmKeys(None, None, b"", b"", None)
    auth_key = localized_auth_key(auth_password, auth, engine_id)
    if priv is None:
        return UsmKeys(auth, None, auth_key, b"", None)
    priv_key = localized_priv_key(priv_password, auth, priv, engine_id)
    algorithm: algorithms.AES | TripleDES
    if priv.cipher == "aes":
        algorithm = algorithms.AES(priv_key)
    elif priv.cipher == "des":
        algorithm = TripleDES(priv_key[:8] * 3)  # EDE with K1=K2=K3 is single DES
    else:
        algorithm = TripleDES(priv_key[:24])
    return UsmKeys(auth, priv, auth_key, priv_key, algorithm)
