"""Microsoft Teams: an Adaptive Card posted to a Workflows webhook.

Microsoft retired the Office 365 connectors' incoming webhooks; their replacement is
a Workflows flow started by "When a Teams webhook request is received", which takes
a message whose attachment is an Adaptive Card (the old MessageCard is not accepted)
and answers 202. The card: a coloured heading (`title` template), a markdown text
block (`body`), the facts (severity, where, rule, incident, runbook path) and
Action.OpenUrl buttons for the links. Teams refuses messages over 28 KB: the body
is cut until the message fits.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from dcim.alerts.config import AlertLinks, TeamsChannel
from dcim.alerts.model import Notification, Phase, Severity
from dcim.alerts.notify.base import NotifyError
from dcim.alerts.notify.http import JsonPoster
from dcim.alerts.notify.links import Links, is_url
from dcim.alerts.notify.templating import Messages, fit, where

#: Documented limit of a Teams webhook message (28 KB), read as 28,000 bytes to be safe.
MAX_BYTES = 28_000
#: Teams renders Adaptive Cards up to 1.5 on desktop; 1.4 is what every client shows.
CARD_VERSION = "1.4"
CARD_TYPE = "application/vnd.microsoft.card.adaptive"

_COLOURS = {Severity.CRITICAL: "attention", Severity.WARNING: "warning", Severity.INFO: "accent"}


def colour(notification: Notification) -> str:
    if notification.phase is Phase.RESOLVED:
        return "good"
    return _COLOURS[notification.severity]


def facts(notification: Notification, links: Links) -> list[dict[str, str]]:
    rows = [("Severity", notification.severity.value)]
    if place := where(notification.labels):
        rows.append(("Where", place))
    rows.append(("Rule", f"{notification.rule_name or notification.rule} ({notification.rule})"))
    rows.append(("Incident", notification.incident_id))
    if links.runbook and not is_url(links.runbook):
        rows.append(("Runbook", links.runbook))
    return [{"title": title, "value": value} for title, value in rows]


def card(title: str, body: str, notification: Notification, links: Links) -> dict[str, object]:
    content: dict[str, object] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": [
            {
                "type": "TextBlock",
                "text": title,
                "size": "Large",
                "weight": "Bolder",
                "color": colour(notification),
                "wrap": True,
            },
            {"type": "TextBlock", "text": body, "wrap": True},
            {"type": "FactSet", "facts": facts(notification, links)},
        ],
        "msteams": {"width": "Full"},
    }
    actions = [
        {"type": "Action.OpenUrl", "title": label, "url": url} for label, url in links.urls()
    ]
    if actions:
        content["actions"] = actions
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_TYPE, "contentUrl": None, "content": content}],
    }


def size(message: dict[str, object]) -> int:
    return len(json.dumps(message, ensure_ascii=False).encode())


def message(messages: Messages, notification: Notification) -> dict[str, object]:
    links = messages.links(notification)
    title = messages.render("title", notification, links) or notification.rule
    body = messages.render("body", notification, links) or notification.summary
    built = card(title, body, notification, links)
    while size(built) > MAX_BYTES and len(body) > 1:
        # labels or a long template: shorten the body by what is over, and then some
        over = size(built) - MAX_BYTES
        body = fit(body, max(1, len(body) - over - 16))
        built = card(title, body, notification, links)
    return built


class TeamsNotifier:
    def __init__(self, config: TeamsChannel, links: AlertLinks | None = None) -> None:
        self.name = config.name
        self._url = config.url.get_secret_value()
        self._messages = Messages("teams", config.name, config.templates, links)
        parsed = urlsplit(self._url)
        self._http = JsonPoster(
            f"teams {config.name}", config.timeout_s, [self._url, parsed.path, parsed.query]
        )

    def message(self, notification: Notification) -> dict[str, object]:
        return message(self._messages, notification)

    async def send(self, notification: Notification) -> None:
        text = await self._http.post(self._url, self.message(notification), accept=(200, 202))
        # the old connectors answered 200 with the failure in the body (e.g. a 429 from Teams)
        if "error" in text.lower() and text.strip() != "1":
            excerpt = " ".join(text.split())[:300]
            raise NotifyError(self._http.redact(f"teams {self.name}: refused: {excerpt}"))

    async def aclose(self) -> None:
        await self._http.aclose()
