"""The `web:` section of the monitor config: the NOC board's address, TLS, users, peers.

Off unless configured. Loopback by default; any other address needs TLS (the board
takes passwords), unless `insecure_plain_http` says a TLS proxy sits in front.
No import of `dcim.inventory` here: the inventory imports this module.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from dcim.configmodel import Strict
from dcim.secret import Secret
from dcim.tls import TlsConfig

UserName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,62}$")]
#: Languages the board ships catalogs for (dcim/locale).
LANGUAGES = ("en", "vi")
Language = Literal["en", "vi"]


class WebTls(Strict):
    """The board's own certificate (PEM) and key."""

    cert_file: Path
    key_file: Path


class WebUser(Strict):
    """A board user: a viewer sees everything, an operator also acknowledges and silences."""

    name: UserName
    role: Literal["viewer", "operator"]
    #: bcrypt hash ($2b$/$2y$...), e.g. from `dcim web hash-password` or `htpasswd -nBC 12 NAME`
    password_hash: Secret
    #: The language this user's pages are in (default: the browser's).
    language: Language | None = None

    @field_validator("password_hash")
    @classmethod
    def _bcrypt(cls, value: object) -> object:
        text = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
        if not text.startswith(("$2a$", "$2b$", "$2y$")) or len(text) != 60:
            msg = "must be a bcrypt hash ($2b$..., 60 characters): see `dcim web hash-password`"
            raise ValueError(msg)
        return value


class WebPeer(Strict):
    """Another monitor's board whose sites this board shows (a shard, another site)."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    url: str = Field(pattern=r"^https?://")
    #: The peer's `web.api_token` (default: this board's own, as shards of one file share it).
    token: Secret | None = None
    tls: TlsConfig | None = None
    timeout_s: float = Field(default=3.0, gt=0, le=60)


class HistorySettings(Strict):
    """Recent history kept in memory for sparklines: one ring per device, a slot per poll."""

    span_s: float = Field(default=6 * 3600.0, gt=0, le=7 * 86400)
    #: All rings together stay under this; a device's share is max_mb / devices.
    max_mb: float = Field(default=256.0, gt=0)


class WebConfig(Strict):
    host: str = "127.0.0.1"
    #: 0 picks a free port (tests); shards of one file add I - 1 to a fixed one.
    port: int = Field(default=9280, ge=0, le=65535)
    tls: WebTls | None = None
    #: Only behind a TLS-terminating proxy: serve plain HTTP on a non-loopback address.
    insecure_plain_http: bool = False
    users: list[WebUser] = Field(default_factory=list)
    #: Pages readable without login (a wall screen); acting still needs an operator.
    anonymous_read: bool = False
    #: Bearer token for `/api/v1/state`, which peers read; no token, no state API.
    api_token: Secret | None = None
    peers: list[WebPeer] = Field(default_factory=list)
    #: Seconds between live updates pushed to browsers (only what changed is sent).
    update_s: float = Field(default=1.0, ge=0.2, le=60)
    #: Seconds between reads of each peer's state.
    peer_poll_s: float = Field(default=2.0, ge=0.5, le=600)
    session_ttl_s: float = Field(default=12 * 3600.0, ge=60)
    #: Language when neither the user nor the browser says one the board has.
    language: Language = "en"
    history: HistorySettings = HistorySettings()

    @model_validator(mode="after")
    def _safe(self) -> WebConfig:
        if not _is_loopback(self.host) and self.tls is None and not self.insecure_plain_http:
            msg = (
                f"host {self.host} is not loopback: add tls (cert_file, key_file), or set "
                "insecure_plain_http: true when a TLS proxy sits in front"
            )
            raise ValueError(msg)
        names = [user.name for user in self.users]
        if len(names) != len(set(names)):
            msg = "user names must be unique"
            raise ValueError(msg)
        peers = [peer.name for peer in self.peers]
        if len(peers) != len(set(peers)):
            msg = "peer names must be unique"
            raise ValueError(msg)
        if self.api_token is not None and len(self.api_token.get_secret_value()) < 16:
            msg = "api_token must be at least 16 characters"
            raise ValueError(msg)
        if any(p.token is None for p in self.peers) and self.api_token is None:
            msg = "a peer without token uses this board's api_token: set api_token"
            raise ValueError(msg)
        return self


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
