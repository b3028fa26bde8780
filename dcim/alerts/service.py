"""The alert engine as the monitor runs it: rules + state store + channels + local API.

Integration (the runner):

    alerts = AlertEngine.from_config(config)            # state under monitor.state_dir
    sub = monitor.subscribe("alerts")
    task = asyncio.create_task(alerts.run(sub.queue, monitor.bus.publish))
    ...
    await alerts.aclose()                                # after cancelling `task`

`run` consumes readings, emits the `alert.event` readings of every transition
through `emit`, and delivers notifications in the background.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dcim.alerts.config import AlertLinks, AlertsConfig, Channel
from dcim.alerts.engine import EngineSettings, RuleEngine
from dcim.alerts.events import transition_readings
from dcim.alerts.kinds.base import DeviceInfo
from dcim.alerts.model import DEFAULT_ASHRAE_CLASS, Incident, Level, Notification, Severity
from dcim.alerts.notify.base import Notifier
from dcim.alerts.notify.dispatch import Dispatcher
from dcim.alerts.rules import Rule, load_pack, load_rule_file, merge_rules
from dcim.alerts.silences import Silence
from dcim.alerts.snapshot import OpenIncidents
from dcim.alerts.store import AlertStore
from dcim.alerts.storms import NOTIFY_FAILED_RULE
from dcim.alerts.tracker import FlapPolicy
from dcim.audit import DEFAULT_AUDIT_FILE, AuditLog
from dcim.clock import Clock, wall_clock
from dcim.reading import Reading

if TYPE_CHECKING:
    from aiohttp import web

    from dcim.inventory import Config

log = logging.getLogger(__name__)

Emit = Callable[[Sequence[Reading]], None]
#: Readings taken off the queue before the engine looks at the clock and flushes.
MAX_BATCH = 5000
#: Alert settings a reload cannot change in a running engine.
_RESTART_ONLY = (
    "api",
    "db_file",
    "flap",
    "degraded",
    "startup_grace_s",
    "stale_intervals",
    "escalate_after_s",
)


def build_notifier(channel: Channel, links: AlertLinks | None = None) -> Notifier:
    """The notifier of a channel; `links` makes its notifications carry runbook and views."""
    if channel.type == "webhook":
        from dcim.alerts.notify.webhook import WebhookNotifier

        return WebhookNotifier(channel, links)
    if channel.type == "email":
        from dcim.alerts.notify.email import EmailNotifier

        return EmailNotifier(channel, links)
    if channel.type == "mqtt":
        from dcim.alerts.notify.mqtt import MqttNotifier

        return MqttNotifier(channel, links)
    if channel.type == "slack":
        from dcim.alerts.notify.slack import SlackNotifier

        return SlackNotifier(channel, links)
    if channel.type == "teams":
        from dcim.alerts.notify.teams import TeamsNotifier

        return TeamsNotifier(channel, links)
    if channel.type == "pagerduty":
        from dcim.alerts.notify.pagerduty import PagerDutyNotifier

        return PagerDutyNotifier(channel, links)
    if channel.type == "opsgenie":
        from dcim.alerts.notify.opsgenie import OpsgenieNotifier

        return OpsgenieNotifier(channel, links)
    from dcim.alerts.notify.alertmanager import AlertmanagerNotifier

    return AlertmanagerNotifier(channel, links)


def device_infos(config: Config) -> dict[str, DeviceInfo]:
    """What the engine knows of each inventory device: tags, interval, its room's class."""
    from dcim.inventory import iter_devices

    alerts = getattr(config, "alerts", None)
    default = alerts.ashrae_class if alerts is not None else DEFAULT_ASHRAE_CLASS
    classes = {(s.id, r.id): r.ashrae_class or default for s in config.sites for r in s.rooms}
    return {
        placed.device.id: DeviceInfo(
            placed.tags, placed.device.poll_interval_s, classes.get((placed.site, placed.room))
        )
        for placed in iter_devices(config)
    }


def load_rules(settings: AlertsConfig) -> list[Rule]:
    """Shipped packs first, then site rule files (same id: the file wins)."""
    sets = [load_pack(name) for name in settings.packs]
    sets += [load_rule_file(path) for path in settings.rule_files]
    return merge_rules(sets)


class AlertEngine:
    def __init__(
        self,
        settings: AlertsConfig,
        rules: Sequence[Rule],
        devices: Mapping[str, DeviceInfo],
        state_dir: Path,
        *,
        clock: Clock = wall_clock,
        notifiers: Mapping[str, Notifier] | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        #: Operator actions through the API (default: <state_dir>/audit.jsonl).
        self.audit = audit or AuditLog(Path(state_dir) / DEFAULT_AUDIT_FILE)
        self.store = AlertStore(Path(state_dir) / settings.db_file)
        longest_poll = max((d.interval_s for d in devices.values()), default=0.0)
        grace = settings.startup_grace_s
        self.engine = RuleEngine(
            rules,
            clock=clock,
            devices=devices,
            settings=EngineSettings(
                startup_grace_s=longest_poll if grace is None else grace,
                stale_intervals=settings.stale_intervals,
                flap=FlapPolicy(settings.flap.count, settings.flap.window_s, settings.flap.hold_s),
                degraded_min_devices=settings.degraded.min_devices,
                degraded_min_fraction=settings.degraded.min_fraction,
                escalate_after_s=settings.escalate_after_s,
            ),
            incidents=self.store.open_incidents(),
            silences=self.store.silences(clock()),
        )
        #: Channel configs by name, to tell which channels a reload changed.
        self._channels: dict[str, Channel] = {c.name: c for c in settings.channels}
        if notifiers is None:
            notifiers = {c.name: build_notifier(c, settings.links) for c in settings.channels}
        self.dispatcher = Dispatcher(
            self.store,
            notifiers,
            routes=settings.routes,
            retry=settings.retry,
            on_health=self._channel_health,
            clock=clock,
        )
        self._resume_refreshing(notifiers)
        # what is open now, restated periodically for dashboards (dcim/alerts/snapshot.py)
        sites = sorted({d.tags["site"] for d in devices.values() if "site" in d.tags})
        self.open_now = OpenIncidents(sites)
        self._emit: Emit | None = None
        #: Told of every incident whose stored state changed (coordination mirrors them).
        self.on_changed: Callable[[list[Incident]], None] | None = None
        #: Told of every silence added (Silence) or removed (its id) by an operator.
        self.on_silence: Callable[[Silence | str], None] | None = None
        self._api: web.AppRunner | None = None
        self.api_port: int | None = None
        #: Changes the store refused (disk full, I/O error), saved with the next flush.
        self._unsaved: tuple[list[Incident], list[tuple[str, Notification]]] = ([], [])
        #: Saves the store refused since start (a self-metric; each spell is logged once).
        self.store_errors = 0

    @classmethod
    def from_config(
        cls, config: Config, state_dir: Path | None = None, *, clock: Clock = wall_clock
    ) -> AlertEngine:
        """Rules, devices and channels from the monitor config (`alerts:` may be absent)."""
        settings = getattr(config, "alerts", None) or AlertsConfig()
        devices = device_infos(config)
        directory = state_dir if state_dir is not None else config.monitor.state_dir
        audit_file = config.monitor.audit_file or directory / DEFAULT_AUDIT_FILE
        return cls(
            settings,
            load_rules(settings),
            devices,
            directory,
            clock=clock,
            audit=AuditLog(audit_file),
        )

    # --- running ---------------------------------------------------------------

    async def run(self, source: asyncio.Queue[Reading], emit: Emit) -> None:
        """Consume readings until cancelled; `emit` receives the alert transition readings."""
        self._emit = emit
        self.dispatcher.start()
        if self.settings.api is not None and self._api is None:
            from dcim.alerts.api import start_api

            self._api, self.api_port = await start_api(self, self.settings.api, self.audit)
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            try:
                async with asyncio.timeout(max(0.0, next_tick - loop.time())):
                    first = await source.get()
            except TimeoutError:
                first = None
            if first is not None:
                self.engine.observe(first)
                for _ in range(MAX_BATCH):
                    if source.empty():
                        break
                    self.engine.observe(source.get_nowait())
            if loop.time() >= next_tick:
                self.engine.tick()
                next_tick = loop.time() + self.settings.tick_s
            self.flush()

    def process(self, readings: Iterable[Reading]) -> None:
        """Observe readings and flush now (tests, replays)."""
        for reading in readings:
            self.engine.observe(reading)
        self.flush()

    def tick(self) -> None:
        self.engine.tick()
        self.flush()

    def flush(self) -> None:
        """Store what changed with its outbox rows (one transaction), emit, wake channels."""
        out = self.engine.take()
        routed = [(ch, n) for n in out.notifications for ch in self.dispatcher.route(n)]
        changed = [*self._unsaved[0], *out.changed]
        routed = [*self._unsaved[1], *routed]
        if changed or routed:
            try:
                self.store.save(changed, routed)
            except sqlite3.Error as exc:
                # keep them in memory and try again next flush: a notification is late, not lost
                if not self._unsaved[0] and not self._unsaved[1]:
                    log.error(
                        "alert store %s: cannot save (%s); holding %d changes and %d "
                        "notifications in memory until it can",
                        self.store.path,
                        exc,
                        len(changed),
                        len(routed),
                    )
                self.store_errors += 1
                self._unsaved = (changed, routed)
                routed = []
            else:
                if self._unsaved[0] or self._unsaved[1]:
                    log.warning("alert store %s: saving again", self.store.path)
                self._unsaved = ([], [])
        if changed and self.on_changed is not None and not self._unsaved[0]:
            self.on_changed(changed)
        if routed:
            self.dispatcher.wake()
        if self._emit is not None:
            if out.transitions:
                self._emit(transition_readings(out.transitions))
            now = self.clock()
            snapshot = self.open_now.readings(
                out.transitions, lambda: self.engine.open_incidents, now
            )
            if snapshot:
                self._emit(snapshot)

    async def aclose(self) -> None:
        if self._api is not None:
            await self._api.cleanup()
            self._api = None
        await self.dispatcher.aclose()
        self.store.close()

    async def reconfigure(self, config: Config) -> list[str]:
        """Apply a reloaded config: rules, devices, channels and routes.

        Incidents, silences, acknowledgements and the state of every unchanged rule
        are kept; a channel whose settings did not change keeps its connection and
        its queue. Returns the settings that only a restart applies (changed anyway).
        """
        settings = config.alerts or AlertsConfig()
        devices = device_infos(config)
        self.engine.reconfigure(load_rules(settings), devices)
        notifiers = dict(self.dispatcher.notifiers)
        wanted = {c.name: c for c in settings.channels}
        fresh: dict[str, Notifier] = {}
        links_changed = settings.links != self.settings.links  # every channel carries them
        for name in list(notifiers):
            if links_changed or wanted.get(name) != self._channels.get(name):
                del notifiers[name]
        for name, channel in wanted.items():
            if name not in notifiers:
                notifiers[name] = fresh[name] = build_notifier(channel, settings.links)
        self._channels = wanted
        await self.dispatcher.replace_channels(notifiers, settings.routes)
        self._resume_refreshing(fresh)
        self.dispatcher.retry = settings.retry
        restart = [
            f"alerts.{name}"
            for name in _RESTART_ONLY
            if getattr(settings, name) != getattr(self.settings, name)
        ]
        # what a restart applies stays as running; the rest (tick_s, retry...) is live
        self.settings = settings.model_copy(
            update={name: getattr(self.settings, name) for name in _RESTART_ONLY}
        )
        self.flush()
        return restart

    # --- operator actions (local API, CLI) ---------------------------------------

    def incidents(self) -> list[Incident]:
        return self.engine.open_incidents

    def acknowledge(self, incident_id: str, by: str, comment: str = "") -> Incident:
        incident = self.engine.acknowledge(incident_id, by, comment)
        self.flush()
        return incident

    def silence(
        self,
        matchers: dict[str, str],
        duration_s: float,
        by: str,
        comment: str = "",
        starts_at: float | None = None,
    ) -> Silence:
        start = self.clock() if starts_at is None else starts_at
        silence = Silence(uuid.uuid4().hex[:12], matchers, start, start + duration_s, by, comment)
        self.engine.add_silence(silence)
        self.store.save_silence(silence)
        if self.on_silence is not None:
            self.on_silence(silence)
        return silence

    def unsilence(self, silence_id: str) -> Silence:
        silence = self.engine.remove_silence(silence_id)
        self.store.delete_silence(silence_id)
        if self.on_silence is not None:
            self.on_silence(silence_id)
        self.flush()
        return silence

    # --- rooms moving between monitors (dcim.coord) -------------------------------

    def release_rooms(self, rooms: set[tuple[str, str]]) -> list[Incident]:
        """Forget the rooms' incidents here (engine and store) without notifying; returns
        them."""
        forgotten = self.engine.release_rooms(rooms)
        self.store.forget([incident.id for incident in forgotten])
        self.flush()
        return forgotten

    def adopt_rooms(self, rooms: set[tuple[str, str]], incidents: list[Incident]) -> int:
        adopted = self.engine.adopt_rooms(rooms, incidents)
        self.flush()
        return adopted

    def sync_silences(self, silences: list[Silence], known: set[str]) -> None:
        """Take the silences another monitor added; drop those removed there (`known`:
        the ids seen before, so a silence added here and not yet written stays)."""
        now = self.clock()
        wanted = {s.id: s for s in silences if s.ends_at > now}
        for silence_id, silence in wanted.items():
            if silence_id not in self.engine.silences:
                self.engine.add_silence(silence)
                self.store.save_silence(silence)
        for silence_id in [i for i in self.engine.silences if i in known and i not in wanted]:
            self.engine.remove_silence(silence_id)
            self.store.delete_silence(silence_id)
        self.flush()

    def silences(self) -> list[Silence]:
        now = self.clock()
        return [s for s in self.engine.silences.values() if s.ends_at > now]

    def set_condition(
        self,
        rule_id: str,
        key: str,
        level: Level | None,
        labels: Mapping[str, str],
        summary: str,
    ) -> None:
        """Raise (a level) or clear (None) an internal condition such as a silent shard."""
        self.engine.set_condition(rule_id, key, level, labels, summary)
        self.flush()

    # --- internals -------------------------------------------------------------------

    def _channel_health(self, channel: str, error: str | None) -> None:
        level = Level("failing", Severity.CRITICAL) if error is not None else None
        summary = (
            f"notification channel {channel} failing: {error}"
            if error is not None
            else f"notification channel {channel} delivers again"
        )
        labels = {"channel": channel}
        self.engine.set_condition(
            NOTIFY_FAILED_RULE.id, f"channel={channel}", level, labels, summary
        )
        self.flush()

    def _resume_refreshing(self, notifiers: Mapping[str, Notifier]) -> None:
        """Channels that must keep re-sending firing alerts learn them again after a restart."""
        now = self.clock()
        announced = [
            self.engine.notification("firing", inc, now)
            for inc in self.engine.open_incidents
            if inc.notified is not None
        ]
        for name, notifier in notifiers.items():
            resume = getattr(notifier, "resume", None)
            if resume is not None:
                resume([n for n in announced if name in self.dispatcher.route(n)])
