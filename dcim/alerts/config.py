"""The `alerts:` section of the monitor config: rule packs, timing, channels, routes, API.

No import of `dcim.inventory` here: the inventory imports this module.
"""

from __future__ import annotations

from pathlib import Path
from string import Formatter
from typing import Annotated, Literal

from pydantic import Field, model_validator

from dcim.alerts.model import Severity
from dcim.alerts.scope import Scope
from dcim.configmodel import Strict
from dcim.secret import Secret
from dcim.tls import TlsConfig

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$")]

#: Shipped packs loaded when the config names none (dcim/alerts/rules/*.yaml).
DEFAULT_PACKS = [
    "thermal-ashrae-a1",
    "cooling",
    "power",
    "ups",
    "fire-environment",
    "monitoring",
    "sensor-health",
]


class WebhookChannel(Strict):
    type: Literal["webhook"]
    name: Name
    url: str = Field(pattern=r"^https?://")
    #: HMAC-SHA256 key: the body is signed in the X-Dcim-Signature header.
    hmac_key: Secret | None = None
    timeout_s: float = Field(default=5.0, gt=0, le=60)


class EmailChannel(Strict):
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


AlertmanagerUrl = Annotated[str, Field(pattern=r"^https?://")]


class AlertmanagerChannel(Strict):
    """One Alertmanager, or every member of an Alertmanager cluster (`urls`).

    A cluster gets each alert from us directly, not through a load balancer:
    its members gossip to notify once, and any one of them that hears of the
    alert can page while the others are down.
    """

    type: Literal["alertmanager"]
    name: Name
    url: AlertmanagerUrl | None = None
    urls: list[AlertmanagerUrl] = Field(default_factory=list)
    #: Firing alerts are re-sent this often (Alertmanager expires alerts it stops hearing of).
    refresh_s: float = Field(default=60.0, gt=0)
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    #: HTTP basic auth, as Alertmanager's --web.config.file `basic_auth_users` checks it.
    username: str | None = None
    password: Secret | None = None
    tls: TlsConfig | None = None

    @model_validator(mode="after")
    def _valid(self) -> AlertmanagerChannel:
        if (self.url is None) == (not self.urls):
            msg = "give either url (one Alertmanager) or urls (every member of a cluster)"
            raise ValueError(msg)
        if len(set(self.targets)) != len(self.targets):
            msg = "urls lists the same Alertmanager twice"
            raise ValueError(msg)
        if (self.username is None) != (self.password is None):
            msg = "username and password go together"
            raise ValueError(msg)
        if self.password is not None and any(u.startswith("http:") for u in self.targets):
            msg = "basic auth over http:// sends the password in clear: use https://"
            raise ValueError(msg)
        return self

    @property
    def targets(self) -> list[str]:
        """Base URLs of the Alertmanagers to post to."""
        return [self.url] if self.url is not None else list(self.urls)


#: Fields an MQTT topic template may name besides the incident's labels (site, room, rack...).
MQTT_TOPIC_FIELDS = frozenset({"rule", "severity", "state", "event", "incident", "scope"})


def topic_fields(template: str) -> list[str]:
    """The `{name}` fields of an MQTT topic template; ValueError for anything else."""
    fields: list[str] = []
    for literal, field, spec, conversion in Formatter().parse(template):
        if any(c in literal for c in "+#\0"):
            msg = "the topic may not contain the wildcards + or # (or NUL)"
            raise ValueError(msg)
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            msg = f"topic field {{{field}}} must be a plain name like {{site}} or {{severity}}"
            raise ValueError(msg)
        fields.append(field)
    return fields


class MqttChannel(Strict):
    """Each notification as JSON on an MQTT topic; firing state retained, the resolve clears it."""

    type: Literal["mqtt"]
    name: Name
    url: str = Field(pattern=r"^mqtts?://")
    #: Fields: rule, severity, state, event, incident, scope, or a label (site, room, rack,
    #: device, kind...); a label the incident lacks becomes "_".
    topic: str = Field(default="dcim/alerts/{site}/{severity}/{rule}/{incident}", min_length=1)
    qos: Literal[0, 1, 2] = 1
    #: Retain the firing state, so a subscriber that connects later sees open incidents.
    retain: bool = True
    protocol: Literal["3.1.1", "5"] = "5"
    #: Default: dcim-alerts-<pid>-<channel name> (clean session: nothing kept on the broker).
    client_id: str | None = Field(default=None, min_length=1, max_length=64)
    username: str | None = None
    password: Secret | None = None
    tls: TlsConfig | None = None
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    keepalive_s: int = Field(default=60, ge=5, le=3600)

    @model_validator(mode="after")
    def _valid(self) -> MqttChannel:
        if self.topic.startswith("$"):
            msg = "topics starting with $ are reserved for the broker"
            raise ValueError(msg)
        fields = topic_fields(self.topic)
        if self.retain and "incident" not in fields:
            msg = "a retained topic needs {incident}: one retained message per open incident"
            raise ValueError(msg)
        if self.retain and "event" in fields:
            msg = "a retained topic cannot name {event}: it must stay put while the incident fires"
            raise ValueError(msg)
        if self.password is not None and self.username is None:
            msg = "password given without username"
            raise ValueError(msg)
        if self.username is not None and not (
            self.url.startswith("mqtts:") or self.tls is not None
        ):
            msg = "MQTT auth without TLS (mqtts:// or a tls section) sends the password in clear"
            raise ValueError(msg)
        return self


Channel = Annotated[
    WebhookChannel | EmailChannel | AlertmanagerChannel | MqttChannel, Field(discriminator="type")
]

Event = Literal["firing", "updated", "resolved", "escalated"]


class Route(Strict):
    """Which notifications go to which channels (every matching route is used)."""

    channels: list[Name] = Field(min_length=1)
    severities: list[Severity] = Field(default_factory=lambda: list(Severity))
    rules: list[str] = Field(default_factory=lambda: ["*"])
    scope: Scope = Scope()
    events: list[Event] = Field(
        default_factory=lambda: list[Event](["firing", "updated", "resolved"])
    )


class RetryPolicy(Strict):
    initial_s: float = Field(default=1.0, gt=0)
    max_s: float = Field(default=300.0, gt=0)
    #: Failed attempts in a row before the channel raises 'notification failed'.
    fail_after: int = Field(default=3, ge=1)


class FlapSettings(Strict):
    count: int = Field(default=4, ge=2)
    window_s: float = Field(default=1800.0, gt=0)
    hold_s: float = Field(default=600.0, ge=0)


class DegradedSettings(Strict):
    min_devices: int = Field(default=3, ge=2)
    min_fraction: float = Field(default=0.5, gt=0, le=1)


#: Who acted, in the audit log and on acknowledgements, when the single `token:` was used.
SHARED_TOKEN_IDENTITY = "api-token"  # noqa: S105 - an identity name, not a secret
#: Shortest API token accepted (a guessable token is no authentication).
MIN_TOKEN_CHARS = 16


class ApiToken(Strict):
    """A named API token: the name is who acted, in the audit log and on acknowledgements."""

    name: Name
    token: Secret


class ApiSettings(Strict):
    """The local alert API. Every call needs a token; nothing is readable or writable without.

    `tokens` gives each operator (or tool) a named token, so the audit log says who
    did what; a single `token:` still works and acts as `api-token`.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=9180, ge=0, le=65535)
    token: Secret | None = None
    tokens: list[ApiToken] = Field(default_factory=list)

    @model_validator(mode="after")
    def _strong_tokens(self) -> ApiSettings:
        if self.token is None and not self.tokens:
            msg = "give token (one shared token) or tokens (a named token per operator)"
            raise ValueError(msg)
        for name, secret in self.identities():
            if len(secret) < MIN_TOKEN_CHARS:
                msg = f"the API token of {name} must be at least {MIN_TOKEN_CHARS} characters"
                raise ValueError(msg)
        names = [t.name for t in self.tokens]
        if len(names) != len(set(names)) or (SHARED_TOKEN_IDENTITY in names and self.token):
            msg = "API token names must be unique"
            raise ValueError(msg)
        secrets = [secret for _, secret in self.identities()]
        if len(secrets) != len(set(secrets)):
            msg = "two API tokens have the same value: each identity needs its own"
            raise ValueError(msg)
        return self

    def identities(self) -> list[tuple[str, str]]:
        """(identity, token value) for every token that may call the API."""
        named = [(t.name, t.token.get_secret_value()) for t in self.tokens]
        if self.token is not None:
            named.insert(0, (SHARED_TOKEN_IDENTITY, self.token.get_secret_value()))
        return named


class AlertsConfig(Strict):
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
            retaining = [
                c.name
                for c in self.channels
                if isinstance(c, MqttChannel) and c.retain and c.name in route.channels
            ]
            if retaining and "resolved" not in route.events:
                msg = (
                    f"channel {retaining[0]} retains firing alerts: its routes must send "
                    "resolved events too, or nothing ever clears them"
                )
                raise ValueError(msg)
        return self
