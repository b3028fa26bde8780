"""Client-side TLS settings shared by the inventory (collectors) and the alert channels.

Its own module because `dcim.inventory` imports `dcim.alerts.config`, which needs it too.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from pydantic import model_validator

from dcim.configmodel import Strict


class TlsConfig(Strict):
    """Client-side TLS: the server's CA, and optionally a client certificate."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    #: Only for lab setups; production checks the server's certificate and name.
    insecure_skip_verify: bool = False

    @model_validator(mode="after")
    def _cert_and_key(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            msg = "cert_file and key_file go together"
            raise ValueError(msg)
        return self


def client_context(tls: TlsConfig | None) -> ssl.SSLContext:
    """Client TLS: the given CA (or the system's), optional client certificate."""
    ca = str(tls.ca_file) if tls and tls.ca_file else None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    if tls and tls.cert_file and tls.key_file:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    if tls and tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
