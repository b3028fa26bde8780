"""Servers the SNMP bench starts for itself: a time-series store and an MQTT broker.

Each runs from its Debian package on a free loopback port with its data in the
bench's temp directory, and says how many points actually landed in it (counted
by the server, not by the writer), so the bench reports what was stored.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

START_TIMEOUT_S = 30.0


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
            return int(response.status), bytes(response.read())
    except OSError:
        return 0, b""


class BenchServer:
    """A child server process with a log file in `work`; `stop()` is idempotent."""

    name = "server"
    package = "?"

    def __init__(self, binary: str, work: Path) -> None:
        self.binary = binary
        self.work = work
        self.port = free_tcp_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def args(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        log = (self.work / f"{self.name}.log").open("ab")
        self.proc = subprocess.Popen(self.args(), stdout=log, stderr=log, cwd=self.work)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self.work}/{self.name}.log")
            if self.ready():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {START_TIMEOUT_S:g} s")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


class TimeSeriesStore(BenchServer):
    """A sink target: what the monitor's sink config needs and how many points landed."""

    def sink_config(self) -> dict[str, Any]:
        raise NotImplementedError

    def points_landed(self) -> int:
        raise NotImplementedError


class VictoriaMetrics(TimeSeriesStore):
    """victoria-metrics single node, written through its InfluxDB v2 endpoint."""

    name = "victoria-metrics"
    package = "victoria-metrics"

    def args(self) -> list[str]:
        return [
            self.binary,
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.work / 'vm-data'}",
            "-retentionPeriod=100y",
            "-loggerLevel=ERROR",
        ]

    def ready(self) -> bool:
        return _get(f"{self.url}/health", 1.0)[0] == 200

    def sink_config(self) -> dict[str, Any]:
        return {
            "type": "influxdb",
            "name": "vm",
            "url": self.url,
            "api": "v2",
            "bucket": "dcim",
            "org": "bench",
        }

    def points_landed(self) -> int:
        """Samples VictoriaMetrics accepted on its Influx endpoint (vm_rows_inserted_total)."""
        status, body = _get(f"{self.url}/metrics")
        if status != 200:
            raise RuntimeError(f"{self.name}: /metrics answered HTTP {status}")
        for line in body.decode().splitlines():
            if line.startswith('vm_rows_inserted_total{type="influx"}'):
                return int(float(line.split()[-1]))
        return 0


class InfluxDB1(TimeSeriesStore):
    """influxd 1.x, written through /write; every listener on loopback, data in `work`."""

    name = "influxd"
    package = "influxdb"
    database = "dcim"

    def __init__(self, binary: str, work: Path) -> None:
        super().__init__(binary, work)
        self.config = work / "influxdb.conf"
        d = work / "influx-data"
        self.config.write_text(
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{free_tcp_port()}"\n'
            f'[meta]\n  dir = "{d / "meta"}"\n  logging-enabled = false\n'
            f'[data]\n  dir = "{d / "data"}"\n  wal-dir = "{d / "wal"}"\n'
            "  query-log-enabled = false\n"
            "[monitor]\n  store-enabled = false\n"
            "[continuous_queries]\n  enabled = false\n"
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            '[logging]\n  level = "warn"\n  suppress-logo = true\n'
        )

    def args(self) -> list[str]:
        return [self.binary, "-config", str(self.config)]

    def ready(self) -> bool:
        return _get(f"{self.url}/ping", 1.0)[0] == 204

    def start(self) -> None:
        super().start()
        query = urllib.parse.urlencode({"q": f'CREATE DATABASE "{self.database}"'})
        request = urllib.request.Request(f"{self.url}/query?{query}", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - loopback
            pass

    def sink_config(self) -> dict[str, Any]:
        return {
            "type": "influxdb",
            "name": "influx1",
            "url": self.url,
            "api": "v1",
            "database": self.database,
        }

    def points_landed(self) -> int:
        """Points influxd's write service took in (`write.pointReq` of /debug/vars)."""
        status, body = _get(f"{self.url}/debug/vars")
        if status != 200:
            raise RuntimeError(f"{self.name}: /debug/vars answered HTTP {status}")
        stats = json.loads(body)
        return int(stats.get("write", {}).get("values", {}).get("pointReq", 0))


class Mosquitto(BenchServer):
    """mosquitto on a loopback port, anonymous, no persistence: a broker for the bench only."""

    name = "mosquitto"
    package = "mosquitto"

    def args(self) -> list[str]:
        config = self.work / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "log_dest stderr\nlog_type error\nlog_type warning\n"
        )
        return [self.binary, "-c", str(config)]

    def ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False


_STORES: dict[str, tuple[type[TimeSeriesStore], str]] = {
    "victoria-metrics": (VictoriaMetrics, "/usr/bin/victoria-metrics"),
    "influx1": (InfluxDB1, "/usr/bin/influxd"),
}
SINKS = tuple(_STORES)


def _binary(name: str, default: str) -> str | None:
    if Path(default).exists():
        return default
    return shutil.which(Path(default).name) or shutil.which(name)


def store_for(sink: str, work: Path) -> TimeSeriesStore:
    """The store `--sink` names, not started yet; RuntimeError naming the package if absent."""
    kind, default = _STORES[sink]
    binary = _binary(kind.name, default)
    if binary is None:
        raise RuntimeError(f"{default} not found: apt-get install {kind.package}")
    return kind(binary, work)


def broker(work: Path) -> Mosquitto | None:
    """A mosquitto for the bench, or None when it is not installed."""
    binary = _binary("mosquitto", "/usr/sbin/mosquitto")
    return Mosquitto(binary, work) if binary is not None else None
