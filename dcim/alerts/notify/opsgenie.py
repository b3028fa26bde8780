"""Opsgenie Alert API: create an alert per incident, acknowledge and close it by alias.

The alias is `dcim-<incident id>`: Opsgenie keeps one open alert per alias, so an
update or an escalation adds to the open alert instead of paging twice, and an ack or
the resolve in dcim reaches the alert they belong to. Requests are accepted with 202
and processed asynchronously by Opsgenie. Jira Service Management (Opsgenie's
successor) takes the same calls under its own base URL (`api_url`).
"""

from __future__ import annotations

from urllib.parse import quote

from dcim.alerts.config import AlertLinks, OpsgenieChannel
from dcim.alerts.model import Notification, Phase
from dcim.alerts.notify.http import JsonPoster
from dcim.alerts.notify.links import Links
from dcim.alerts.notify.templating import Messages, fit

ALIAS_PREFIX = "dcim-"
#: Documented limits: alias and entity 512, user and source 100, tags 20 of 50 each,
#: details 8000 characters in all.
MAX_TAGS = 20
DETAILS_LIMIT = 8000


def alias(notification: Notification) -> str:
    return f"{ALIAS_PREFIX}{notification.incident_id}"[:512]


def details(notification: Notification, links: Links) -> dict[str, str]:
    """String values only, as Opsgenie takes them; the links first, so a cut keeps them."""
    pairs = [
        ("runbook_url", links.runbook),
        ("dashboard_url", links.dashboard),
        ("board_url", links.board),
        ("rule", notification.rule),
        ("scope", notification.key),
        ("incident", notification.incident_id),
        ("severity", notification.severity.value),
        *sorted(notification.labels.items()),
    ]
    out: dict[str, str] = {}
    used = 0
    for key, value in pairs:
        if not value or key in out:
            continue
        cost = len(key) + len(value)
        if used + cost > DETAILS_LIMIT:
            break
        out[key] = value
        used += cost
    return out


class OpsgenieNotifier:
    follows_acknowledgements = True

    def __init__(self, config: OpsgenieChannel, links: AlertLinks | None = None) -> None:
        self.name = config.name
        self._config = config
        key = config.api_key.get_secret_value()
        self._auth = {"Authorization": f"GenieKey {key}"}
        self._alerts = f"{config.base_url}/v2/alerts"
        self._messages = Messages("opsgenie", config.name, config.templates, links)
        self._http = JsonPoster(f"opsgenie {config.name}", config.timeout_s, [key])

    def tags(self, notification: Notification) -> list[str]:
        wanted = ["dcim", notification.severity.value, *self._config.tags]
        if site := notification.labels.get("site"):
            wanted.append(f"site:{site}")
        if notification.fire_alarm:
            wanted.append("fire-alarm")
        unique = list(dict.fromkeys(fit(tag, 50) for tag in wanted))
        return unique[:MAX_TAGS]

    def request(self, notification: Notification) -> tuple[str, dict[str, object]]:
        """(URL, body) of the call this notification makes."""
        config = self._config
        ref = quote(alias(notification), safe="")
        if notification.phase is Phase.RESOLVED or notification.event == "acknowledged":
            action = "close" if notification.phase is Phase.RESOLVED else "acknowledge"
            body: dict[str, object] = {
                "source": config.source,
                "note": self._messages.render("note", notification),
            }
            if notification.acknowledged_by:
                body["user"] = fit(notification.acknowledged_by, 100)
            return f"{self._alerts}/{ref}/{action}?identifierType=alias", body
        links = self._messages.links(notification)
        labels = notification.labels
        body = {
            "message": self._messages.render("message", notification, links)
            or fit(notification.summary, 130),
            "alias": alias(notification),
            "description": self._messages.render("description", notification, links),
            "tags": self.tags(notification),
            "details": details(notification, links),
            "entity": fit(labels.get("device") or notification.key, 512),
            "source": config.source,
            "priority": config.priorities.get(notification.severity, "P3"),
        }
        return self._alerts, body

    async def send(self, notification: Notification) -> None:
        url, body = self.request(notification)
        await self._http.post(url, body, headers=self._auth, accept=(202,))

    async def aclose(self) -> None:
        await self._http.aclose()
