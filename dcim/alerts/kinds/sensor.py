"""Sensor health: a probe that is stuck, drifts away from its peers, or drops out.

These say the *measurement* is wrong, not the room: a warning to fix a probe, so that
on-call can tell a lying probe from a real thermal event.

* `stuck`: a series that normally varies reads exactly the same value far longer than
  it ever did while healthy. Series whose smallest change is coarse (whole degrees)
  are never judged: such a probe legitimately sits on one value for hours.
* `deviation`: a probe moved away from its own long-run baseline while none of its
  peers (same room, row...) moved with it: drift. A row or room warming together (a
  CRAC failure) moves every probe alike, so it raises nothing here.
* `dropout`: a device kept reporting but a series it used to report (a probe's
  temperature) is gone: the probe is unplugged, or reads an invalid value (-1) that
  the collector drops.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field

from dcim.alerts.kinds.aggregate import GroupLevel, placed_labels
from dcim.alerts.kinds.base import Context, Evaluator, SeverityRule, Signal, number
from dcim.alerts.scope import group_key, labels_of, series_key
from dcim.reading import Reading

_UNITS = {"degC": "°C", "degF": "°F"}


def show(value: float, unit: str | None) -> str:
    """`23.4 °C`: a probe's value as a person reads it."""
    text = f"{value:.4g}"
    shown = _UNITS.get(unit or "", unit)
    return f"{text} {shown}" if shown else text


def span(seconds: float) -> str:
    """`15 min`, `2.5 h`, `40 s`."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def probe_name(labels: dict[str, str]) -> str:
    """`env-hall-1-A01 inlet`: the device and which of its probes."""
    which = labels.get("position") or labels.get("label") or labels.get("index")
    device = labels.get("device", "?")
    return f"{device} {which}" if which else device


# --- stuck -------------------------------------------------------------------------------


class StuckRule(SeverityRule):
    """Fires when `metric` of one series has read exactly the same value for at least
    `min_flat_s` AND `factor` times the longest flat run it had while healthy.

    A series is judged only once it changed `min_changes` times within `history_s`
    and its smallest change is at most `max_step` (finer than the probe's rounding)."""

    kind: Literal["stuck"]
    metric: str
    min_flat_s: float = Field(gt=0)
    factor: float = Field(default=3.0, ge=1)
    history_s: float = Field(default=21600.0, gt=0)
    min_changes: int = Field(default=10, ge=1)
    max_step: float = Field(gt=0)


@dataclass(slots=True)
class _Run:
    value: float
    since: float
    last: float
    #: (when a flat run ended, how long it was) for the healthy runs within history_s
    runs: deque[tuple[float, float]] = field(default_factory=deque)
    min_step: float = math.inf
    judged_stuck: bool = False


class StuckEvaluator(Evaluator):
    def __init__(self, rule: StuckRule) -> None:
        super().__init__(rule)
        self.spec = rule
        self.metrics = frozenset({rule.metric})
        self._series: dict[str, _Run] = {}

    def observe(self, reading: Reading, now: float, ctx: Context) -> list[Signal]:
        value = number(reading.value)
        if value is None:
            return []
        rule = self.spec
        key = series_key(reading)
        ts = reading.ts_ns / 1e9
        run = self._series.get(key)
        if run is None:
            self._series[key] = _Run(value, ts, ts)
            return []
        if ts - run.last > rule.min_flat_s / 2:
            # a gap in the data proves nothing about flatness: start over, learn on
            run.value, run.since, run.last, run.judged_stuck = value, ts, ts, False
            return self._clear(key, reading, ctx)
        run.last = ts
        if value != run.value:
            if not run.judged_stuck:
                run.runs.append((ts, ts - run.since))
            run.min_step = min(run.min_step, abs(value - run.value))
            run.value, run.since, run.judged_stuck = value, ts, False
            while run.runs and run.runs[0][0] < ts - rule.history_s:
                run.runs.popleft()
            return self._clear(key, reading, ctx)
        flat_s = ts - run.since
        if len(run.runs) < rule.min_changes or run.min_step > rule.max_step:
            return []  # not known to vary (yet), or too coarse to tell
        longest = max(length for _, length in run.runs)
        if flat_s < max(rule.min_flat_s, rule.factor * longest):
            return []
        run.judged_stuck = True
        labels = labels_of(reading)
        summary = (
            f"{rule.title}: {probe_name(labels)} {reading.metric} stuck at "
            f"{show(value, reading.unit)} for {span(flat_s)} (it changed {len(run.runs)} "
            f"times in the {span(rule.history_s)} before, never flat for more than "
            f"{span(longest)})"
        )
        return [Signal(key, rule.level(), labels, value, summary)]

    def _clear(self, key: str, reading: Reading, ctx: Context) -> list[Signal]:
        if ctx.level(self.spec.id, key) is None:
            return []
        summary = (
            f"{self.spec.title}: {probe_name(labels_of(reading))} {reading.metric} moves again"
        )
        return [Signal(key, None, labels_of(reading), reading.value, summary)]


# --- deviation ---------------------------------------------------------------------------


class DeviationRule(SeverityRule):
    """Fires when a series moved more than `threshold` away from its own baseline
    relative to EVERY peer of its group: none of them moved with it.

    Baselines are exponential averages with time constant `baseline_s`, frozen while
    the series' own alert is asserted; series are compared once they have `learn_s`
    of history, and only with peers heard within `max_age_s`."""

    kind: Literal["deviation"]
    metric: str
    group_by: list[GroupLevel] = Field(
        default_factory=lambda: list[GroupLevel](["site", "room"]), min_length=1
    )
    threshold: float = Field(gt=0)
    hysteresis: float = Field(default=0.0, ge=0)
    baseline_s: float = Field(default=21600.0, gt=0)
    learn_s: float = Field(default=3600.0, ge=0)
    min_peers: int = Field(default=2, ge=2)
    max_age_s: float = Field(default=300.0, gt=0)


@dataclass(slots=True)
class _Member:
    value: float
    baseline: float
    first: float
    last: float

    @property
    def moved(self) -> float:
        return self.value - self.baseline


class DeviationEvaluator(Evaluator):
    def __init__(self, rule: DeviationRule) -> None:
        super().__init__(rule)
        self.spec = rule
        self.metrics = frozenset({rule.metric})
        self._groups: dict[str, dict[str, _Member]] = {}

    def observe(self, reading: Reading, now: float, ctx: Context) -> list[Signal]:
        value = number(reading.value)
        labels = placed_labels(reading, self.spec.group_by)
        group = group_key(labels, list(self.spec.group_by))
        if value is None or group is None:
            return []
        rule = self.spec
        key = series_key(reading)
        ts = reading.ts_ns / 1e9
        members = self._groups.setdefault(group, {})
        member = members.get(key)
        active = ctx.level(rule.id, key) is not None
        if member is None:
            member = members[key] = _Member(value, value, ts, ts)
        else:
            if not active:  # a drifting probe must not teach its baseline the drift
                alpha = 1.0 - math.exp(-max(ts - member.last, 0.0) / rule.baseline_s)
                member.baseline += alpha * (value - member.baseline)
            member.value, member.last = value, ts
        if ts - member.first < rule.learn_s:
            return []
        peers = [
            other
            for name, other in members.items()
            if name != key
            and ts - other.last <= rule.max_age_s
            and ts - other.first >= rule.learn_s
        ]
        if len(peers) < rule.min_peers:
            return []  # too few to tell which probe is the odd one out: no verdict
        moved = member.moved
        apart = min(abs(moved - peer.moved) for peer in peers)
        limit = rule.threshold - rule.hysteresis if active else rule.threshold
        labels = labels_of(reading)
        shown_moved = show(moved, reading.unit)
        median = statistics.median(peer.moved for peer in peers)
        text = (
            f"{probe_name(labels)} {reading.metric} moved {'+' if moved >= 0 else ''}"
            f"{shown_moved} from its baseline, its {len(peers)} peers in {group} "
            f"{'+' if median >= 0 else ''}{show(median, reading.unit)} (median)"
        )
        if apart > limit:
            summary = f"{rule.title}: {text}; no peer moved with it (sensor drift?)"
            return [Signal(key, rule.level(), labels, value, summary)]
        return [Signal(key, None, labels, value, f"{rule.title}: {text}")]


# --- dropout -----------------------------------------------------------------------------


class DropoutRule(SeverityRule):
    """Fires when a device sent `reports` reports (polls that succeeded, messages)
    without a series of `metrics` it used to send, one incident per series (probe)."""

    kind: Literal["dropout"]
    metrics: list[str] = Field(min_length=1)
    reports: int = Field(default=3, ge=1)


@dataclass(slots=True)
class _Device:
    #: Timestamp of the report being received, and whether it is a failed poll.
    ts: int = -1
    failed: bool = False
    #: Reports that completed (and did not fail), numbered from 1.
    done: int = 0
    #: series key -> metric -> (report number it was last seen in, last value, unit)
    seen: dict[str, dict[str, tuple[int, float | None, str | None]]] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)


class DropoutEvaluator(Evaluator):
    metrics = None  # any reading of a device is a report of it

    def __init__(self, rule: DropoutRule) -> None:
        super().__init__(rule)
        self.spec = rule
        self._watched = frozenset(rule.metrics)
        self._devices: dict[str, _Device] = {}

    def observe(self, reading: Reading, now: float, ctx: Context) -> list[Signal]:
        metric = reading.metric
        if metric.startswith("event."):
            return []  # traps come on their own time: not a report of the device's values
        device = self._devices.get(reading.device_id)
        if device is None:
            if metric not in self._watched:
                return []
            device = self._devices[reading.device_id] = _Device()
        signals: list[Signal] = []
        if reading.ts_ns > device.ts:
            if device.ts >= 0 and not device.failed:
                device.done += 1
                signals = self._judge(device, ctx)
            device.ts, device.failed = reading.ts_ns, False
        elif reading.ts_ns < device.ts:
            return []  # late reading of an earlier report
        if metric == "device.up" and not reading.value:
            device.failed = True  # a failed poll: device.down's business, not a dropout
        if metric in self._watched:
            key = series_key(reading)
            value = number(reading.value)
            device.seen.setdefault(key, {})[metric] = (device.done + 1, value, reading.unit)
            device.labels[key] = labels_of(reading)
            if ctx.level(self.spec.id, key) is not None and not self._missing(device, key):
                summary = f"{self.spec.title}: {probe_name(device.labels[key])} reports again"
                signals.append(Signal(key, None, device.labels[key], value, summary))
        return signals

    def _missing(self, device: _Device, key: str) -> list[str]:
        """Metrics of the series not seen in the last `reports` completed reports."""
        limit = device.done + 1 - self.spec.reports
        return sorted(m for m, (seen, _, _) in device.seen[key].items() if seen < limit)

    def _judge(self, device: _Device, ctx: Context) -> list[Signal]:
        signals = []
        for key, metrics in device.seen.items():
            missing = self._missing(device, key)
            if not missing:
                continue
            labels = device.labels[key]
            last = [
                show(value, unit)
                for m in missing
                if (value := metrics[m][1]) is not None and (unit := metrics[m][2]) is not None
            ]
            summary = (
                f"{self.spec.title}: {probe_name(labels)} sent no {', '.join(missing)} "
                f"in its last {device.done - min(metrics[m][0] for m in missing)} reports "
                f"while the device answers" + (f" (last {', '.join(last)})" if last else "")
            )
            signals.append(Signal(key, self.spec.level(), labels, None, summary))
        return signals
