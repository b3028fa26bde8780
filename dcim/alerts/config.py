"""The `alerts:` section of the monitor config: rule packs, timing, channels, routes, API.

No import of `dcim.inventory` here: the inventory imports this module.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from pathlib import Path
from string import Formatter
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from dcim.alerts.model import DEFAULT_ASHRAE_CLASS, AshraeClass, Severity
from dcim.alerts.scope import Scope
from dcim.configmodel import Strict
from dcim.secret import Secret
from dcim.tls import TlsConfig

log = logging.getLogger(__name__)

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$")]

#: Shipped packs loaded when the config names none (dcim/alerts/rules/*.yaml).
DEFAULT_PACKS = [
    "thermal-ashrae",
    "cooling",
    "power",
    "ups",
    "generator",
    "fire-environment",
    "monitoring",
    "sensor-health",
]


class TemplateFile(Strict):
    """A message template kept in its own file: `{file: PATH}`."""

    file: Path


def _read_template(value: object) -> object:
    if isinstance(value, dict):
        path = TemplateFile.model_validate(value).file
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            msg = f"cannot read template file {path}: {exc.strerror}"
            raise ValueError(msg) from None
    return value


#: A Jinja2 message template: inline text, or `{file: PATH}`.
TemplateText = Annotated[str, BeforeValidator(_read_template)]


def loopback(url: str) -> bool:
    """True when the URL's host is this machine (a local relay, or a test server)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_https(url: str, what: str) -> str:
    """https:// anywhere; http:// only to a loopback address. The message never shows the URL
    (a chat webhook's URL is its credential)."""
    if url.startswith("https://") and urlsplit(url).hostname:
        return url
    if url.startswith("http://") and loopback(url):
        return url
    msg = f"{what} must be an https:// URL (http:// only to a loopback address)"
    raise ValueError(msg)


class ChannelBase(Strict):
    """What every channel has: a name, and message templates overriding the shipped ones."""

    name: Name
    #: Template part -> Jinja2 text or {file: PATH}; the parts each channel type has are
    #: listed in dcim/alerts/notify/templating.py (PARTS). Others keep the shipped defaults.
    templates: dict[str, TemplateText] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _templates_render(self) -> ChannelBase:
        if self.templates:
            from dcim.alerts.notify.templating import check_templates

            check_templates(str(getattr(self, "type", "")), self.name, self.templates)
        return self


class WebhookChannel(ChannelBase):
    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    #: HMAC-SHA256 key: the body is signed in the X-Dcim-Signature header.
    hmac_key: Secret | None = None
    timeout_s: float = Field(default=5.0, gt=0, le=60)


class EmailChannel(ChannelBase):
    type: Literal["email"]
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


class AlertmanagerChannel(ChannelBase):
    """One Alertmanager, or every member of an Alertmanager cluster (`urls`).

    A cluster gets each alert from us directly, not through a load balancer:
    its members gossip to notify once, and any one of them that hears of the
    alert can page while the others are down.
    """

    type: Literal["alertmanager"]
    url: AlertmanagerUrl | None = None
    urls: list[AlertmanagerUrl] = Field(default_factory=list)
    #: Firing alerts are re-sent this often (Alertmanager expires alerts it stops hearing of).
    refresh_s: float = Field(default=60.0, gt=0)
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    #: HTTP basic auth, as Alertmanager's --web.config.file `basic_auth_users` checks it.
    username: str | None = None
    password: Secret | None = None
    tls: TlsConfig | None = None
    #: Also send `DcimWatchdog`, an alert that fires while this monitor is healthy (re-sent
    #: every refresh_s), for a dead man's switch receiver that pages when it stops.
    watchdog: bool = False

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


class MqttChannel(ChannelBase):
    """Each notification as JSON on an MQTT topic; firing state retained, the resolve clears it."""

    type: Literal["mqtt"]
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


def _secret_url(value: SecretStr, what: str) -> SecretStr:
    check_https(value.get_secret_value(), what)
    return value


class SlackChannel(ChannelBase):
    """A Slack incoming webhook: Block Kit messages (header, text, link buttons)."""

    type: Literal["slack"]
    #: The webhook URL is its credential: give it as a secret ({env: VAR} or {file: PATH}).
    url: Secret
    timeout_s: float = Field(default=10.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _https(cls, value: SecretStr) -> SecretStr:
        return _secret_url(value, "url")


class TeamsChannel(ChannelBase):
    """A Microsoft Teams Workflows webhook ("When a Teams webhook request is received"):
    an Adaptive Card in a message. The retired Office 365 connector URLs take it too."""

    type: Literal["teams"]
    #: The workflow URL carries its signature: give it as a secret.
    url: Secret
    timeout_s: float = Field(default=10.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _https(cls, value: SecretStr) -> SecretStr:
        return _secret_url(value, "url")


PAGERDUTY_URLS = {
    "us": "https://events.pagerduty.com/v2/enqueue",
    "eu": "https://events.eu.pagerduty.com/v2/enqueue",
}


class PagerDutyChannel(ChannelBase):
    """PagerDuty Events API v2: trigger, acknowledge and resolve, one dedup key per incident."""

    type: Literal["pagerduty"]
    #: The service's Events API v2 integration key (32 characters): a secret.
    routing_key: Secret
    region: Literal["us", "eu"] = "us"
    #: Instead of the region's endpoint (an outbound relay; tests).
    url: str | None = None
    timeout_s: float = Field(default=10.0, gt=0, le=60)

    @field_validator("routing_key")
    @classmethod
    def _key_length(cls, value: SecretStr) -> SecretStr:
        length = len(value.get_secret_value())
        if length != 32:
            msg = f"routing_key must be the 32-character integration key (got {length} characters)"
            raise ValueError(msg)
        return value

    @field_validator("url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        return None if value is None else check_https(value, "url")

    @property
    def endpoint(self) -> str:
        return self.url or PAGERDUTY_URLS[self.region]


OPSGENIE_URLS = {"us": "https://api.opsgenie.com", "eu": "https://api.eu.opsgenie.com"}
OpsgeniePriority = Literal["P1", "P2", "P3", "P4", "P5"]
_OPSGENIE_PRIORITIES: dict[Severity, OpsgeniePriority] = {
    Severity.CRITICAL: "P1",
    Severity.WARNING: "P3",
    Severity.INFO: "P5",
}
OpsgenieTag = Annotated[str, Field(min_length=1, max_length=50)]


class OpsgenieChannel(ChannelBase):
    """Opsgenie Alert API: create, acknowledge and close by alias (one alias per incident)."""

    type: Literal["opsgenie"]
    #: The key of an API integration (`Authorization: GenieKey ...`): a secret.
    api_key: Secret
    region: Literal["us", "eu"] = "us"
    #: Instead of the region's base URL: Jira Service Management's
    #: https://api.atlassian.com/jsm/ops/integration takes the same calls; a relay; tests.
    api_url: str | None = None
    priorities: dict[Severity, OpsgeniePriority] = Field(
        default_factory=lambda: dict(_OPSGENIE_PRIORITIES)
    )
    #: Added to every alert (with dcim, the severity and the site): at most 20 in all.
    tags: list[OpsgenieTag] = Field(default_factory=list, max_length=16)
    source: str = Field(default="dcim", min_length=1, max_length=100)
    timeout_s: float = Field(default=10.0, gt=0, le=60)

    @field_validator("api_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        return None if value is None else check_https(value, "api_url")

    @property
    def base_url(self) -> str:
        return (self.api_url or OPSGENIE_URLS[self.region]).rstrip("/")


Channel = Annotated[
    WebhookChannel
    | EmailChannel
    | AlertmanagerChannel
    | MqttChannel
    | SlackChannel
    | TeamsChannel
    | PagerDutyChannel
    | OpsgenieChannel,
    Field(discriminator="type"),
]

Event = Literal["firing", "updated", "resolved", "escalated", "acknowledged"]


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


HttpUrl = Annotated[str, Field(pattern=r"^https?://[^/\s]+")]


class AlertLinks(Strict):
    """Where notifications point: the runbook of the rule, the dashboard and the board of the scope."""

    #: Grafana's base URL: a device's alert links its device dashboard, any other its site's
    #: NOC overview (the uids `dcim grafana export` gives them), with the scope as variables.
    grafana_url: HttpUrl | None = None
    #: The monitor's board: linked with the scope as query (?site=&room=&row=&rack=&device=).
    board_url: HttpUrl | None = None
    #: Where the rules' relative runbook paths (docs/runbooks.md#anchor) are served: the
    #: repository's web view, or the site's copy of the docs.
    runbook_base_url: HttpUrl | None = None
    #: Rule id glob -> runbook URL: the site's own runbooks, first match wins.
    runbooks: dict[str, HttpUrl] = Field(default_factory=dict)


#: Pack names before the four ASHRAE class packs became one: `thermal-ashrae-a2` is
#: `thermal-ashrae` with `ashrae_class: A2`.
_CLASS_PACK = re.compile(r"^thermal-ashrae-(a[1-4])$")


class AlertsConfig(Strict):
    packs: list[str] = Field(default_factory=lambda: list(DEFAULT_PACKS))
    #: The ASHRAE class of rooms whose inventory entry names none (the thermal pack's
    #: levels for each room follow its own `ashrae_class` first).
    ashrae_class: AshraeClass = DEFAULT_ASHRAE_CLASS
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
    links: AlertLinks = AlertLinks()

    @model_validator(mode="before")
    @classmethod
    def _class_packs(cls, data: Any) -> Any:
        """`packs: [thermal-ashrae-a2]` (one pack per class, before) keeps working: it is
        the pack `thermal-ashrae` with `ashrae_class: A2`; a warning says so."""
        if not isinstance(data, dict) or not isinstance(data.get("packs"), list):
            return data
        packs, classes = [], []
        for name in data["packs"]:
            old = _CLASS_PACK.match(name) if isinstance(name, str) else None
            if old is None:
                packs.append(name)
                continue
            classes.append(old.group(1).upper())
            if "thermal-ashrae" not in packs:
                packs.append("thermal-ashrae")
        if not classes:
            return data
        if len(set(classes)) > 1:
            msg = (
                f"packs: {', '.join(f'thermal-ashrae-{c.lower()}' for c in classes)} are one "
                "pack now (thermal-ashrae): give the class of each room with its "
                "ashrae_class, and the default with alerts.ashrae_class"
            )
            raise ValueError(msg)
        chosen = data.get("ashrae_class", classes[0])
        log.warning(
            "alerts.packs: thermal-ashrae-%s is now the pack thermal-ashrae with "
            "alerts.ashrae_class: %s (each room's own ashrae_class comes first); "
            "write it so to silence this warning",
            classes[0].lower(),
            chosen,
        )
        return {**data, "packs": packs, "ashrae_class": chosen}

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
