"""A real net-snmp `snmpd` on a free loopback UDP port, and net-snmp's `snmptrap`, for tests.

Each agent gets its own config, persistent directory and port; nothing touches
the system snmpd. MIB loading is switched off (Debian ships no IETF MIB files),
so every OID is numeric.

    agent = Snmpd(binary, workdir, users=[UsmUser("noc", "SHA-256", "auth-pass", "AES", "priv-pass")])
    agent.start()
    ... agent.port ...
    agent.stop()
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support import servers
from tests.support.servers import ServerProcess, free_port

SYS_DESCR = "1.3.6.1.2.1.1.1.0"

#: No MIB files are loaded by the net-snmp tools and agent we start.
NO_MIBS_ENV = {"MIBS": "", "MIBDIRS": "/nonexistent"}


def require_binary(name: str, default: str) -> str:
    """Path of a net-snmp binary, or skip (locally) / fail (under CI) saying which is missing."""
    return servers.require_binary(name, default, "apt-get install snmpd snmp")


def free_udp_port() -> int:
    """A UDP port the kernel just had free on 127.0.0.1."""
    return free_port(socket.SOCK_DGRAM)


@dataclass(frozen=True, slots=True)
class UsmUser:
    """A `createUser` line; protocols use net-snmp's names (SHA-256, AES-192-C...)."""

    name: str
    auth_protocol: str | None = None
    auth_key: str | None = None
    priv_protocol: str | None = None
    priv_key: str | None = None

    @property
    def level(self) -> str:
        if self.priv_protocol:
            return "priv"
        return "auth" if self.auth_protocol else "noauth"

    def create_line(self) -> str:
        parts = ["createUser", self.name]
        if self.auth_protocol:
            parts += [self.auth_protocol, f'"{self.auth_key}"']
            if self.priv_protocol:
                parts += [self.priv_protocol, f'"{self.priv_key}"']
        return " ".join(parts)


def _env() -> dict[str, str]:
    return {**os.environ, **NO_MIBS_ENV}


class Snmpd(ServerProcess):
    """One snmpd process; `restart()` keeps the port, `engine_id` may change between starts."""

    start_timeout_s = 15.0

    def __init__(
        self,
        binary: str,
        workdir: Path,
        *,
        users: Sequence[UsmUser] = (),
        communities: Sequence[str] = ("public",),
        engine_id: str = "80001f88046463696d30303031",
    ) -> None:
        super().__init__("snmpd", workdir)
        self.binary = binary
        self.users = tuple(users)
        self.communities = tuple(communities)
        self.engine_id = engine_id
        self.port = free_udp_port()
        self.persist = workdir / "persist"
        self.config_path = workdir / "snmpd.conf"

    def _config(self) -> str:
        lines = [
            f"agentAddress udp:127.0.0.1:{self.port}",
            f"exactEngineID 0x{self.engine_id}",
            "sysDescr dcim test agent",
            # no disk, load or process tables: they are slow and irrelevant here
            "dontLogTCPWrappersConnects yes",
        ]
        for community in self.communities:
            lines.append(f"rocommunity {community} 127.0.0.1")
        for user in self.users:
            lines.append(user.create_line())
            lines.append(f"rouser {user.name} {user.level}")
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        """Start snmpd (fresh persistent state) and wait until it answers a v2c GET."""
        if self.running:
            return
        # createUser lines are consumed into the persistent store: start clean each time
        shutil.rmtree(self.persist, ignore_errors=True)
        self.persist.mkdir(parents=True)
        self.config_path.write_text(self._config())
        super().start()

    def _args(self) -> list[str]:
        pid = str(self.workdir / "pid")
        return [self.binary, "-f", "-Lo", "-C", "-c", str(self.config_path), "-p", pid]

    def _env(self) -> dict[str, str]:
        return {**_env(), "SNMP_PERSISTENT_DIR": str(self.persist)}

    def _ready(self) -> bool:
        result = subprocess.run(
            [
                "snmpget",
                "-v2c",
                "-c",
                self.communities[0],
                "-t",
                "0.2",
                "-r",
                "0",
                f"127.0.0.1:{self.port}",
                SYS_DESCR,
            ],
            capture_output=True,
            env=_env(),
            check=False,
        )
        return result.returncode == 0

    def restart(self, engine_id: str | None = None) -> None:
        """Stop and start again on the same port, optionally as a different engine."""
        self.stop()
        if engine_id is not None:
            self.engine_id = engine_id
        self.start()


def snmptrap_args(
    binary: str,
    target: tuple[str, int],
    *,
    version: str,
    trap_oid: str,
    varbinds: Sequence[tuple[str, str, str]] = (),
    community: str | None = None,
    v3: UsmUser | None = None,
    engine_id: str | None = None,
    enterprise: str = "",
    generic: int = 6,
    specific: int = 0,
    source: str | None = None,
) -> list[str]:
    """The argv of one `snmptrap`; varbinds are (oid, type letter, value).

    For v1, `trap_oid` is ignored: `enterprise` with `generic`/`specific` say which trap.
    """
    host = f"udp:{target[0]}:{target[1]}"
    args = [binary]
    if source is not None:  # send from this local address (127.0.0.x stand for devices)
        args.append(f"--clientaddr={source}")
    if version == "1":
        args += ["-v1", "-c", community or "", host, enterprise, source or "127.0.0.1"]
        args += [str(generic), str(specific), ""]
    elif version == "2c":
        args += ["-v2c", "-c", community or "", host, "", trap_oid]
    else:
        assert v3 is not None
        args += ["-v3", "-u", v3.name]
        if engine_id:
            args += ["-e", engine_id]
        if v3.priv_protocol:
            args += ["-l", "authPriv", "-x", v3.priv_protocol, "-X", v3.priv_key or ""]
        elif v3.auth_protocol:
            args += ["-l", "authNoPriv"]
        else:
            args += ["-l", "noAuthNoPriv"]
        if v3.auth_protocol:
            args += ["-a", v3.auth_protocol, "-A", v3.auth_key or ""]
        args += [host, "", trap_oid]
    for oid, kind, value in varbinds:
        args += [oid, kind, value]
    return args


def send_trap(args: Sequence[str]) -> None:
    """Run one `snmptrap` (it returns once the datagram is sent)."""
    result = subprocess.run(list(args), capture_output=True, env=_env(), check=False, timeout=10)
    if result.returncode != 0:
        raise RuntimeError(f"snmptrap failed ({result.returncode}): {result.stderr.decode()!r}")
