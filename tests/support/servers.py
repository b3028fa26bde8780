"""Real InfluxDB 1.x and VictoriaMetrics processes on free loopback ports, for tests.

Each server gets its own temp directory and ports; nothing relies on a server
that happens to be running. Helpers use blocking urllib: they run between awaits
in tests, against a separate process, so they never stall the code under test long.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.support.waiting import wait_until

START_TIMEOUT_S = 30.0


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port (TCP unless `kind` says UDP) the kernel just had free on 127.0.0.1."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def find_binary(name: str, default: str) -> str | None:
    """Path of a server binary: $<NAME>_BIN, then `default`, then $PATH."""
    explicit = os.environ.get(f"{name.upper().replace('-', '_')}_BIN")
    for candidate in (explicit, default, shutil.which(name)):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def require_binary(name: str, default: str, install: str = "") -> str:
    """`find_binary`, or skip (locally) / fail (under CI, where it must be installed).

    `install` says how to get it (e.g. "apt-get install snmpd"), for the reason shown.
    """
    path = find_binary(name, default)
    if path is None:
        env = f"${name.upper().replace('-', '_')}_BIN"
        missing(f"{name} not found ({default}, {env}, PATH)" + (f"; {install}" if install else ""))
    return path


def missing(reason: str) -> NoReturn:
    """Skip the test for want of a tool, or fail it under CI (where the tool must be there)."""
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{reason}; CI is set, so a missing tool is a failure")
    pytest.skip(reason)


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL if it is not gone in 10 s; wait for it. A no-op once it exited."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    timeout: float = 10.0,
    auth: tuple[str, str] | None = None,
) -> tuple[int, bytes]:
    """(status, body) of one request; HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, data=body, method=method)  # noqa: S310 - loopback http
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class ServerProcess:
    """A server process with a log file, restartable with the same arguments."""

    start_timeout_s = START_TIMEOUT_S

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def _args(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _probe(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            log = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited with {self._proc.returncode}:\n{log}")
        try:
            return self._ready()
        except OSError:
            return False

    def start(self) -> None:
        """Start the process and wait until it answers."""
        if self.running:
            return
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self._args(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                cwd=self.workdir,
            )
        try:
            wait_until(self._probe, self.start_timeout_s, f"{self.name} to answer")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and wait for it."""
        proc, self._proc = self._proc, None
        stop_process(proc)


class InfluxDB1(ServerProcess):
    """influxd 1.x with every listener on a free loopback port and data in `workdir`.

    With `auth`, HTTP auth is on and `start()` creates the admin user `credentials`.
    """

    def __init__(self, binary: str, workdir: Path, *, auth: bool = False) -> None:
        super().__init__("influxd", workdir)
        self.binary = binary
        self.auth = auth
        self.credentials = ("admin", "adm-pass")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = workdir / "influxdb.conf"
        self.config_path.write_text(self._config(free_port()))

    def _config(self, rpc_port: int) -> str:
        d = self.workdir
        return f"""\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{d / "meta"}"
  logging-enabled = false
[data]
  dir = "{d / "data"}"
  wal-dir = "{d / "wal"}"
  query-log-enabled = false
[retention]
  enabled = false
[shard-precreation]
  enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
[ifql]
  enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
  pprof-enabled = false
  auth-enabled = {"true" if self.auth else "false"}
[logging]
  level = "warn"
  suppress-logo = true
"""

    def _args(self) -> list[str]:
        return [self.binary, "-config", str(self.config_path)]

    def _env(self) -> dict[str, str]:
        # INFLUXDB_* variables would override the config file.
        return {k: v for k, v in super()._env().items() if not k.startswith("INFLUXDB_")}

    def _ready(self) -> bool:
        return http("GET", f"{self.url}/ping", timeout=1.0)[0] == 204

    def start(self) -> None:
        super().start()
        if self.auth:  # allowed without credentials while no user exists; then a no-op
            user, password = self.credentials
            self.query(f"CREATE USER {user} WITH PASSWORD '{password}' WITH ALL PRIVILEGES", "")

    def query(self, influxql: str, db: str) -> list[dict[str, Any]]:
        """Rows of every series of the first statement, with tags merged in; time in ms."""
        params = urllib.parse.urlencode({"q": influxql, "db": db, "epoch": "ms"})
        auth = self.credentials if self.auth else None
        status, body = http("POST", f"{self.url}/query?{params}", auth=auth)
        doc = json.loads(body)
        if status != 200 or "error" in doc:
            raise RuntimeError(f"query {influxql!r}: HTTP {status}: {body[:500]!r}")
        result = doc["results"][0]
        if "error" in result:
            raise RuntimeError(f"query {influxql!r}: {result['error']}")
        rows = []
        for series in result.get("series", []):
            for values in series["values"]:
                row = dict(zip(series["columns"], values, strict=True))
                rows.append({**series.get("tags", {}), **row})
        return rows

    def create_database(self, db: str) -> None:
        self.query(f'CREATE DATABASE "{db}"', db)


class VictoriaMetrics(ServerProcess):
    """victoria-metrics single-node with data in `workdir`."""

    def __init__(self, binary: str, workdir: Path) -> None:
        super().__init__("victoria-metrics", workdir)
        self.binary = binary
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def _args(self) -> list[str]:
        return [
            self.binary,
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.workdir / 'data'}",
            "-retentionPeriod=100y",
            "-loggerLevel=ERROR",
        ]

    def _ready(self) -> bool:
        return http("GET", f"{self.url}/health", timeout=1.0)[0] == 200

    def export(self, match: str) -> list[dict[str, Any]]:
        """Series matching a selector, as /api/v1/export JSON lines (timestamps in ms)."""
        # Written samples become searchable only after a flush; force it.
        http("GET", f"{self.url}/internal/force_flush")
        params = urllib.parse.urlencode({"match[]": match})
        status, body = http("GET", f"{self.url}/api/v1/export?{params}")
        if status != 200:
            raise RuntimeError(f"export {match!r}: HTTP {status}: {body[:500]!r}")
        return [json.loads(line) for line in body.splitlines() if line.strip()]
