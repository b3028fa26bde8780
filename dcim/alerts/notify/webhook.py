"""Webhook: JSON POST, signed with HMAC-SHA256 over timestamp and body.

Receivers verify `X-Dcim-Signature: sha256=<hex>` = HMAC(key, "<X-Dcim-Timestamp>." + body)
and reject old timestamps, so a captured request cannot be replayed later.

The body is the notification's JSON with its resolved links (`runbook_url`,
`dashboard_url`, `board_url`) and the `message` template's line.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import aiohttp

from dcim.alerts.config import AlertLinks, WebhookChannel
from dcim.alerts.model import Notification
from dcim.alerts.notify.base import NotifyError
from dcim.alerts.notify.templating import Messages

SIGNATURE_HEADER = "X-Dcim-Signature"
TIMESTAMP_HEADER = "X-Dcim-Timestamp"


def sign(key: bytes, timestamp: str, body: bytes) -> str:
    digest = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(key: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(key, timestamp, body), signature)


def document(messages: Messages, notification: Notification) -> dict[str, object]:
    """The JSON a webhook posts (and the MQTT channel publishes)."""
    links = messages.links(notification)
    body = notification.to_json()
    body["runbook_url"] = links.runbook
    body["dashboard_url"] = links.dashboard
    body["board_url"] = links.board
    body["message"] = messages.render("message", notification, links)
    return body


class WebhookNotifier:
    def __init__(self, config: WebhookChannel, links: AlertLinks | None = None) -> None:
        self.name = config.name
        self._config = config
        self._messages = Messages("webhook", config.name, config.templates, links)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, notification: Notification) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._config.timeout_s)
            )
        body = json.dumps(document(self._messages, notification), sort_keys=True).encode()
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp}
        if self._config.hmac_key is not None:
            key = self._config.hmac_key.get_secret_value().encode()
            headers[SIGNATURE_HEADER] = sign(key, timestamp, body)
        try:
            async with self._session.post(self._config.url, data=body, headers=headers) as resp:
                if resp.status >= 300:
                    raise NotifyError(f"webhook {self.name}: HTTP {resp.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NotifyError(f"webhook {self.name}: {exc.__class__.__name__}: {exc}") from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
