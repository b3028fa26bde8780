"""What every notification channel offers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from dcim.alerts.model import Notification
from dcim.errors import DcimError


class NotifyError(DcimError):
    """A channel could not deliver; the dispatcher retries with backoff."""


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


def subject(notification: Notification) -> str:
    state = "ESCALATED" if notification.event == "escalated" else notification.phase.value.upper()
    return f"[{notification.severity.value.upper()}] {state}: {notification.summary}"
