"""Message templates: Jinja2 text for each part of each channel's message, as data.

The shipped defaults are `templates/<channel type>.yaml` beside this module; a channel's
`templates:` replaces any of its parts (inline, or `{file: PATH}`). Templates render in
Jinja2's immutable sandbox (a template reads the notification, it cannot call into
Python or change anything) with StrictUndefined (a misspelt name is an error, not an
empty string). `dcim validate` renders every override against sample notifications, so
a broken template is found before the monitor runs; one that still fails on a real
notification falls back to the shipped text (logged), because a template must never
hold a page.

Code, not templates, owns what a service's schema requires: JSON structure, the link
buttons and fields, and each part's length limit (PARTS), so an override can change the
wording but cannot make a payload the service refuses.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import yaml
from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from dcim.alerts.config import AlertLinks
from dcim.alerts.model import Notification, Phase, Severity
from dcim.alerts.notify.links import PLACES, Links, is_url, links_for

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Part:
    """One text of a message: its length limit (UTF-16 units, the stricter count) and
    whether it must be one line (subjects, headers, summaries)."""

    limit: int | None = None
    one_line: bool = False


#: Each channel type's template parts, with the limits its service documents.
PARTS: dict[str, dict[str, Part]] = {
    "webhook": {"message": Part()},
    "mqtt": {"message": Part()},
    "email": {"subject": Part(200, one_line=True), "body": Part()},
    "alertmanager": {"summary": Part(one_line=True), "description": Part()},
    # Block Kit: header text <= 150, section text <= 3000; the message text is the fallback
    "slack": {"text": Part(3000), "title": Part(150, one_line=True), "body": Part(3000)},
    # the whole message <= 28 KB; the code keeps the card under that
    "teams": {"title": Part(400, one_line=True), "body": Part(8000)},
    "pagerduty": {"summary": Part(1024, one_line=True)},
    "opsgenie": {
        "message": Part(130, one_line=True),
        "description": Part(15000),
        "note": Part(25000),
    },
}

_SLACK_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_SPACES = re.compile(r"\s+")


def slack_escape(value: object) -> str:
    """Text that Slack shows as written: &, < and > would start a link or a mention."""
    return str(value).translate(_SLACK_ESCAPES)


@functools.cache
def environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=False,  # plain text, mrkdwn, markdown: each channel escapes what it needs
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["slack"] = slack_escape
    env.tests["url"] = is_url
    return env


@functools.cache
def defaults(channel_type: str) -> dict[str, str]:
    """The shipped templates of a channel type (package data)."""
    text = resources.files(__package__).joinpath("templates", f"{channel_type}.yaml").read_text()
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or set(data) != set(PARTS[channel_type]):
        msg = f"shipped templates of {channel_type} must give exactly {sorted(PARTS[channel_type])}"
        raise TypeError(msg)
    return {str(k): str(v) for k, v in data.items()}


def utf16_len(text: str) -> int:
    """Length as JavaScript and Java count it: characters beyond the BMP (emoji) count twice."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def fit(text: str, limit: int | None) -> str:
    """Cut to `limit` UTF-16 code units (the stricter of the counts services use), marking
    the cut with an ellipsis."""
    if limit is None or utf16_len(text) <= limit:
        return text
    kept: list[str] = []
    used = 0
    for char in text:
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit - 1:
            break
        kept.append(char)
    return "".join(kept) + "…"


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(seconds: float) -> str:
    """A short human duration: 45 s, 12 min, 3 h 5 min, 2 d 4 h."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    minutes, hours, days = s // 60, s // 3600, s // 86400
    if s < 3600:
        return f"{minutes} min"
    if s < 86400:
        rest = minutes % 60
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    rest = hours % 24
    return f"{days} d {rest} h" if rest else f"{days} d"


def status(notification: Notification) -> str:
    if notification.event == "escalated":
        return "ESCALATED"
    if notification.event == "acknowledged":
        return "ACKNOWLEDGED"
    return notification.phase.value.upper()


def where(labels: Mapping[str, str]) -> str:
    """site / room / row / rack / device, as far as the labels go."""
    return " / ".join(labels[place] for place in PLACES if labels.get(place))


def context(notification: Notification, links: Links) -> dict[str, Any]:
    """The variables every template sees (listed in the README)."""
    n = notification
    began = n.fired_at if n.fired_at is not None else n.started_at
    lasted = ""
    if n.phase is Phase.RESOLVED and n.resolved_at is not None:
        lasted = duration(n.resolved_at - began)
    return {
        "event": n.event,
        "state": n.phase.value,
        "status": status(n),
        "severity": n.severity.value,
        "rule": n.rule,
        "rule_name": n.rule_name,
        "summary": n.summary,
        "scope": n.key,
        "incident": n.incident_id,
        "labels": dict(n.labels),
        "where": where(n.labels),
        "started_at": _iso(n.started_at),
        "fired_at": _iso(n.fired_at),
        "resolved_at": _iso(n.resolved_at),
        "duration": lasted,
        "acknowledged_by": n.acknowledged_by,
        "fire_alarm": n.fire_alarm,
        "flapping": n.flapping,
        "stale": n.stale,
        "grouped_children": n.children,
        "runbook_url": links.runbook,
        "dashboard_url": links.dashboard,
        "board_url": links.board,
    }


def shape(text: str, part: Part) -> str:
    if part.one_line:
        text = _SPACES.sub(" ", text).strip()
    return fit(text.strip(), part.limit)


def _compile(channel_type: str, channel_name: str, name: str, source: str) -> Template:
    try:
        return environment().from_string(source)
    except TemplateSyntaxError as exc:
        msg = f"template {name!r} of channel {channel_name!r}: line {exc.lineno}: {exc.message}"
        raise ValueError(msg) from None


# --- validation: every override rendered against notifications that differ where it matters


def _sample(event: str, severity: Severity, labels: dict[str, str], **extra: Any) -> Notification:
    phase = Phase.RESOLVED if event == "resolved" else Phase.FIRING
    fields: dict[str, Any] = {
        "event": event,
        "at": 1_800_000_600.0,
        "incident_id": "0123456789ab",
        "rule": "sample.rule",
        "rule_name": "Sample rule",
        "key": "device=sample",
        "severity": severity,
        "phase": phase,
        "summary": "Sample rule: sample.metric 1.0 on device=sample above 0",
        "labels": labels,
        "started_at": 1_800_000_000.0,
        "fired_at": 1_800_000_060.0,
        "resolved_at": 1_800_000_600.0 if phase is Phase.RESOLVED else None,
    }
    fields.update(extra)
    return Notification(**fields)


_RACK = {"site": "s1", "room": "r1", "row": "w1", "rack": "k1", "device": "d1", "kind": "pdu"}
_FULL_LINKS = Links(
    "https://docs.example/runbooks.md#x", "https://grafana.example/d/x", "https://board.example/"
)
#: (what it stands for, notification, links): an override must render for each.
SAMPLES = [
    (
        "a device alert firing",
        _sample("firing", Severity.CRITICAL, _RACK, runbook_url="docs/runbooks.md#x"),
        _FULL_LINKS,
    ),
    (
        "an acknowledged fire alarm",
        _sample("acknowledged", Severity.CRITICAL, _RACK, fire_alarm=True, acknowledged_by="ana"),
        _FULL_LINKS,
    ),
    (
        "a row-level resolve without links",
        _sample("resolved", Severity.WARNING, {"site": "s1", "room": "r1", "row": "w1"}),
        Links(),
    ),
    (
        "an escalated alert of the monitor itself (no location labels)",
        _sample("escalated", Severity.CRITICAL, {"channel": "pager"}, children=3),
        Links(runbook="docs/runbooks.md#dcim-notification-failed"),
    ),
]


def check_templates(channel_type: str, channel_name: str, overrides: Mapping[str, str]) -> None:
    """ValueError naming the channel, the part and the problem, for the first bad override."""
    parts = PARTS.get(channel_type, {})
    unknown = sorted(set(overrides) - set(parts))
    if unknown:
        known = ", ".join(parts) or "none"
        msg = (
            f"channel {channel_name!r}: no template part {', '.join(unknown)} "
            f"for {channel_type} (parts: {known})"
        )
        raise ValueError(msg)
    for name, source in overrides.items():
        template = _compile(channel_type, channel_name, name, source)
        for what, notification, links in SAMPLES:
            try:
                template.render(context(notification, links))
            except TemplateError as exc:
                hint = (
                    " (a label an alert may lack: use labels.get('name'))"
                    if "attribute" in str(exc)
                    else ""
                )
                msg = (
                    f"template {name!r} of channel {channel_name!r} fails for {what}: "
                    f"{exc.__class__.__name__}: {exc}{hint}"
                )
                raise ValueError(msg) from None


class Messages:
    """What one channel says: its templates rendered for a notification, with its links."""

    def __init__(
        self,
        channel_type: str,
        channel_name: str,
        overrides: Mapping[str, str] | None = None,
        links: AlertLinks | None = None,
    ) -> None:
        self.channel_type = channel_type
        self.channel_name = channel_name
        self._links = links or AlertLinks()
        self._parts = PARTS[channel_type]
        shipped = defaults(channel_type)
        self._defaults = {
            name: _compile(channel_type, "(shipped)", name, text) for name, text in shipped.items()
        }
        self._templates = dict(self._defaults)
        for name, text in (overrides or {}).items():
            self._templates[name] = _compile(channel_type, channel_name, name, text)

    def links(self, notification: Notification) -> Links:
        return links_for(notification, self._links)

    def render(self, part: str, notification: Notification, links: Links | None = None) -> str:
        links = links if links is not None else self.links(notification)
        variables = context(notification, links)
        try:
            text = self._templates[part].render(variables)
        except TemplateError as exc:
            # validated, yet this notification breaks it: the shipped wording still pages
            log.warning(
                "channel %s: template %r failed for incident %s (%s: %s); sent the default text",
                self.channel_name,
                part,
                notification.incident_id,
                exc.__class__.__name__,
                exc,
            )
            text = self._defaults[part].render(variables)
        return shape(text, self._parts[part])
