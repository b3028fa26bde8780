"""A real etcd (Debian `etcd-server`) on free loopback ports with its data in a temp dir.

One-member cluster; `stop()` and `start()` again keep its data (and its leases, which
etcd extends by their TTL when it starts: a short outage expires no one). With a
`Pki`, clients must speak TLS and show a certificate of the test CA.
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from pathlib import Path

from tests.support.certs import Pki
from tests.support.servers import ServerProcess, free_port, require_binary


def etcd_binary() -> str:
    return require_binary("etcd", "/usr/bin/etcd", "apt-get install etcd-server")


class Etcd(ServerProcess):
    def __init__(self, workdir: Path, *, pki: Pki | None = None) -> None:
        super().__init__("etcd", workdir)
        self.binary = etcd_binary()
        self.pki = pki
        self.port = free_port()
        self.peer_port = free_port()
        scheme = "https" if pki else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"

    def _args(self) -> list[str]:
        peer = f"http://127.0.0.1:{self.peer_port}"
        args = [
            self.binary,
            "--name",
            "test",
            "--data-dir",
            str(self.workdir / "data"),
            "--listen-client-urls",
            self.url,
            "--advertise-client-urls",
            self.url,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            f"test={peer}",
            "--log-level",
            "warn",
        ]
        if self.pki is not None:
            args += [
                "--cert-file",
                str(self.pki.server_cert),
                "--key-file",
                str(self.pki.server_key),
                "--trusted-ca-file",
                str(self.pki.ca),
                "--client-cert-auth",
            ]
        return args

    def _context(self) -> ssl.SSLContext | None:
        if self.pki is None:
            return None
        context = ssl.create_default_context(cafile=str(self.pki.ca))
        context.load_cert_chain(str(self.pki.client_cert), str(self.pki.client_key))
        return context

    def _ready(self) -> bool:
        with urllib.request.urlopen(  # noqa: S310 - loopback
            self.url + "/health", timeout=2, context=self._context()
        ) as response:
            return bool(json.loads(response.read()).get("health") == "true")

    def get_prefix(self, prefix: str) -> dict[str, bytes]:
        """Every key under `prefix` and its value (the test's own view of the store)."""
        import base64

        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        body = json.dumps(
            {
                "key": base64.b64encode(prefix.encode()).decode(),
                "range_end": base64.b64encode(end.encode()).decode(),
            }
        ).encode()
        request = urllib.request.Request(  # noqa: S310 - loopback
            self.url + "/v3/kv/range", data=body, method="POST"
        )
        with urllib.request.urlopen(request, timeout=5, context=self._context()) as response:  # noqa: S310
            answer = json.loads(response.read())
        return {
            base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", ""))
            for kv in answer.get("kvs", [])
        }
