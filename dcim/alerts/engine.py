"""The rule engine: pure and clock-driven. Readings in; transitions and notifications out.

Nothing here does I/O or reads the wall clock: the caller injects `clock` and calls
`observe()` for readings, `tick()` as time passes, and `take()` for what happened.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase

from dcim.alerts.kinds.base import DeviceInfo, Evaluator, Explains, Signal
from dcim.alerts.model import Incident, Level, Notification, Phase, Severity, Transition
from dcim.alerts.rules import Rule, compile_rule
from dcim.alerts.silences import Silence
from dcim.alerts.storms import (
    COORDINATION_LOST_RULE,
    DEGRADED_RULE,
    DEVICE_DOWN_KIND,
    NOTIFY_FAILED_RULE,
    SHARD_SILENT_RULE,
    parent_of,
    site_totals,
    sites_degraded,
)
from dcim.alerts.tracker import Entry, FlapPolicy, RuleInfo, advance, set_raw
from dcim.clock import Clock
from dcim.reading import Reading


@dataclass(frozen=True, slots=True)
class EngineSettings:
    #: No alert fires before this many seconds after start (the first full poll round).
    startup_grace_s: float = 0.0
    #: A firing alert whose series is silent this many poll intervals is marked stale.
    stale_intervals: float = 3.0
    flap: FlapPolicy = field(default_factory=FlapPolicy)
    degraded_min_devices: int = 3
    degraded_min_fraction: float = 0.5
    #: A critical alert unacknowledged this long is escalated (None: never).
    escalate_after_s: float | None = 900.0
    default_interval_s: float = 60.0


@dataclass(slots=True)
class EngineOutput:
    transitions: list[Transition] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    #: Incidents whose stored state changed (the store saves these).
    changed: list[Incident] = field(default_factory=list)


_GLOB = re.compile(r"[*?\[]")
_PLACES = ("device", "rack", "row", "room", "site")


class _Routes:
    """Routes of one metric: indexed by an exact place when the scope names one, so a
    reading meets only the rules of its own rack, row... plus the unpinned ones."""

    def __init__(self) -> None:
        self.pinned: dict[tuple[str, str], list[_Route]] = {}
        self.general: list[_Route] = []

    def add(self, route: _Route) -> None:
        key = route.pinned
        if key is None:
            self.general.append(route)
        else:
            self.pinned.setdefault(key, []).append(route)

    def candidates(self, reading: Reading) -> list[_Route]:
        found = list(self.general)
        if self.pinned:
            tags = reading.tags
            for level in _PLACES:
                value = reading.device_id if level == "device" else tags.get(level)
                if value is not None:
                    found.extend(self.pinned.get((level, value), ()))
        return found


class _Route:
    """An evaluator with its scope test, cached per device when the scope allows it."""

    __slots__ = ("by_device", "evaluator", "everything", "per_device", "scope")

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator
        self.scope = evaluator.rule.scope
        self.everything = self.scope.is_everything  # asked once: it is asked per reading
        self.per_device = not self.scope.uses_row_tags
        self.by_device: dict[str, bool] = {}

    @property
    def pinned(self) -> tuple[str, str] | None:
        """(level, value) when the scope names one exact place: used to index routes."""
        for level in ("device", "rack", "row", "room", "site"):
            patterns = getattr(self.scope, level)
            if patterns is not None and len(patterns) == 1 and not _GLOB.search(patterns[0]):
                return (level, patterns[0])
        return None

    def accepts(self, reading: Reading) -> bool:
        if self.everything:
            return True
        if not self.per_device:
            return self.scope.matches(reading.tags)
        hit = self.by_device.get(reading.device_id)
        if hit is None:
            hit = self.by_device[reading.device_id] = self.scope.matches(reading.tags)
        return hit


def _fact_rules(rules: Mapping[str, RuleInfo]) -> frozenset[str]:
    """Ids of the rules that take part in a `same_as` pair."""
    found: set[str] = set()
    for info in rules.values():
        for fact in info.same_as:
            named = {r for r in rules if any(fnmatchcase(r, p) for p in fact.rules)}
            if named:
                found |= named | {info.id}
    return frozenset(found)


class RuleEngine:
    def __init__(
        self,
        rules: Sequence[Rule],
        *,
        clock: Clock,
        devices: Mapping[str, DeviceInfo] | None = None,
        settings: EngineSettings | None = None,
        incidents: Iterable[Incident] = (),
        silences: Iterable[Silence] = (),
    ) -> None:
        self.clock = clock
        self.settings = settings or EngineSettings()
        self._devices: Mapping[str, DeviceInfo] = devices or {}
        self._started = clock()
        self.grace_end = self._started + self.settings.startup_grace_s
        self.rules: dict[str, RuleInfo] = {}
        #: Rule id -> the rule as configured and its compiled evaluator (kept across reloads).
        self._compiled: dict[str, tuple[Rule, Evaluator]] = {}
        self._by_metric: dict[str, _Routes] = {}
        self._every: list[_Route] = []
        #: (metric, device) -> the routes its readings meet, in one lookup per reading:
        #: those that accepted the device, and those that test every reading (their
        #: scope looks at row tags such as a sensor's position).
        self._plans: dict[tuple[str, str], tuple[tuple[_Route, ...], tuple[_Route, ...]]] = {}
        self._timed: list[Evaluator] = []
        self._fact_rules: frozenset[str] = frozenset()
        self._install(rules)
        #: Parent incident id -> its same-fact children (as last grouped): they hold it open.
        self._same_fact_children: dict[str, set[str]] = {}
        self._entries: dict[tuple[str, str], Entry] = {}
        self._by_id: dict[str, Incident] = {}
        self.silences: dict[str, Silence] = {s.id: s for s in silences}
        self._out = EngineOutput()
        self._touched: dict[str, Incident] = {}
        # Grouping and the pass over every firing incident cost O(incidents); they run
        # only when an incident changed or time passed (tick), not on every flush: with
        # thousands of devices the engine flushes tens of times a second.
        self._regroup = True
        self._site_totals: Counter[str] = Counter()
        self._max_interval = self.settings.default_interval_s
        self._devices_changed()
        #: Rooms (site, room) handed to another monitor: their readings are ignored.
        self._released: set[tuple[str | None, str | None]] = set()
        for incident in incidents:
            self._restore(incident)

    def _install(self, rules: Sequence[Rule]) -> None:
        """Compile `rules` (reusing the evaluator, and so the state, of every unchanged
        rule) and index them by metric."""
        compiled: dict[str, tuple[Rule, Evaluator]] = {}
        for rule in rules:
            previous = self._compiled.get(rule.id)
            same = previous is not None and previous[0] == rule
            compiled[rule.id] = previous if same and previous else (rule, compile_rule(rule))
        self._compiled = compiled
        self.rules = {
            DEGRADED_RULE.id: self.rules.get(DEGRADED_RULE.id, DEGRADED_RULE),
            NOTIFY_FAILED_RULE.id: NOTIFY_FAILED_RULE,
            SHARD_SILENT_RULE.id: SHARD_SILENT_RULE,
            COORDINATION_LOST_RULE.id: COORDINATION_LOST_RULE,
        }
        self._by_metric, self._every, self._timed = {}, [], []
        self._plans = {}
        for rule, evaluator in compiled.values():
            self.rules[rule.id] = RuleInfo.of(rule)
            route = _Route(evaluator)
            if evaluator.metrics is None:
                self._every.append(route)
            else:
                for metric in evaluator.metrics:
                    self._by_metric.setdefault(metric, _Routes()).add(route)
            if evaluator.timed:
                self._timed.append(evaluator)
        #: Rules in a `same_as` pair (declaring it, or named by one).
        self._fact_rules = _fact_rules(self.rules)

    def _devices_changed(self) -> None:
        self._site_totals = site_totals(self._devices)
        self._max_interval = max(
            (d.interval_s for d in self._devices.values()),
            default=self.settings.default_interval_s,
        )
        # devices come back one by one within a poll round: keep the degraded incident
        # (and its children grouped) that long, rather than paging each straggler
        self.rules[DEGRADED_RULE.id] = replace(DEGRADED_RULE, clear_for_s=self._max_interval)

    def reconfigure(self, rules: Sequence[Rule], devices: Mapping[str, DeviceInfo]) -> None:
        """A reloaded config: new rules and devices, without losing what is known.

        Unchanged rules keep their evaluator (windows, baselines, `for` timers) and every
        incident keeps its state. Incidents of a removed rule or a removed device resolve
        (a pending one is cancelled); a changed rule's open incidents carry on under it.
        """
        now = self.clock()
        old = self._devices
        removed = {d for d in old if d not in devices}
        added = {d for d in devices if d not in old}
        changed = {d for d in devices if d in old and old[d] != devices[d]}
        self._install(rules)
        self._devices = dict(devices)
        self._devices_changed()
        for evaluator in (evaluator for _, evaluator in self._compiled.values()):
            evaluator.devices_changed(added=added, forget=removed | changed, now=now)
        for entry in list(self._entries.values()):
            info = self.rules.get(entry.rule.id)
            incident = entry.incident
            device = incident.labels.get("device", "") if incident is not None else ""
            if info is None:
                self._close(entry, "rule removed", now)
            elif device in removed:
                self._close(entry, "device removed from the inventory", now)
            else:
                entry.rule = info
        self._regroup = True

    def _close(self, entry: Entry, why: str, now: float) -> None:
        """End an entry whose rule or device is gone: resolve (or cancel) its incident."""
        self._entries.pop((entry.rule.id, entry.key), None)
        incident = entry.incident
        if incident is None or incident.phase is Phase.RESOLVED:
            return
        incident.summary += f" ({why})"
        if incident.phase is Phase.PENDING:
            self._record("cancelled", incident)
            return
        incident.phase, incident.resolved_at = Phase.RESOLVED, now
        self._record("resolved", incident)

    # --- rooms moving between monitors (dcim.coord) ----------------------------

    def release_rooms(self, rooms: set[tuple[str, str]]) -> list[Incident]:
        """Forget the incidents of rooms another monitor takes over, without a word: no
        resolve, no transition (the new owner carries them on). Until they are adopted
        again, readings of these rooms are ignored. Returns the incidents forgotten."""
        self._released |= rooms
        forgotten: list[Incident] = []
        for entry in list(self._entries.values()):
            incident = entry.incident
            labels = incident.labels if incident is not None else {}
            if (labels.get("site"), labels.get("room")) in rooms:
                self._entries.pop((entry.rule.id, entry.key), None)
                if incident is not None:
                    self._by_id.pop(incident.id, None)
                    self._touched.pop(incident.id, None)
                    forgotten.append(incident)
        self._regroup = True
        return forgotten

    def adopt_rooms(self, rooms: set[tuple[str, str]], incidents: Iterable[Incident]) -> int:
        """Take rooms over with the incidents their previous owner left (they keep what
        was announced, so nothing pages twice and every one can still resolve). An
        incident whose rule and key are already open here stays as it is. Returns the
        number adopted."""
        self._released -= rooms
        adopted = 0
        for incident in incidents:
            if incident.dedup_key in self._entries or incident.id in self._by_id:
                continue
            self._restore(incident)
            if incident.id in self._by_id:
                self._touched[incident.id] = incident  # stored here too, for our restart
                adopted += 1
        self._regroup = True
        return adopted

    # --- the Context evaluators see ------------------------------------------

    def level(self, rule_id: str, key: str) -> str | None:
        entry = self._entries.get((rule_id, key))
        return entry.raw.name if entry is not None and entry.raw is not None else None

    @property
    def devices(self) -> Mapping[str, DeviceInfo]:
        return self._devices

    @property
    def started_at(self) -> float:
        return self._started

    # --- input ---------------------------------------------------------------

    def observe(self, reading: Reading) -> None:
        if reading.metric.startswith("alert."):
            return  # our own transitions come back through the bus: never proof of life
        if (
            self._released
            and (reading.tags.get("site"), reading.tags.get("room")) in self._released
        ):
            return  # a room handed to another member: its last readings are not ours to judge
        now = self.clock()
        plan = self._plans.get((reading.metric, reading.device_id))
        if plan is None:
            plan = self._plan(reading)
        accepted, tested = plan
        for route in accepted:
            for signal in route.evaluator.observe(reading, now, self):
                self._apply(route.evaluator.rule.id, signal, now)
        for route in tested:
            if route.scope.matches(reading.tags):
                for signal in route.evaluator.observe(reading, now, self):
                    self._apply(route.evaluator.rule.id, signal, now)

    def _plan(self, reading: Reading) -> tuple[tuple[_Route, ...], tuple[_Route, ...]]:
        """The routes of a (metric, device): a device's place tags are the same every poll."""
        routes = self._by_metric.get(reading.metric)
        candidates = routes.candidates(reading) if routes is not None else []
        accepted: list[_Route] = []
        tested: list[_Route] = []
        for route in (*candidates, *self._every):
            if route.everything or (route.per_device and route.accepts(reading)):
                accepted.append(route)
            elif not route.per_device:
                tested.append(route)
        plan = (tuple(accepted), tuple(tested))
        self._plans[(reading.metric, reading.device_id)] = plan
        return plan

    def tick(self) -> None:
        """Let time pass: delays elapse, silent devices go stale, escalations come due."""
        now = self.clock()
        self._regroup = True  # silences expire, escalations come due
        for evaluator in self._timed:
            for signal in evaluator.tick(now, self):
                self._apply(evaluator.rule.id, signal, now)
        for entry in list(self._entries.values()):
            self._advance(entry, now)
            incident = entry.incident
            if incident is not None and incident.phase is Phase.FIRING and not incident.stale:
                self._check_stale(entry, incident, now)

    def set_condition(
        self, rule_id: str, key: str, level: Level | None, labels: Mapping[str, str], summary: str
    ) -> None:
        """Raise or clear an internal condition (e.g. a notification channel failing)."""
        self._apply(rule_id, Signal(key, level, labels, None, summary), self.clock())

    def acknowledge(self, incident_id: str, by: str, comment: str = "") -> Incident:
        incident = self._by_id.get(incident_id)
        if incident is None:
            raise KeyError(incident_id)
        incident.ack_by, incident.ack_at, incident.ack_comment = by, self.clock(), comment
        self._record("acknowledged", incident)
        if incident.phase is Phase.FIRING and incident.notified is not None:
            # paging services keep paging until they hear of the ack (PagerDuty, Opsgenie)
            self._send("acknowledged", incident, self.clock())
        return incident

    def add_silence(self, silence: Silence) -> None:
        self.silences[silence.id] = silence
        self._regroup = True

    def remove_silence(self, silence_id: str) -> Silence:
        self._regroup = True
        return self.silences.pop(silence_id)

    # --- output --------------------------------------------------------------

    @property
    def open_incidents(self) -> list[Incident]:
        """Pending and firing incidents, oldest first."""
        return sorted(self._by_id.values(), key=lambda inc: inc.started_at)

    def get(self, incident_id: str) -> Incident | None:
        return self._by_id.get(incident_id)

    def take(self) -> EngineOutput:
        """Group, notify, and hand over everything that happened since the last call."""
        now = self.clock()
        candidates = list(self._touched.values())
        # incidents that fired since the last call, as they were then
        fired = {t.incident.id: t.incident for t in self._out.transitions if t.event == "firing"}
        if self._regroup:
            self._group(now)
            self._regroup = False
            candidates = list(self._touched.values()) + self._firing()
        for incident in candidates:
            if incident.id in fired and incident.phase is Phase.RESOLVED:
                self._fired_and_cleared(fired[incident.id], incident, now)
            else:
                self._notify(incident, now)
        out, self._out = self._out, EngineOutput()
        out.changed = [inc for inc in self._touched.values() if inc.phase is not Phase.PENDING]
        self._touched = {}
        return out

    # --- internals -----------------------------------------------------------

    def _restore(self, incident: Incident) -> None:
        info = self.rules.get(incident.rule)
        if info is None:  # its rule is gone from the config: close it, do not leave it firing
            incident.phase, incident.resolved_at = Phase.RESOLVED, self._started
            incident.summary += " (rule removed)"
            self._record("resolved", incident)
            return
        level = Level(incident.level, incident.severity, 0.0, info.clear_for_s)
        fired = incident.fired_at if incident.fired_at is not None else incident.started_at
        entry = Entry(info, incident.key, level, fired, incident.started_at, incident)
        self._entries[incident.dedup_key] = entry
        self._by_id[incident.id] = incident

    def _apply(self, rule_id: str, signal: Signal, now: float) -> None:
        key = (rule_id, signal.key)
        entry = self._entries.get(key)
        if entry is None:
            if signal.level is None:
                return
            entry = self._entries[key] = Entry(self.rules[rule_id], signal.key)
        set_raw(entry, signal.level, now)
        incident = entry.incident
        if incident is not None:
            incident.last_seen = now
            incident.value = signal.value
            if signal.level is not None:
                incident.summary = signal.summary
            if incident.stale:
                incident.stale = False
                self._record("fresh", incident)
        self._advance(entry, now, signal)

    def _advance(self, entry: Entry, now: float, signal: Signal | None = None) -> None:
        def new_incident(entry: Entry, at: float) -> Incident:
            assert entry.raw is not None
            return Incident(
                id=uuid.uuid4().hex[:12],
                rule=entry.rule.id,
                key=entry.key,
                severity=entry.raw.severity,
                level=entry.raw.name,
                phase=Phase.PENDING,
                labels=dict(signal.labels) if signal else {},
                summary=signal.summary if signal else "",
                started_at=at,
                value=signal.value if signal else None,
                last_seen=at,
                fire_alarm=entry.rule.fire_alarm,
            )

        advance(
            entry,
            now,
            grace_end=self.grace_end,
            flap=self.settings.flap,
            new_incident=new_incident,
            emit=self._record,
            held=self._held(entry.incident),
        )
        incident = entry.incident
        if entry.raw is None and (incident is None or incident.phase is Phase.RESOLVED):
            # done: forget the entry but keep its firing history for flap detection
            if len(entry.firings) == 0:
                self._entries.pop((entry.rule.id, entry.key), None)
            else:
                entry.incident = None

    def _held(self, incident: Incident | None) -> bool:
        """A firing parent stays open while a same-fact child of it still fires."""
        if incident is None or incident.phase is not Phase.FIRING:
            return False
        for child_id in self._same_fact_children.get(incident.id, ()):
            child = self._by_id.get(child_id)
            if child is not None and child.phase is Phase.FIRING and child.parent == incident.id:
                return True
        return False

    def _record(self, event: str, incident: Incident) -> None:
        self._regroup = True
        if event == "pending":
            self._by_id[incident.id] = incident
        elif event in ("cancelled", "resolved"):
            self._by_id.pop(incident.id, None)
        self._touched[incident.id] = incident
        self._out.transitions.append(Transition(event, self.clock(), copy.copy(incident)))

    def _check_stale(self, entry: Entry, incident: Incident, now: float) -> None:
        if entry.rule.kind in (DEVICE_DOWN_KIND, "internal"):
            return  # their own silence is the condition
        device = self._devices.get(incident.labels.get("device", ""))
        interval = device.interval_s if device is not None else self._max_interval
        if now - incident.last_seen > self.settings.stale_intervals * interval:
            # missing data is never a recovery: it stays firing, marked stale
            incident.stale = True
            self._record("stale", incident)

    def _firing(self) -> list[Incident]:
        return [inc for inc in self._by_id.values() if inc.phase is Phase.FIRING]

    def _group(self, now: float) -> None:
        down = [
            inc for inc in self._by_id.values() if self.rules[inc.rule].kind == DEVICE_DOWN_KIND
        ]
        degraded_now = sites_degraded(
            down,
            self._site_totals,
            min_devices=self.settings.degraded_min_devices,
            min_fraction=self.settings.degraded_min_fraction,
        )
        degraded_sites = {
            inc.key.removeprefix("site=")
            for inc in self._by_id.values()
            if inc.rule == DEGRADED_RULE.id
        }
        for site in degraded_sites | set(degraded_now):
            counts = degraded_now.get(site)
            level = Level("degraded", Severity.CRITICAL) if counts else None
            summary = (
                f"Monitoring degraded at {site}: {counts[0]} of {counts[1]} devices unreachable"
                if counts
                else f"Monitoring of {site} recovered"
            )
            self._apply(
                DEGRADED_RULE.id, Signal(f"site={site}", level, {"site": site}, None, summary), now
            )

        firing = self._firing()
        degraded = {
            inc.labels.get("site", ""): inc for inc in firing if inc.rule == DEGRADED_RULE.id
        }
        down_by_device = {
            inc.labels.get("device", ""): inc
            for inc in firing
            if self.rules[inc.rule].kind == DEVICE_DOWN_KIND
        }
        explainers: list[tuple[Incident, Explains]] = [
            (inc, explains) for inc in firing for explains in self.rules[inc.rule].explains
        ]
        facts_by_device: dict[str, list[Incident]] = {}
        for inc in firing:
            if inc.rule in self._fact_rules:
                facts_by_device.setdefault(inc.labels.get("device", ""), []).append(inc)
        for incident in firing:
            incident.children.clear()
        self._same_fact_children.clear()
        for incident in self._by_id.values():
            grouping = parent_of(
                incident,
                self.rules.get(incident.rule),
                degraded=degraded,
                down_by_device=down_by_device,
                explainers=explainers,
                facts_by_device=facts_by_device if incident.rule in self._fact_rules else None,
                rules=self.rules,
            )
            parent = grouping.parent if grouping is not None else None
            parent_id = parent.id if parent is not None else None
            if grouping is not None:
                grouping.parent.children.add(incident.id)
                if grouping.same_fact:
                    self._same_fact_children.setdefault(grouping.parent.id, set()).add(incident.id)
            if parent_id != incident.parent:
                incident.parent = parent_id
                self._record("grouped" if parent_id else "ungrouped", incident)

    def silenced_by(self, incident: Incident, now: float) -> Silence | None:
        if incident.fire_alarm:
            return None  # fire alarms can be acknowledged, never silenced
        for silence in self.silences.values():
            if silence.active(now) and silence.matches(incident):
                return silence
        return None

    def _notify(self, incident: Incident, now: float) -> None:
        if incident.phase is Phase.RESOLVED:
            if incident.notified is not None:
                incident.notified = None
                self._send("resolved", incident, now)
            return
        if incident.phase is not Phase.FIRING:
            return
        if incident.parent is not None or self.silenced_by(incident, now) is not None:
            return
        if incident.notified != incident.severity:
            event = "firing" if incident.notified is None else "updated"
            incident.notified = incident.severity
            self._send(event, incident, now)
        after = self.settings.escalate_after_s
        if (
            after is not None
            and incident.severity is Severity.CRITICAL
            and not incident.acknowledged
            and not incident.escalated
            and incident.fired_at is not None
            and now - incident.fired_at >= after
        ):
            incident.escalated = True
            self._record("escalated", incident)
            self._send("escalated", incident, now)

    def _fired_and_cleared(self, as_fired: Incident, incident: Incident, now: float) -> None:
        """An incident that fired and cleared between two calls (both events in one batch,
        or the monitor busy meanwhile) is paged as it happened, firing then resolved: what
        pages must not depend on how readings were batched."""
        if as_fired.parent is not None or self.silenced_by(as_fired, now) is not None:
            return
        self._out.notifications.append(self.notification("firing", as_fired, now))
        self._send("resolved", incident, now)

    def _send(self, event: str, incident: Incident, now: float) -> None:
        self._touched[incident.id] = incident
        self._out.notifications.append(self.notification(event, incident, now))

    def notification(self, event: str, incident: Incident, now: float) -> Notification:
        """A snapshot of `incident` for the channels."""
        info = self.rules.get(incident.rule)
        return Notification(
            event=event,
            at=now,
            incident_id=incident.id,
            rule=incident.rule,
            rule_name=info.title if info is not None else "",
            key=incident.key,
            severity=incident.severity,
            phase=incident.phase,
            summary=incident.summary,
            labels=dict(incident.labels),
            started_at=incident.started_at,
            fired_at=incident.fired_at,
            resolved_at=incident.resolved_at,
            acknowledged_by=incident.ack_by,
            fire_alarm=incident.fire_alarm,
            flapping=incident.flapping,
            stale=incident.stale,
            children=len(incident.children),
            runbook_url=info.runbook if info is not None else "",
        )
