"""Slack incoming webhook: one Block Kit message per notification.

Blocks: a header (the `title` template), a mrkdwn section (`body`), a context line
(rule, incident, and the runbook path when it is no URL), and buttons for the runbook,
dashboard and board links. `text` is the fallback Slack shows in notifications. Each
part is cut to Slack's documented limit (header 150, section 3000 characters) by the
templating layer, so no wording makes Slack refuse the message. The webhook answers
200 "ok"; anything else (invalid_payload, channel_is_archived, 429...) is retried.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from dcim.alerts.config import AlertLinks, SlackChannel
from dcim.alerts.model import Notification
from dcim.alerts.notify.http import JsonPoster
from dcim.alerts.notify.links import Links, is_url
from dcim.alerts.notify.templating import Messages, fit, slack_escape

#: Block Kit: button text <= 75, button url <= 3000, context element text <= 3000.
BUTTON_TEXT = 75
URL_LIMIT = 3000


def context_line(notification: Notification, links: Links) -> str:
    parts = [f"rule `{notification.rule}`", f"incident `{notification.incident_id}`"]
    if links.runbook and not is_url(links.runbook):
        parts.append(f"runbook {slack_escape(links.runbook)}")
    return fit(" · ".join(parts), 3000)


def buttons(links: Links) -> list[dict[str, object]]:
    return [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": fit(label, BUTTON_TEXT)},
            "url": url,
            "action_id": f"dcim-{label.lower()}",
        }
        for label, url in links.urls()
        if len(url) <= URL_LIMIT
    ]


def message(messages: Messages, notification: Notification) -> dict[str, object]:
    links = messages.links(notification)
    blocks: list[dict[str, object]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": messages.render("title", notification, links) or notification.rule,
                "emoji": True,
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": messages.render("body", notification, links) or notification.summary,
            },
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": context_line(notification, links)}],
        },
    ]
    actions = buttons(links)
    if actions:
        blocks.append({"type": "actions", "elements": actions})
    return {
        "text": messages.render("text", notification, links) or notification.summary,
        "blocks": blocks,
    }


class SlackNotifier:
    def __init__(self, config: SlackChannel, links: AlertLinks | None = None) -> None:
        self.name = config.name
        self._url = config.url.get_secret_value()
        self._messages = Messages("slack", config.name, config.templates, links)
        self._http = JsonPoster(
            f"slack {config.name}", config.timeout_s, [self._url, urlsplit(self._url).path]
        )

    def message(self, notification: Notification) -> dict[str, object]:
        return message(self._messages, notification)

    async def send(self, notification: Notification) -> None:
        await self._http.post(self._url, self.message(notification), accept=(200,))

    async def aclose(self) -> None:
        await self._http.aclose()
