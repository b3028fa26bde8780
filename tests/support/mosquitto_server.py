"""A real Mosquitto broker on a free loopback port, for MQTT tests.

Each broker gets its own temp directory (config, persistence, log); `stop()` and
`start()` keep port and persisted sessions, which is what a restart test needs.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from tests.support.certs import Pki
from tests.support.servers import ServerProcess, free_port, require_binary

MQTT_USER = "monitor"
MQTT_PASSWORD = "s3cret-Pa55"  # noqa: S105 - a test broker's throwaway password


def binary_or_skip(name: str, default: str) -> str:
    """The binary, or skip (locally) / fail (under CI) naming the Debian package."""
    return require_binary(name, default, "apt-get install mosquitto mosquitto-clients")


class Mosquitto(ServerProcess):
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
