"""JSON over HTTPS for the SaaS channels (Slack, Teams, PagerDuty, Opsgenie).

One session per channel, kept between sends. `trust_env`: an outbound proxy set in
HTTPS_PROXY / NO_PROXY is used, as a data center's monitoring network usually needs
one to reach a SaaS. Error messages never carry the secrets given (a chat webhook's
URL is its credential) nor the request URL.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp

from dcim.alerts.notify.base import NotifyError

#: How much of a refusal's body goes into the error (and so into the log).
BODY_EXCERPT = 300


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header: delay-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    base = now if now is not None else datetime.now(tz=UTC).timestamp()
    return max(0.0, when.timestamp() - base)


class JsonPoster:
    def __init__(self, label: str, timeout_s: float, secrets: Sequence[str] = ()) -> None:
        #: "slack chat": the channel type and name, as errors start.
        self.label = label
        self._timeout_s = timeout_s
        self._secrets = [s for s in secrets if s]
        self._session: aiohttp.ClientSession | None = None

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<secret>")
        return text

    async def post(
        self,
        url: str,
        body: Mapping[str, object],
        *,
        headers: Mapping[str, str] | None = None,
        accept: Collection[int] = (200, 201, 202, 204),
    ) -> str:
        """POST `body` as JSON; the response text, or NotifyError naming the status."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout_s), trust_env=True
            )
        data = json.dumps(body, ensure_ascii=False).encode()
        sent_headers = {"Content-Type": "application/json", **(headers or {})}
        try:
            async with self._session.post(url, data=data, headers=sent_headers) as resp:
                text = await resp.text(errors="replace")
                if resp.status in accept:
                    return text
                wait = retry_after(resp.headers.get("Retry-After"))
                excerpt = " ".join(text.split())[:BODY_EXCERPT]
                raise NotifyError(
                    self.redact(f"{self.label}: HTTP {resp.status}: {excerpt}"),
                    retry_after_s=wait,
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            what = str(exc) or "no answer in time"
            raise NotifyError(
                self.redact(f"{self.label}: {exc.__class__.__name__}: {what}")
            ) from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
