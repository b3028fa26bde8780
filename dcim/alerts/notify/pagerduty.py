"""PagerDuty Events API v2: each incident is one PagerDuty alert, keyed by its dedup_key.

firing, updated and escalated send `trigger` (PagerDuty adds them to the open alert of
the same key), an operator's ack in dcim sends `acknowledge` (PagerDuty stops paging),
the resolve sends `resolve`. The key is `dcim-<incident id>`: stable for the incident's
life and across restarts (the id is stored), new for the next incident of the same rule
and scope, as PagerDuty opens a new alert for a trigger after a resolve anyway.

PagerDuty answers 202; 400 means the event is invalid (payloads are built to the
documented limits so it does not happen), 429 and 5xx ask for a retry: every refusal is
kept in the outbox and retried with backoff, and the channel reports itself failing,
as a dropped page is worse than a repeated one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from dcim.alerts.config import AlertLinks, PagerDutyChannel
from dcim.alerts.model import Notification, Phase
from dcim.alerts.notify.http import JsonPoster
from dcim.alerts.notify.links import Links
from dcim.alerts.notify.templating import Messages, fit

DEDUP_PREFIX = "dcim-"
#: payload.severity takes critical, error, warning or info: ours map one to one.
_ACTIONS = {"acknowledged": "acknowledge", "resolved": "resolve"}


def dedup_key(notification: Notification) -> str:
    return f"{DEDUP_PREFIX}{notification.incident_id}"[:255]


def event_action(notification: Notification) -> str:
    if notification.phase is Phase.RESOLVED:
        return "resolve"
    return _ACTIONS.get(notification.event, "trigger")


def _timestamp(notification: Notification) -> str:
    ts = notification.fired_at if notification.fired_at is not None else notification.started_at
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds")


def custom_details(notification: Notification, links: Links) -> dict[str, object]:
    details: dict[str, object] = {
        "rule": notification.rule,
        "rule_name": notification.rule_name,
        "scope": notification.key,
        "incident": notification.incident_id,
        "event": notification.event,
        "labels": dict(notification.labels),
        "fire_alarm": notification.fire_alarm,
        "grouped_children": notification.children,
    }
    for name, value in (
        ("runbook_url", links.runbook),
        ("dashboard_url", links.dashboard),
        ("board_url", links.board),
        ("acknowledged_by", notification.acknowledged_by),
    ):
        if value:
            details[name] = value
    return details


def event(messages: Messages, notification: Notification, routing_key: str) -> dict[str, object]:
    action = event_action(notification)
    body: dict[str, object] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key(notification),
    }
    if action != "trigger":
        return body
    links = messages.links(notification)
    labels = notification.labels
    group = "/".join(labels[p] for p in ("site", "room") if labels.get(p))
    payload: dict[str, object] = {
        "summary": messages.render("summary", notification, links)
        or fit(notification.summary, 1024),
        # the affected system: the device, else the scope the rule judged (a row, a feed...)
        "source": labels.get("device") or notification.key or "dcim",
        "severity": notification.severity.value,
        "timestamp": _timestamp(notification),
        "class": notification.rule,
        "custom_details": custom_details(notification, links),
    }
    if labels.get("kind"):
        payload["component"] = labels["kind"]
    if group:
        payload["group"] = group
    body["payload"] = payload
    body["client"] = "dcim"
    urls = links.urls()
    if urls:
        body["links"] = [{"href": url, "text": label} for label, url in urls]
        client_url = links.board or links.dashboard
        if client_url:
            body["client_url"] = client_url
    return body


class PagerDutyNotifier:
    follows_acknowledgements = True

    def __init__(self, config: PagerDutyChannel, links: AlertLinks | None = None) -> None:
        self.name = config.name
        self._key = config.routing_key.get_secret_value()
        self._url = config.endpoint
        self._messages = Messages("pagerduty", config.name, config.templates, links)
        self._http = JsonPoster(f"pagerduty {config.name}", config.timeout_s, [self._key])

    def event(self, notification: Notification) -> dict[str, object]:
        return event(self._messages, notification, self._key)

    async def send(self, notification: Notification) -> None:
        await self._http.post(self._url, self.event(notification), accept=(202,))

    async def aclose(self) -> None:
        await self._http.aclose()
