"""A real Mosquitto broker on a free loopback port, plus a test PKI, for MQTT tests.

Each broker gets its own temp directory (config, persistence, log); `stop()` and
`start()` keep port and persisted sessions, which is what a restart test needs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from servers import _Process, find_binary, free_port

MQTT_USER = "monitor"
MQTT_PASSWORD = "s3cret-Pa55"  # noqa: S105 - a test broker's throwaway password


def binary_or_skip(name: str, default: str) -> str:
    """The binary, or skip (locally) / fail (under CI) naming the Debian package."""
    path = find_binary(name, default)
    if path is not None:
        return path
    reason = f"{name} not found ({default}, PATH); apt-get install mosquitto mosquitto-clients"
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{reason}; CI is set, so a missing binary is a failure")
    pytest.skip(reason)


@dataclass(frozen=True)
class Pki:
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer if issuer else (name, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path) -> Pki:
    """Generate the CA and both certificates into `directory` (EC P-256: fast)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _issue("dcim test CA", ca_key, None, ca=True)
    paths = {}
    for role, server in (("server", True), ("client", False)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(f"dcim test {role}", key, (ca_cert.subject, ca_key), server=server)
        (directory / f"{role}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, directory / f"{role}.key")
        paths[role] = (directory / f"{role}.crt", directory / f"{role}.key")
    (directory / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return Pki(directory / "ca.crt", *paths["server"], *paths["client"])


class Mosquitto(_Process):
    """mosquitto -c <temp config>: plain, TLS (optionally requiring a client certificate)
    or password-protected; persistence on, so sessions survive `stop()`/`start()`."""

    def __init__(
        self,
        binary: str,
        workdir: Path,
        *,
        pki: Pki | None = None,
        require_client_cert: bool = False,
        password_file: Path | None = None,
        persistence: bool = True,
    ) -> None:
        super().__init__("mosquitto", workdir)
        self.binary = binary
        self.port = free_port()
        self.tls = pki is not None
        self.url = f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"
        self.config_path = workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'false' if password_file else 'true'}",
            f"persistence {'true' if persistence else 'false'}",
            f"persistence_location {workdir}/",
            "autosave_interval 1",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "max_queued_messages 100000",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # else mosquitto drops to a user that cannot read tmp
        if password_file is not None:
            lines.append(f"password_file {password_file}")
        if pki is not None:
            lines += [
                f"cafile {pki.ca}",
                f"certfile {pki.server_cert}",
                f"keyfile {pki.server_key}",
                f"require_certificate {'true' if require_client_cert else 'false'}",
            ]
        self.config_path.write_text("\n".join(lines) + "\n")

    def _args(self) -> list[str]:
        return [self.binary, "-c", str(self.config_path)]

    def _ready(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
            return True

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def make_password_file(passwd_binary: str, path: Path, user: str, password: str) -> Path:
    """A Mosquitto password file with one user (hashed by mosquitto_passwd itself)."""
    path.write_text("")
    subprocess.run([passwd_binary, "-b", str(path), user, password], check=True, timeout=10)
    path.chmod(0o600)
    return path
