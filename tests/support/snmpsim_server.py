"""snmpsim (the SNMP simulator LibreNMS and others use) serving .snmprec recordings.

One process serves every recording in its data directory; the SNMP v2c community
is the file's base name. snmpsim drops root privileges to `nobody` and must then
still import its own standard library: a pyenv Python under root's home cannot,
so it runs from a virtual environment made with the distribution's
/usr/bin/python3 (`.venv-snmpsim/` in the checkout, created on first use,
git-ignored). Readiness is checked through dcim's own SNMP client.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from collectors.snmp.client import SnmpHost
from dcim.errors import CollectError
from dcim.inventory import SnmpConfig
from tests.support.servers import missing, stop_process
from tests.support.snmpd import free_udp_port

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv-snmpsim"
SYSTEM_PYTHON = "/usr/bin/python3"
PACKAGES = ("snmpsim>=1.1", "pysmi>=1.4")
START_TIMEOUT_S = 60.0
#: The captures of real devices beside the checkout (never an absolute path).
PEER_DATA = REPO.parent / "shared" / "peer-data" / "librenms"


class SnmpsimUnavailable(RuntimeError):
    """snmpsim cannot be set up here (no system Python, no venv module, no network)."""


def responder_binary() -> Path:
    """snmpsim-command-responder, installing it into .venv-snmpsim when missing."""
    binary = VENV / "bin" / "snmpsim-command-responder"
    if binary.exists():
        return binary
    if not Path(SYSTEM_PYTHON).exists():
        raise SnmpsimUnavailable(f"{SYSTEM_PYTHON} not found (apt-get install python3-venv)")
    try:
        subprocess.run(
            [SYSTEM_PYTHON, "-m", "venv", str(VENV)], check=True, capture_output=True, timeout=120
        )
        subprocess.run(
            [str(VENV / "bin" / "pip"), "install", "--quiet", *PACKAGES],
            check=True,
            capture_output=True,
            timeout=600,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(VENV, ignore_errors=True)
        out = getattr(exc, "stderr", b"") or b""
        raise SnmpsimUnavailable(
            f"cannot create {VENV}: {out.decode(errors='replace')[-800:]}"
        ) from None
    return binary


class Snmpsim:
    """One snmpsim process serving the given recordings; community = file base name."""

    def __init__(self, recordings: Iterable[Path]) -> None:
        self.recordings = sorted(recordings)
        self.port = 0
        # world-readable: snmpsim reads the data as `nobody` (pytest's tmp dirs are 0700)
        self.workdir = Path(tempfile.mkdtemp(prefix="dcim-snmpsim-"))
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = responder_binary()
        data, cache = self.workdir / "data", self.workdir / "cache"
        data.mkdir()
        cache.mkdir()
        for recording in self.recordings:
            shutil.copy(recording, data / recording.name)
        for path in (self.workdir, data, *data.iterdir()):
            path.chmod(0o755 if path.is_dir() else 0o644)
        cache.chmod(0o777)  # the dropped-privilege process writes its index here
        self.port = free_udp_port()
        args = [
            str(binary),
            f"--data-dir={data}",
            f"--cache-dir={cache}",
            f"--agent-udpv4-endpoint=127.0.0.1:{self.port}",
        ]
        if os.geteuid() == 0:
            args += ["--process-user=nobody", "--process-group=nogroup"]
        log = (self.workdir / "snmpsim.log").open("wb")
        self._proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

    def config(self, community: str, *, timeout_s: float = 5, retries: int = 1) -> SnmpConfig:
        return SnmpConfig.model_validate(
            {
                "host": "127.0.0.1",
                "port": self.port,
                "community": community,
                "timeout_s": timeout_s,
                "retries": retries,
            }
        )

    async def wait_ready(self, community: str) -> None:
        """Return once snmpsim answers a GET for `community` (it indexes files first)."""
        host = SnmpHost()
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            session = await host.session("snmpsim", self.config(community, timeout_s=1, retries=0))
            while time.monotonic() < deadline:
                if self._proc is not None and self._proc.poll() is not None:
                    raise RuntimeError(f"snmpsim exited:\n{self.log()[-2000:]}")
                try:
                    await session.get([(1, 3, 6, 1, 2, 1, 1, 2, 0)])
                except CollectError:
                    await asyncio.sleep(0.2)  # still indexing the recordings
                    continue
                return
            raise TimeoutError(
                f"snmpsim did not answer within {START_TIMEOUT_S:.0f}s:\n{self.log()}"
            )
        finally:
            host.close()

    def log(self) -> str:
        path = self.workdir / "snmpsim.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        stop_process(proc)
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_snmpsim(recordings: Iterable[Path], ready_community: str) -> Snmpsim:
    """A running snmpsim (skip locally / fail under CI when it cannot be set up)."""
    server = Snmpsim(recordings)
    try:
        server.start()
    except SnmpsimUnavailable as exc:
        server.stop()
        missing(str(exc))
    try:
        asyncio.run(server.wait_ready(ready_community))
    except BaseException:
        server.stop()
        raise
    return server
