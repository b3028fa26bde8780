"""Prometheus Alertmanager v2 API: POST /api/v2/alerts, refreshed while firing.

Alertmanager resolves an alert it has not heard of for its resolve timeout, so
firing alerts are re-posted every `refresh_s` with `endsAt` a few refreshes ahead;
a resolve is posted with `endsAt` = when it resolved.

Each alert carries the `summary` and `description` templates, the links as the
annotations `runbook_url`, `dashboard_url` and `board_url` (the names Prometheus
mixins and Alertmanager templates use), and `generatorURL`: the view of its scope
(the board, else the dashboard), which Alertmanager's UI and receivers link.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import aiohttp

from dcim.alerts.config import AlertLinks, AlertmanagerChannel
from dcim.alerts.model import Notification, Phase
from dcim.alerts.notify.base import NotifyError
from dcim.alerts.notify.links import is_url
from dcim.alerts.notify.templating import Messages
from dcim.tls import client_context

log = logging.getLogger(__name__)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def to_alert(
    notification: Notification, now: float, refresh_s: float, messages: Messages | None = None
) -> dict[str, object]:
    messages = messages or Messages("alertmanager", "alertmanager")
    labels = {name: value for name, value in notification.labels.items() if value}
    labels |= {
        "alertname": notification.rule,
        "severity": notification.severity.value,
        "scope": notification.key,
        "incident": notification.incident_id,
    }
    if notification.fire_alarm:
        labels["fire_alarm"] = "true"
    if notification.phase is Phase.RESOLVED:
        # Alertmanager keeps the later end time unless this one is already past
        ends = min(notification.resolved_at or now, now)
    else:
        ends = now + 4 * refresh_s
    links = messages.links(notification)
    annotations = {
        "summary": messages.render("summary", notification, links),
        "description": messages.render("description", notification, links),
        "rule_name": notification.rule_name,
        "runbook_url": links.runbook,
        "dashboard_url": links.dashboard,
        "board_url": links.board,
    }
    alert: dict[str, object] = {
        "labels": labels,
        "annotations": {name: text for name, text in annotations.items() if text},
        "startsAt": _iso(
            notification.fired_at if notification.fired_at is not None else notification.started_at
        ),
        "endsAt": _iso(ends),
    }
    view = next((url for url in (links.board, links.dashboard) if is_url(url)), None)
    if view is not None:
        alert["generatorURL"] = view
    return alert


#: Name of the always-firing alert of a healthy monitor (the "watchdog" convention).
WATCHDOG_ALERT = "DcimWatchdog"


def watchdog_alert(labels: dict[str, str], now: float, refresh_s: float) -> dict[str, object]:
    """The dead man's switch alert: firing while re-sent, ended `3 * refresh_s` after the
    last send, so a receiver that expects it every few minutes pages when it stops."""
    return {
        "labels": {**labels, "alertname": WATCHDOG_ALERT, "severity": "none"},
        "annotations": {
            "summary": "dcim monitor alive: this alert always fires while the monitor is "
            "healthy; route it to a dead man's switch that pages when it stops",
        },
        "startsAt": _iso(now),
        "endsAt": _iso(now + 3 * refresh_s),
    }


class AlertmanagerNotifier:
    """Posts to every configured Alertmanager; delivered when at least one accepted it.

    That is how an Alertmanager cluster expects its clients to behave: each
    member hears every alert and the gossip protocol makes one of them page, so
    a member that is down (or a network split) costs nothing as long as one
    member took the alert. Members that failed are named in the log.
    """

    def __init__(self, config: AlertmanagerChannel, links: AlertLinks | None = None) -> None:
        self.name = config.name
        self.refresh_s = config.refresh_s
        self._config = config
        self._messages = Messages("alertmanager", config.name, config.templates, links)
        self._urls = [url.rstrip("/") + "/api/v2/alerts" for url in config.targets]
        self._active: dict[str, Notification] = {}
        self._session: aiohttp.ClientSession | None = None

    def resume(self, active: Sequence[Notification]) -> None:
        self._active.update({n.incident_id: n for n in active})

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            config = self._config
            headers = {"Content-Type": "application/json"}
            if config.username is not None and config.password is not None:
                # by hand: aiohttp.BasicAuth is deprecated, encode_basic_auth is 3.12+ only
                pair = f"{config.username}:{config.password.get_secret_value()}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
            connector = aiohttp.TCPConnector(ssl=client_context(config.tls))
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=config.timeout_s),
                headers=headers,
                connector=connector,
            )
        return self._session

    async def _post_one(self, session: aiohttp.ClientSession, url: str, body: bytes) -> None:
        try:
            async with session.post(url, data=body) as resp:
                if resp.status != 200:
                    text = (await resp.text())[:200]
                    raise NotifyError(
                        f"alertmanager {self.name} ({url}): HTTP {resp.status}: {text}"
                    )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NotifyError(
                f"alertmanager {self.name} ({url}): {exc.__class__.__name__}: {exc}"
            ) from None

    async def _post(self, alerts: list[dict[str, object]]) -> None:
        session = self._open()
        body = json.dumps(alerts).encode()
        results = await asyncio.gather(
            *(self._post_one(session, url, body) for url in self._urls), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        for failure in failures:
            if not isinstance(failure, NotifyError):
                raise failure
        if len(failures) == len(results):
            raise NotifyError("; ".join(str(f) for f in failures))
        for failure in failures:  # delivered through another member: worth a warning only
            log.warning("%s (delivered to another cluster member)", failure)

    async def send(self, notification: Notification) -> None:
        # Alertmanager judges start and end times by its own (wall) clock
        now = datetime.now(tz=UTC).timestamp()
        await self._post([to_alert(notification, now, self.refresh_s, self._messages)])
        if notification.phase is Phase.RESOLVED:
            self._active.pop(notification.incident_id, None)
        else:
            self._active[notification.incident_id] = notification

    @property
    def watchdog(self) -> bool:
        """Whether this channel carries the watchdog alert."""
        return self._config.watchdog

    async def send_watchdog(self, labels: dict[str, str]) -> None:
        """Post the watchdog alert now (the caller does so only while the monitor is healthy)."""
        now = datetime.now(tz=UTC).timestamp()
        await self._post([watchdog_alert(labels, now, self.refresh_s)])

    async def refresh(self) -> None:
        if self._active:
            now = datetime.now(tz=UTC).timestamp()
            alerts = [
                to_alert(n, now, self.refresh_s, self._messages) for n in self._active.values()
            ]
            await self._post(alerts)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
