"""A real Prometheus Alertmanager (Debian package) on free loopback ports, for tests.

Optionally a member of a cluster (gossip on its own loopback port, peers
given), and optionally behind TLS and HTTP basic auth (its --web.config.file).
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.servers import free_port, require_binary, stop_process
from tests.support.waiting import wait_until


def alertmanager_binary() -> str:
    """The binary; a skip without it, a failure under CI (where it must be installed)."""
    name = "prometheus-alertmanager"
    return require_binary(name, f"/usr/bin/{name}", f"apt-get install {name}")


@dataclass
class Alertmanager:
    url: str
    cluster_address: str
    process: subprocess.Popen[bytes]
    log: Path
    ca_file: Path | None = None
    auth: tuple[str, str] | None = None
    _context: ssl.SSLContext | None = field(default=None, repr=False)

    def request(self, path: str) -> tuple[int, bytes]:
        req = urllib.request.Request(self.url + path)  # noqa: S310 - loopback
        if self.auth is not None:
            token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        if self.ca_file is not None and self._context is None:
            self._context = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with urllib.request.urlopen(req, timeout=5, context=self._context) as resp:  # noqa: S310
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def alerts(self) -> list[dict[str, Any]]:
        status, body = self.request("/api/v2/alerts")
        assert status == 200, body
        alerts: list[dict[str, Any]] = json.loads(body)
        return alerts

    def cluster_peers(self) -> int:
        status, body = self.request("/api/v2/status")
        assert status == 200, body
        return len(json.loads(body)["cluster"].get("peers") or [])

    def stop(self) -> None:
        stop_process(self.process)


def start_alertmanager(
    directory: Path,
    *,
    peers: tuple[str, ...] = (),
    clustered: bool = False,
    tls: tuple[Path, Path] | None = None,
    user: tuple[str, str] | None = None,
) -> Alertmanager:
    """Start one Alertmanager with its own data dir under `directory`; wait until it answers."""
    directory.mkdir(parents=True, exist_ok=True)
    binary = alertmanager_binary()
    config = directory / "alertmanager.yml"
    config.write_text("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
    port = free_port()
    args = [
        binary,
        f"--config.file={config}",
        f"--storage.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    cluster_address = ""
    if clustered or peers:
        cluster_address = f"127.0.0.1:{free_port()}"
        args += [f"--cluster.listen-address={cluster_address}", "--cluster.settle-timeout=0s"]
        args += [f"--cluster.peer={peer}" for peer in peers]
    else:
        args.append("--cluster.listen-address=")
    web: list[str] = []
    if tls is not None:
        web += ["tls_server_config:", f"  cert_file: {tls[0]}", f"  key_file: {tls[1]}"]
    if user is not None:
        import bcrypt

        hashed = bcrypt.hashpw(user[1].encode(), bcrypt.gensalt(rounds=4)).decode()
        web += ["basic_auth_users:", f"  {user[0]}: '{hashed}'"]
    if web:
        (directory / "web.yml").write_text("\n".join(web) + "\n")
        args.append(f"--web.config.file={directory / 'web.yml'}")
    log = directory / "alertmanager.log"
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    scheme = "https" if tls is not None else "http"
    server = Alertmanager(
        f"{scheme}://127.0.0.1:{port}",
        cluster_address,
        process,
        log,
        ca_file=tls[0] if tls is not None else None,
        auth=user,
    )

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(log.read_text()[-2000:])
        try:
            return server.request("/-/ready")[0] == 200
        except OSError:
            return False

    try:
        wait_until(ready, 30, "alertmanager to answer")
    except BaseException:
        server.stop()
        raise
    return server
