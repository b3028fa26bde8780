"""The monitor as a service: signals, pid file, ops endpoints, sd_notify, heartbeats, reload.

`Service.run()` is what `dcim run` does:

* SIGTERM/SIGINT stop (flushing every sink), SIGHUP re-reads the config;
* `<state_dir>/dcim.pid` names the process for `dcim reload`;
* the ops listener serves /metrics, /-/healthy, /-/ready;
* systemd hears READY=1 once every sink and poller started, WATCHDOG=1 while every
  part of the pipeline runs (withheld otherwise: systemd restarts the service),
  RELOADING=1 / READY=1 around a reload, STOPPING=1 on the way out;
* Alertmanager channels with `watchdog: true` get the always-firing `DcimWatchdog`
  while the monitor is healthy, and shards watch each other's heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcim.alerts.model import Level, Severity
from dcim.alerts.notify.base import NotifyError
from dcim.alerts.storms import COORDINATION_LOST_RULE, SHARD_SILENT_RULE
from dcim.audit import AuditLog
from dcim.coord.handover import room_of
from dcim.errors import ConfigError
from dcim.inventory import Config
from dcim.ops.metrics import ServiceState, build_registry
from dcim.ops.sdnotify import ServiceNotifier, watchdog_interval_s
from dcim.reading import Reading, now_ns
from dcim.selfmetrics import SELF_DEVICE
from dcim.shard import Shard, assign_rooms, member_config, room_sizes, shard_config

if TYPE_CHECKING:
    from aiohttp import web

    from dcim.alerts.model import Incident
    from dcim.alerts.silences import Silence
    from dcim.collector import MakeCollectors
    from dcim.coord.member import HandoverEvent, Member
    from dcim.coord.view import CoordinationView
    from dcim.ops.heartbeat import ClientFactory, ShardHeartbeat
    from dcim.runner import Monitor

log = logging.getLogger(__name__)

PID_FILE = "dcim.pid"
AUDIT_FILE = "audit.jsonl"
#: Actor of the audit entries the monitor writes about itself (reloads by signal).
SELF_ACTOR = "dcim"
#: How often the supervision loop checks the pipeline when systemd sets no watchdog.
CHECK_INTERVAL_S = 5.0
#: First polls of a room taken over come within this fraction of the poll interval.
TAKEOVER_SPREAD = 0.1

Loader = Callable[[Path], Config]


class Service:
    def __init__(
        self,
        path: Path,
        config: Config,
        *,
        load: Loader,
        collectors: MakeCollectors,
        shard: Shard | None = None,
        mqtt_client: ClientFactory | None = None,
        member: str | None = None,
    ) -> None:
        self.path = path
        self.full_config = config
        self.shard = shard
        #: Coordinated through etcd (`coordination:`, and no static --shard).
        self.coordinated = config.coordination is not None and shard is None
        self.member_name = ""
        if config.coordination is not None:
            from dcim.coord.member import default_member_name

            self.member_name = member or config.coordination.member or default_member_name()
        #: Rooms this monitor polls while coordinated (the member decides).
        self.owned_rooms: set[tuple[str, str]] = set()
        self.member: Member | None = None
        #: Incidents this process's store had at start (etcd has the rooms' incidents).
        self._known_at_start: list[Incident] = []
        self.config = self._part(config)
        self._load = load
        self._collectors = collectors
        self._mqtt_client = mqtt_client
        self.state = ServiceState(shard=f"{shard.index}/{shard.count}" if shard else "")
        self.notifier = ServiceNotifier()
        self.monitor: Monitor | None = None
        self.heartbeat: ShardHeartbeat | None = None
        self.ops_port: int | None = None
        state_dir = self.config.monitor.state_dir
        self.audit = AuditLog(state_dir / AUDIT_FILE)
        self.pid_file = state_dir / PID_FILE
        self._reload_requested = asyncio.Event()
        self._unhealthy_logged = False

    def _part(self, config: Config) -> Config:
        if self.shard is not None:
            return shard_config(config, self.shard)
        if self.coordinated:
            return member_config(config, self.owned_rooms, self.member_name)
        return config

    # --- probes ----------------------------------------------------------------------

    def ready(self) -> bool:
        return self.monitor is not None and self.monitor.ready.is_set()

    def dead_parts(self) -> list[str]:
        if self.monitor is None:
            return ["monitor (not started)"]
        return self.monitor.dead_parts()

    def healthy(self) -> bool:
        return self.ready() and not self.dead_parts()

    def _status(self) -> str:
        monitor = self.monitor
        devices = len(monitor.pollers) if monitor is not None else 0
        shard = f"shard {self.state.shard}: " if self.state.shard else ""
        if self.coordinated:
            shard = f"member {self.member_name}: "
        return f"{shard}polling {devices} device(s)"

    # --- running ---------------------------------------------------------------------

    async def run(self, duration_s: float | None = None) -> int:
        from dcim.runner import Monitor

        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload_requested.set)
        if duration_s is not None:
            loop.call_later(duration_s, stop.set)
        self._write_pid()
        ops_runner: web.AppRunner | None = None
        helpers: list[asyncio.Task[None]] = []
        try:
            self.monitor = monitor = Monitor(self.config, collectors=self._collectors(self.config))
            if self.coordinated:
                self.member = self._build_member(monitor)
            ops_runner = await self._start_ops()
            monitor_task = asyncio.create_task(monitor.run(stop), name="monitor")
            await _first(monitor.ready.wait(), monitor_task)
            if monitor_task.done():
                await monitor_task  # it failed while starting: raise that
            self.state.ready = True
            self.notifier.ready(self._status())
            log.info("ready: %s", self._status())
            helpers = [
                asyncio.create_task(self._supervise(), name="supervise"),
                asyncio.create_task(self._alertmanager_watchdog(), name="am watchdog"),
                asyncio.create_task(self._reloads(), name="reloads"),
            ]
            self.heartbeat = self._build_heartbeat()
            if self.heartbeat is not None:
                helpers.append(asyncio.create_task(self.heartbeat.run(), name="heartbeat"))
            if self.member is not None:
                helpers.append(asyncio.create_task(self.member.run(), name="coordination"))
            await _first(stop.wait(), monitor_task)
            self.state.ready = False
            self.notifier.stopping()
            if self.heartbeat is not None:
                await self.heartbeat.stop()
            await _cancel(helpers)
            await monitor_task
            if self.member is not None:  # pollers stopped: now the others may take our rooms
                await self.member.stop()
                self.member = None
        finally:
            if self.member is not None:
                await self.member.client.aclose()
            self.state.ready = False
            await _cancel(helpers)
            if ops_runner is not None:
                await ops_runner.cleanup()
            self._remove_pid()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
        return 0

    async def _start_ops(self) -> web.AppRunner | None:
        settings = self.config.monitor.ops
        if settings is None:
            return None
        from dcim.ops.http import OpsProbes, start_listener

        registry = build_registry(lambda: self.monitor, self.state)
        probes = OpsProbes(registry, self.ready, self.dead_parts)
        try:
            runner, self.ops_port = await start_listener(probes, settings.host, settings.port)
        except OSError as exc:
            # the data center matters more than our own metrics: monitor on without them
            log.error(
                "metrics/health listener cannot listen on %s:%d: %s; monitoring goes on "
                "without /metrics",
                settings.host,
                settings.port,
                exc.strerror or exc,
            )
            return None
        return runner

    async def _supervise(self) -> None:
        """WATCHDOG=1 while every part runs; withheld (and said why) when one stopped."""
        interval = watchdog_interval_s() or CHECK_INTERVAL_S
        while True:
            dead = self.dead_parts()
            if not dead:
                self.notifier.watchdog()
                if self._unhealthy_logged:
                    log.warning("every part of the monitor runs again")
                self._unhealthy_logged = False
            elif not self._unhealthy_logged:
                self._unhealthy_logged = True
                log.error(
                    "stopped: %s; the service manager's watchdog is no longer fed", ", ".join(dead)
                )
                self.notifier.status("unhealthy: stopped: " + ", ".join(dead))
            await asyncio.sleep(interval)

    async def _alertmanager_watchdog(self) -> None:
        """The always-firing `DcimWatchdog` to every Alertmanager channel that wants it."""
        from dcim.alerts.notify.alertmanager import AlertmanagerNotifier

        labels = {"instance": socket.gethostname()}
        if self.state.shard:
            labels["shard"] = self.state.shard
        while True:
            monitor = self.monitor
            channels = (
                [
                    n
                    for n in monitor.alerts.dispatcher.notifiers.values()
                    if isinstance(n, AlertmanagerNotifier) and n.watchdog
                ]
                if monitor is not None and monitor.alerts is not None
                else []
            )
            if channels and self.healthy():
                for channel in channels:
                    try:
                        await channel.send_watchdog(labels)
                    except NotifyError as exc:
                        log.warning("watchdog alert not delivered: %s", exc)
            await asyncio.sleep(min((c.refresh_s for c in channels), default=CHECK_INTERVAL_S))

    # --- shards watching each other --------------------------------------------------

    def _build_heartbeat(self) -> ShardHeartbeat | None:
        shard, settings = self.shard, self.config.monitor.heartbeat
        if shard is None or shard.count < 2 or not settings.enabled:
            return None
        broker = self.config.mqtt
        if broker is None or self._mqtt_client is None:
            log.warning(
                "shard %d/%d: no mqtt broker configured, so shards cannot watch each other's "
                "heartbeat; add an mqtt section (or rely on the Alertmanager watchdog)",
                shard.index,
                shard.count,
            )
            return None
        from dcim.ops.heartbeat import ShardHeartbeat

        heartbeat = ShardHeartbeat(
            shard=shard,
            settings=settings,
            broker=broker,
            connect=self._mqtt_client,
            healthy=self.healthy,
            on_peer=self._peer_changed,
        )
        self.state.peers = heartbeat.view
        return heartbeat

    def _peer_changed(self, peer: Shard, why: str | None) -> None:
        assignment = assign_rooms(self.full_config, peer.count)
        rooms = sorted(f"{s}/{r}" for (s, r), i in assignment.items() if i == peer.index)
        sites = {room.split("/", 1)[0] for room in rooms}
        name = f"{peer.index}/{peer.count}"
        labels = {"shard": name, **({"site": next(iter(sites))} if len(sites) == 1 else {})}
        if why is not None:
            summary = f"Monitor shard {name} silent ({why}): rooms not monitored: " + (
                ", ".join(rooms) or "none"
            )
            log.error("%s", summary)
            level: Level | None = Level("silent", Severity.CRITICAL)
        else:
            summary = f"Monitor shard {name} heard again"
            log.warning("%s", summary)
            level = None
        monitor = self.monitor
        if monitor is not None and monitor.alerts is not None:
            monitor.alerts.set_condition(
                SHARD_SILENT_RULE.id, f"shard={name}", level, labels, summary
            )

    # --- rooms shared with other monitors through etcd ----------------------------------

    def _build_member(self, monitor: Monitor) -> Member:
        from dcim.coord.member import Member

        settings = self.full_config.coordination
        assert settings is not None
        member = Member(
            settings,
            self.member_name,
            room_sizes(self.full_config),
            self,
            self.config.monitor.state_dir,
        )
        alerts = monitor.alerts
        if alerts is not None:
            # what this process's store restored belongs to etcd now: the owner of each
            # room carries its incidents; we take ours back when a room is ours again
            self._known_at_start = alerts.release_rooms(set(room_sizes(self.full_config)))
            alerts.on_changed = lambda incidents: member.states.changed(
                incidents, self.owned_rooms.__contains__
            )
            alerts.dispatcher.before_send = lambda n: member.states.settled(n.incident_id)
            alerts.on_silence = self._silence_changed
        monitor.self_metric_sources.append(self._coordination_readings)
        if monitor.board is not None:
            monitor.board.coordination = self.coordination_view
        self.state.coordination = self.coordination_view
        return member

    def _silence_changed(self, item: Silence | str) -> None:
        if self.member is None:
            return
        if isinstance(item, str):
            self.member.silence_removed(item)
        else:
            self.member.silence_saved(item)

    async def take_rooms(
        self, rooms: set[tuple[str, str]], incidents: list[Incident] | None
    ) -> None:
        monitor = self.monitor
        assert monitor is not None
        if incidents is None:  # etcd unreachable since start: what our own store had
            incidents = [i for i in self._known_at_start if room_of(i) in rooms]
        if monitor.alerts is not None:
            monitor.alerts.adopt_rooms(rooms, incidents)
        self.owned_rooms |= rooms
        # the room went unpolled while it changed hands: its first polls come soon
        await monitor.apply(self._part(self.full_config), spread=TAKEOVER_SPREAD)
        self.config = monitor.config

    async def release_rooms(self, rooms: set[tuple[str, str]]) -> None:
        monitor = self.monitor
        assert monitor is not None
        if monitor.alerts is not None:
            monitor.alerts.release_rooms(rooms)
        self.owned_rooms -= rooms
        await monitor.apply(self._part(self.full_config))
        self.config = monitor.config

    def coordination_changed(self, lost: bool, why: str, page: bool) -> None:
        monitor = self.monitor
        if not page or monitor is None or monitor.alerts is None:
            return
        level = Level("lost", Severity.CRITICAL) if lost else None
        summary = (
            f"Monitor coordination lost: {why}" if lost else f"Monitor coordination back: {why}"
        )
        labels = {"member": self.member_name}
        monitor.alerts.set_condition(
            COORDINATION_LOST_RULE.id, "coordination", level, labels, summary
        )

    def handed_over(self, event: HandoverEvent) -> None:
        room = "/".join(event.room)
        # a member's first rooms are no news; a room changing hands is
        level = logging.INFO if event.reason in ("assigned", "last assignment") else logging.WARNING
        if event.direction == "in":
            log.log(
                level,
                "handover: room %s taken over%s (%s); %d open incident(s) carried on",
                room,
                f" from {event.peer}" if event.peer else "",
                event.reason,
                event.incidents,
            )
        else:
            log.warning(
                "handover: room %s handed%s (%s)",
                room,
                f" to {event.peer}" if event.peer else "",
                event.reason,
            )
        monitor = self.monitor
        if monitor is not None:
            monitor.bus.publish(self._coordination_readings(now_ns()))

    def silences_from_etcd(self, silences: list[Silence], known: set[str]) -> None:
        monitor = self.monitor
        if monitor is not None and monitor.alerts is not None:
            monitor.alerts.sync_silences(silences, known)

    def coordination_view(self) -> CoordinationView | None:
        from dcim.coord.view import CoordinationView, HandoverView

        member = self.member
        if member is None:
            return None
        return CoordinationView(
            member=member.name,
            members=list(member.members),
            rooms=sorted("/".join(r) for r in self.owned_rooms),
            connected=member.connected,
            lost=member.lost,
            lost_since=(
                time.time() - (member.clock() - member.unreachable_since)
                if member.lost and member.unreachable_since is not None
                else None
            ),
            error=member.last_error,
            handovers=dict(member.handovers),
            recent=[
                HandoverView(e.at, "/".join(e.room), e.direction, e.peer, e.reason, e.incidents)
                for e in member.events
            ],
        )

    def _coordination_readings(self, ts: int) -> list[Reading]:
        view = self.coordination_view()
        if view is None:
            return []
        tags = {"instance": socket.gethostname(), "member": view.member}
        out = [
            Reading(SELF_DEVICE, "dcim.coordination_up", int(view.connected), None, ts, tags),
            Reading(SELF_DEVICE, "dcim.rooms_owned", len(view.rooms), None, ts, tags),
            Reading(SELF_DEVICE, "dcim.members", len(view.members), None, ts, tags),
        ]
        for direction in ("in", "out"):
            count = sum(n for (d, _), n in view.handovers.items() if d == direction)
            out.append(
                Reading(
                    SELF_DEVICE, "dcim.handovers", count, None, ts, {**tags, "direction": direction}
                )
            )
        return out

    # --- reload ------------------------------------------------------------------------

    async def _reloads(self) -> None:
        while True:
            await self._reload_requested.wait()
            self._reload_requested.clear()
            await self.reload("SIGHUP")

    async def reload(self, source: str) -> bool:
        """Re-read the config; apply it, or refuse it (the running one stays) with its errors."""
        monitor = self.monitor
        assert monitor is not None
        self.notifier.reloading()
        try:
            try:
                full = await asyncio.to_thread(self._load, self.path)
            except ConfigError as exc:
                self._refused(source, exc.problems)
                return False
            change = await monitor.apply(self._part(full))
        except Exception as exc:  # nothing in a reload may take the monitor down
            log.exception("reload of %s failed", self.path)
            self._refused(source, [f"{exc.__class__.__name__}: {exc}"])
            return False
        finally:
            self.notifier.ready(self._status())
        self.full_config, self.config = full, monitor.config
        if self.member is not None:
            self.member.rooms = room_sizes(full)
        self.state.reloads["applied"] += 1
        self.state.last_reload_ok, self.state.last_reload_ok_at = True, time.time()
        log.info("config reloaded from %s (%s): %s", self.path, source, change.describe())
        if change.needs_restart:
            log.warning(
                "reload: changes to %s take effect at the next restart",
                ", ".join(change.needs_restart),
            )
        self.audit.record(
            actor=SELF_ACTOR,
            source=source,
            action="reload",
            target=str(self.path),
            result="applied",
            detail=asdict(change),
        )
        return True

    def _refused(self, source: str, problems: list[str]) -> None:
        self.state.reloads["refused"] += 1
        self.state.last_reload_ok = False
        log.error(
            "reload refused: %s has %d problem(s); the running config stays",
            self.path,
            len(problems),
        )
        for problem in problems:
            log.error("  %s", problem)
        self.audit.record(
            actor=SELF_ACTOR,
            source=source,
            action="reload",
            target=str(self.path),
            result="refused",
            detail={"problems": problems},
        )

    # --- pid file ----------------------------------------------------------------------

    def _write_pid(self) -> None:
        try:
            self.pid_file.parent.mkdir(parents=True, exist_ok=True)
            self.pid_file.write_text(f"{os.getpid()}\n")
        except OSError as exc:
            log.warning("cannot write %s (dcim reload will not find us): %s", self.pid_file, exc)

    def _remove_pid(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            if int(self.pid_file.read_text()) == os.getpid():
                self.pid_file.unlink()


async def _first(*waits: Awaitable[Any]) -> None:
    """Wait until the first of these awaitables (coroutines or tasks) is done."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task, given in zip(tasks, waits, strict=True):
            if task is not given:
                task.cancel()


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
