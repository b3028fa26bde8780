"""A real Prometheus (Debian package `prometheus`) on a free loopback port, for tests."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

from tests.support.servers import ServerProcess, free_port, http, require_binary


def prometheus_binary() -> str:
    return require_binary("prometheus", "/usr/bin/prometheus", "apt-get install prometheus")


class Prometheus(ServerProcess):
    """Scrapes `targets` (host:port) every `interval` under job `job`; TSDB in `workdir`."""

    def __init__(
        self, workdir: Path, targets: list[str], *, job: str, interval: str = "1s"
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__("prometheus", workdir)
        self.binary = prometheus_binary()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(
            f"global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\n"
            f"scrape_configs:\n  - job_name: {job}\n    static_configs:\n"
            f"      - targets: {json.dumps(targets)}\n"
        )

    def _args(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]

    def _ready(self) -> bool:
        return http("GET", f"{self.url}/-/ready", timeout=1.0)[0] == 200

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector of a PromQL query: [{metric: {...}, value: [ts, "v"]}, ...]."""
        params = urllib.parse.urlencode({"query": promql})
        status, body = http("GET", f"{self.url}/api/v1/query?{params}")
        doc = json.loads(body)
        if status != 200 or doc.get("status") != "success":
            raise RuntimeError(f"query {promql!r}: HTTP {status}: {body[:500]!r}")
        result: list[dict[str, Any]] = doc["data"]["result"]
        return result
