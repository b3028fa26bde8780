"""The `alerts:` section of the monitor config: rule packs, timing, channels, routes, API.

No import of `dcim.inventory` here: the inventory imports this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator

from dcim.alerts.model import Severity
from dcim.alerts.scope import Scope
from dcim.secret import SecretRef

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$")]

#: Shipped packs loaded when the config names none (dcim/alerts/rules/*.yaml).
DEFAULT_PACKS = [
    "thermal-ashrae-a1",
    "cooling",
    "power",
    "ups",
    "fire-environment",
    "monitoring",
]


def _to_secret(value: object) -> object:
    if isinstance(value, dict):
        return SecretRef.model_validate(value).resolve()
    return value


#: Inline string, `{env: VAR}` or `{file: PATH}`; a SecretStr once loaded, never printed.
Secret = Annotated[SecretStr, BeforeValidator(_to_secret)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebhookChannel(_Strict):
    type: Literal["webhook"]
    name: Name
    url: str = Field(pattern=r"^https?://")
    #: HMAC-SHA256 key: the body is signed in the X-Dcim-Signature header.
    hmac_key: Secret | None = None
    timeout_s: float = Field(default=5.0, gt=0, le=60)


class EmailChannel(_Strict):
    type: Literal["email"]
    name: Name
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    #: CA bundle to check the server's certificate (default: the system's).
    ca_file: Path | None = None
    username: str | None = None
    password: Secret | None = None
    sender: str = Field(min_length=3)
    to: list[str] = Field(min_length=1)
    timeout_s: float = Field(default=10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _auth_needs_tls(self) -> EmailChannel:
        if self.password is not None and self.username is None:
            msg = "password given without username"
            raise ValueError(msg)
        if self.username is not None and not self.starttls:
            msg = "SMTP auth without STARTTLS would send the password in clear"
            raise ValueError(msg)
        return self


class AlertmanagerChannel(_Strict):
    type: Literal["alertmanager"]
    name: Name
    url: str = Field(pattern=r"^https?://")
    #: Firing alerts are re-sent this often (Alertmanager expires alerts it stops hearing of).
    refresh_s: float = Field(default=60.0, gt=0)
    timeout_s: float = Field(default=5.0, gt=0, le=60)


Channel = Annotated[
    WebhookChannel | EmailChannel | AlertmanagerChannel, Field(discriminator="type")
]

Event = Literal["firing", "updated", "resolved", "escalated"]


class Route(_Strict):
    """Which notifications go to which channels (every matching route is used)."""

    channels: list[Name] = Field(min_length=1)
    severities: list[Severity] = Field(default_factory=lambda: list(Severity))
    rules: list[str] = Field(default_factory=lambda: ["*"])
    scope: Scope = Scope()
    events: list[Event] = Field(
        default_factory=lambda: list[Event](["firing", "updated", "resolved"])
    )


class RetryPolicy(_Strict):
    initial_s: float = Field(default=1.0, gt=0)
    max_s: float = Field(default=300.0, gt=0)
    #: Failed attempts in a row before the channel raises 'notification failed'.
    fail_after: int = Field(default=3, ge=1)


class FlapSettings(_Strict):
    count: int = Field(default=4, ge=2)
    window_s: float = Field(default=1800.0, gt=0)
    hold_s: float = Field(default=600.0, ge=0)


class DegradedSettings(_Strict):
    min_devices: int = Field(default=3, ge=2)
    min_fraction: float = Field(default=0.5, gt=0, le=1)


class ApiSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=9180, ge=0, le=65535)
    #: Required for every call: nothing is readable or writable without it.
    token: Secret

    @model_validator(mode="after")
    def _strong_token(self) -> ApiSettings:
        if len(self.token.get_secret_value()) < 16:
            msg = "the API token must be at least 16 characters"
            raise ValueError(msg)
        return self


class AlertsConfig(_Strict):
    packs: list[str] = Field(default_factory=lambda: list(DEFAULT_PACKS))
    rule_files: list[Path] = Field(default_factory=list)
    #: Default: the longest poll interval (the first full poll round).
    startup_grace_s: float | None = Field(default=None, ge=0)
    stale_intervals: float = Field(default=3.0, gt=0)
    flap: FlapSettings = FlapSettings()
    degraded: DegradedSettings = DegradedSettings()
    escalate_after_s: float | None = Field(default=900.0, gt=0)
    tick_s: float = Field(default=1.0, gt=0, le=60)
    channels: list[Channel] = Field(default_factory=list)
    routes: list[Route] = Field(default_factory=list)
    retry: RetryPolicy = RetryPolicy()
    api: ApiSettings | None = None
    db_file: str = "alerts.sqlite3"

    @model_validator(mode="after")
    def _routes_name_channels(self) -> AlertsConfig:
        names = [channel.name for channel in self.channels]
        if len(names) != len(set(names)):
            msg = "channel names must be unique"
            raise ValueError(msg)
        for route in self.routes:
            unknown = sorted(set(route.channels) - set(names))
            if unknown:
                msg = f"route names unknown channel(s): {', '.join(unknown)}"
                raise ValueError(msg)
        return self
