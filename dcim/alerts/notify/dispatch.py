"""Routing and delivery: one worker per channel, reading its rows from the outbox.

A failing channel retries with exponential backoff in its own task, so it never
holds up the others; after `fail_after` failures in a row it reports itself
(the service raises a 'notification failed' alert that goes to the other channels).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Mapping, Sequence
from fnmatch import fnmatchcase

from dcim.alerts.config import RetryPolicy, Route
from dcim.alerts.model import Notification
from dcim.alerts.notify.base import Notifier, NotifyError
from dcim.alerts.store import AlertStore
from dcim.alerts.storms import NOTIFY_FAILED_RULE
from dcim.backoff import Backoff
from dcim.clock import Clock

log = logging.getLogger(__name__)

#: Called with (channel, error) when a channel starts failing, (channel, None) when it recovers.
ChannelHealth = Callable[[str, str | None], None]


class Dispatcher:
    def __init__(
        self,
        store: AlertStore,
        notifiers: Mapping[str, Notifier],
        *,
        routes: Sequence[Route],
        retry: RetryPolicy,
        on_health: ChannelHealth,
        clock: Clock,
    ) -> None:
        self.store = store
        self.notifiers = dict(notifiers)
        self.routes = list(routes)
        self.retry = retry
        self._on_health = on_health
        self._clock = clock
        self._wake = {name: asyncio.Event() for name in self.notifiers}
        self.failing: dict[str, str] = {}
        self.delivered = 0
        #: Hook for latency measurement: called right after a notification left.
        self.on_delivered: Callable[[str, Notification], None] | None = None
        #: Awaited before each send (coordinated monitors: the incident's state reaches
        #: etcd before its page leaves, so a member that dies right after paging has
        #: left what the next owner needs to not page again).
        self.before_send: Callable[[Notification], Awaitable[object]] | None = None
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}
        self._started = False
        #: Rows sent whose delivery the store could not record yet: never sent twice.
        self._sent: dict[str, dict[int, float]] = {}
        #: Store reads/writes that failed (disk full, I/O error); each is retried.
        self.store_errors = 0

    def route(self, notification: Notification) -> list[str]:
        """Channels a notification goes to."""
        if notification.rule == NOTIFY_FAILED_RULE.id:
            broken = notification.labels.get("channel")
            return [name for name in self.notifiers if name != broken]
        if notification.event == "acknowledged":
            return self._route_ack(notification)
        if not self.routes:
            return list(self.notifiers)
        chosen: list[str] = []
        for route in self.routes:
            if (
                notification.severity in route.severities
                and notification.event in route.events
                and any(fnmatchcase(notification.rule, p) for p in route.rules)
                and route.scope.matches(notification.labels)
            ):
                chosen.extend(c for c in route.channels if c not in chosen)
        if notification.event == "resolved":
            # whoever heard it fire hears it resolve, even if the incident's severity
            # or labels no longer match that route (a warning route, a critical resolve)
            told = self.store.channels_told(notification.incident_id)
            chosen.extend(c for c in self.notifiers if c in told and c not in chosen)
        return chosen

    def _route_ack(self, notification: Notification) -> list[str]:
        """An ack goes only to channels that heard of the incident: those whose peer pages
        until it hears of it (PagerDuty, Opsgenie), and those whose routes ask for acks
        (every channel, when there are no routes)."""
        told = self.store.channels_told(notification.incident_id)
        wanted = {
            name
            for name, notifier in self.notifiers.items()
            if getattr(notifier, "follows_acknowledgements", False)
        }
        if not self.routes:
            wanted |= set(self.notifiers)
        for route in self.routes:
            if (
                "acknowledged" in route.events
                and notification.severity in route.severities
                and any(fnmatchcase(notification.rule, p) for p in route.rules)
                and route.scope.matches(notification.labels)
            ):
                wanted.update(route.channels)
        return [name for name in self.notifiers if name in wanted and name in told]

    def wake(self) -> None:
        for event in self._wake.values():
            event.set()

    def start(self) -> None:
        self._started = True
        for name in self.notifiers:
            self._start_channel(name)

    def _start_channel(self, name: str) -> None:
        notifier = self.notifiers[name]
        tasks = [asyncio.create_task(self._worker(name), name=f"notify {name}")]
        if hasattr(notifier, "refresh"):
            tasks.append(asyncio.create_task(self._refresher(notifier), name=f"refresh {name}"))
        self._tasks[name] = tasks

    async def _stop_channel(self, name: str) -> None:
        tasks = self._tasks.pop(name, [])
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.notifiers[name].aclose()

    async def replace_channels(
        self, notifiers: Mapping[str, Notifier], routes: Sequence[Route]
    ) -> None:
        """A reload: channels not in `notifiers` stop, new ones start, and a channel
        whose notifier is the same object carries on. Undelivered rows of a channel
        stay in the outbox (a channel added back under its name delivers them)."""
        for name in list(self.notifiers):
            if notifiers.get(name) is not self.notifiers[name]:
                await self._stop_channel(name)
                del self.notifiers[name]
                self._wake.pop(name, None)
                if self.failing.pop(name, None) is not None:
                    self._on_health(name, None)  # gone, so no longer failing
        self.routes = list(routes)
        for name, notifier in notifiers.items():
            if name not in self.notifiers:
                self.notifiers[name] = notifier
                self._wake[name] = asyncio.Event()
                if self._started:
                    self._start_channel(name)
        self.wake()

    async def aclose(self) -> None:
        for name in list(self._tasks):
            await self._stop_channel(name)
        for name, notifier in self.notifiers.items():
            if name not in self._tasks:
                await notifier.aclose()
        self._tasks = {}

    @property
    def running(self) -> bool:
        """Every channel's worker is alive (a dead one would deliver nothing)."""
        return all(not t.done() for tasks in self._tasks.values() for t in tasks)

    def pending(self, name: str) -> int:
        """Notifications of a channel not yet delivered."""
        return self.store.pending_count(name)

    async def _worker(self, name: str) -> None:
        notifier, wake = self.notifiers[name], self._wake[name]
        failures = 0
        store_delay = Backoff(self.retry.initial_s, self.retry.max_s)
        sending = Backoff(self.retry.initial_s, self.retry.max_s)
        while True:
            # a few at a time, most urgent first: a page that lands behind a backlog
            # waits for at most this many sends, not for the whole backlog
            try:
                self._record_sent(name)
                batch = self._due(name)
                if not batch:
                    wake.clear()
                    batch = self._due(name)  # a row may have landed meanwhile
            except sqlite3.Error as exc:
                # the store is unreadable now (I/O error, disk full on a checkpoint):
                # nothing is lost, the rows stay in the outbox; retry with backoff
                self.store_errors += 1
                log.error("channel %s: cannot read the alert outbox: %s", name, exc)
                await asyncio.sleep(store_delay.next_delay())
                continue
            if not batch:
                if self._sent.get(name):  # deliveries still to record: come back to them
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(store_delay.next_delay()):
                            await wake.wait()
                else:
                    await wake.wait()
                continue
            store_delay.reset()
            for seq, notification in batch:
                if self.before_send is not None:
                    await self.before_send(notification)
                while True:
                    try:
                        await notifier.send(notification)
                    except NotifyError as exc:
                        failures += 1
                        with contextlib.suppress(sqlite3.Error):  # only a counter
                            self.store.failed_attempt(seq)
                        if failures >= self.retry.fail_after and name not in self.failing:
                            self.failing[name] = str(exc)
                            log.warning("channel %s failing: %s", name, exc)
                            self._on_health(name, str(exc))
                        delay = sending.next_delay()
                        if exc.retry_after_s is not None:  # the peer said when (HTTP 429)
                            delay = max(delay, exc.retry_after_s)
                        await asyncio.sleep(min(delay, self.retry.max_s))
                        continue
                    self._sent.setdefault(name, {})[seq] = self._clock()
                    self._record_sent(name)
                    self.delivered += 1
                    if self.on_delivered is not None:
                        self.on_delivered(name, notification)
                    failures = 0
                    sending.reset()
                    if self.failing.pop(name, None) is not None:
                        log.warning("channel %s delivers again", name)
                        self._on_health(name, None)
                    break

    def _due(self, name: str) -> list[tuple[int, Notification]]:
        sent = self._sent.setdefault(name, {})
        return [(seq, n) for seq, n in self.store.next_due(name) if seq not in sent]

    def _record_sent(self, name: str) -> None:
        """Mark sent rows delivered in the store; rows it refuses wait in memory for later."""
        sent = self._sent.setdefault(name, {})
        for seq, at in list(sent.items()):
            try:
                self.store.delivered(seq, at)
            except sqlite3.Error as exc:
                self.store_errors += 1
                log.error("channel %s: cannot record a delivery in the alert store: %s", name, exc)
                return
            del sent[seq]

    async def _refresher(self, notifier: Notifier) -> None:
        refresh = getattr(notifier, "refresh", None)
        interval = float(getattr(notifier, "refresh_s", 60.0))
        while refresh is not None:
            await asyncio.sleep(interval)
            try:
                await refresh()
            except NotifyError as exc:
                log.warning("%s: refresh failed: %s", notifier.name, exc)
