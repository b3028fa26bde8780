"""What every notification channel offers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from dcim.alerts.model import Notification
from dcim.errors import DcimError


class NotifyError(DcimError):
    """A channel could not deliver; the dispatcher retries with backoff.

    `retry_after_s`: the peer said when to try again (HTTP 429 Retry-After): the
    dispatcher waits at least that long, within its longest backoff.
    """

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Notifier(Protocol):
    name: str

    async def send(self, notification: Notification) -> None:
        """Deliver one notification or raise NotifyError."""
        ...

    async def aclose(self) -> None: ...


class Refreshing(Protocol):
    """A channel whose peer forgets alerts it stops hearing about (Alertmanager)."""

    refresh_s: float

    def resume(self, active: Sequence[Notification]) -> None:
        """After a restart: the firing alerts already announced, to keep refreshing."""
        ...

    async def refresh(self) -> None: ...


class FollowsAcknowledgements(Protocol):
    """A channel whose peer keeps paging until it hears of the ack (PagerDuty, Opsgenie):
    it receives `acknowledged` notifications of the incidents it was told of, routes or not."""

    follows_acknowledgements: bool
