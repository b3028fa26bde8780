"""Tell systemd how the monitor is doing (sd_notify(3)): READY, WATCHDOG, RELOADING, STOPPING.

Through cysystemd, which calls libsystemd's own `sd_notify` (abstract and path
sockets, credentials). Outside systemd (no NOTIFY_SOCKET) every call is a no-op.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def watchdog_interval_s() -> float | None:
    """How often to send WATCHDOG=1: half of WatchdogSec (WATCHDOG_USEC), or None when off.

    WATCHDOG_PID, when set, names the process the watchdog is meant for: a child
    that inherited the variables must not answer for its parent.
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1e6 / 2


class ServiceNotifier:
    """The notify socket of the service manager, if there is one."""

    def __init__(self) -> None:
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))
        self._failed_logged = False

    def _send(self, name: str, value: str | None = None) -> None:
        if not self.enabled:
            return
        from cysystemd.daemon import Notification, notify

        notification = Notification[name]
        result = notify(notification, value) if value is not None else notify(notification)
        if isinstance(result, Exception) and not self._failed_logged:
            self._failed_logged = True  # once: a broken socket would otherwise log forever
            log.warning("cannot notify the service manager (%s=...): %s", name, result)

    def ready(self, status: str) -> None:
        self._send("STATUS", status)
        self._send("READY")

    def status(self, status: str) -> None:
        self._send("STATUS", status)

    def watchdog(self) -> None:
        self._send("WATCHDOG")

    def reloading(self) -> None:
        self._send("RELOADING")

    def stopping(self) -> None:
        self._send("STOPPING")
