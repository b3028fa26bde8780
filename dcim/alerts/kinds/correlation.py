"""Correlations across devices: fire risk, lost 2N redundancy, UPS runtime vs generator start."""

from __future__ import annotations

from collections import deque
from typing import Literal

from pydantic import Field, model_validator

from dcim.alerts.kinds.aggregate import GroupLevel, _Latest, placed_labels
from dcim.alerts.kinds.base import (
    Bands,
    Context,
    Evaluator,
    Levels,
    RuleBase,
    Signal,
    fmt,
    number,
)
from dcim.alerts.kinds.state import state_text
from dcim.alerts.model import Level, Severity
from dcim.alerts.scope import group_key, labels_of, row_suffix, series_key
from dcim.reading import Reading


class FireRiskRule(RuleBase):
    """Per room: smoke at Action or above, or smoke at Alert plus a fast temperature rise [F1]."""

    kind: Literal["fire_risk"]
    smoke_metric: str = "sensor.smoke_level"
    action_levels: list[str] = Field(default_factory=lambda: ["action", "fire1", "fire2"])
    alert_levels: list[str] = Field(default_factory=lambda: ["alert"])
    temp_metric: str = "sensor.temp_c"
    rise_c: float = Field(default=5.0, gt=0)
    window_s: float = Field(default=900.0, gt=0)
    group_by: list[GroupLevel] = Field(default_factory=lambda: list[GroupLevel](["site", "room"]))
    fire_alarm: bool = True

    @model_validator(mode="after")
    def _always_a_fire_alarm(self) -> FireRiskRule:
        if not self.fire_alarm:
            msg = "a fire_risk rule is a fire alarm: it cannot be made silenceable"
            raise ValueError(msg)
        return self


class FireRiskEvaluator(Evaluator):
    def __init__(self, rule: FireRiskRule) -> None:
        super().__init__(rule)
        self.spec = rule
        self.metrics = frozenset({rule.smoke_metric, rule.temp_metric})
        self._smoke: dict[str, dict[str, str]] = {}
        self._temps: dict[str, dict[str, deque[tuple[float, float]]]] = {}

    def _max_rise(self, group: str, now_ts: float) -> float:
        best = 0.0
        for window in self._temps.get(group, {}).values():
            while window and window[0][0] < now_ts - self.spec.window_s:
                window.popleft()
            if window:
                values = [v for _, v in window]
                best = max(best, values[-1] - min(values))
        return best

    def observe(self, reading: Reading, now: float, ctx: Context) -> list[Signal]:
        rule = self.spec
        labels = placed_labels(reading, rule.group_by)
        group = group_key(labels, list(rule.group_by))
        if group is None:
            return []
        ts = reading.ts_ns / 1e9
        if reading.metric == rule.smoke_metric:
            self._smoke.setdefault(group, {})[series_key(reading)] = state_text(reading.value)
        else:
            value = number(reading.value)
            if value is None:
                return []
            window = self._temps.setdefault(group, {}).setdefault(series_key(reading), deque())
            window.append((ts, value))
            while window[0][0] < ts - rule.window_s:  # keep each series to its window
                window.popleft()
        stages = set(self._smoke.get(group, {}).values())
        where: dict[str, str] = {lv: labels[lv] for lv in rule.group_by if lv in labels}
        worst = next((s for s in reversed(rule.action_levels) if s in stages), None)
        if worst is not None:
            level = Level("smoke_" + worst, Severity.CRITICAL, rule.for_s, rule.clear_for_s)
            text = f"{rule.title}: smoke at {worst} in {group}"
            return [Signal(group, level, where, worst, text)]
        # the room's temperature rise only matters with smoke at Alert: computed then only
        if stages & set(rule.alert_levels) and (rise := self._max_rise(group, ts)) >= rule.rise_c:
            level = Level("smoke_and_heat", Severity.CRITICAL, rule.for_s, rule.clear_for_s)
            text = f"{rule.title}: smoke alert and temperature up {rise:.1f} °C in {group}"
            return [Signal(group, level, where, rise, text)]
        if reading.metric != rule.smoke_metric and ctx.level(rule.id, group) is None:
            return []  # temperatures alone never open or change anything
        return [Signal(group, None, where, None, f"{rule.title}: no smoke alarm in {group}")]


class RedundancyRule(RuleBase):
    """2N feeds: the summed load of a group's feeds (e.g. the A and B PDU of a rack, per
    phase) as a percentage of ONE feed's capacity (the weakest member's) [E2]."""

    kind: Literal["redundancy"]
    metric: str = "pdu.phase_current_a"
    capacity_metric: str | None = "pdu.rated_current_a"
    capacity: float | None = Field(default=None, gt=0)
    group_by: list[GroupLevel] = Field(
        default_factory=lambda: list[GroupLevel](["site", "room", "row", "rack"])
    )
    levels: Levels
    hysteresis: float = Field(default=0.0, ge=0)
    max_age_s: float = Field(default=300.0, gt=0)
    min_feeds: int = Field(default=2, ge=2)


class RedundancyEvaluator(Evaluator):
    def __init__(self, rule: RedundancyRule) -> None:
        super().__init__(rule)
        self.spec = rule
        names = {rule.metric} | ({rule.capacity_metric} if rule.capacity_metric else set())
        self.metrics = frozenset(names)
        self.bands = Bands(rule.levels, rule, rule.hysteresis)
        self._loads = _Latest(rule.max_age_s)
        self._capacity: dict[str, float] = {}

    def observe(self, reading: Reading, now: float, ctx: Context) -> list[Signal]:
        rule = self.spec
        value = number(reading.value)
        if value is None:
            return []
        if reading.metric == rule.capacity_metric:
            self._capacity[reading.device_id] = value
            return []
        labels = placed_labels(reading, rule.group_by)
        group = group_key(labels, list(rule.group_by))
        if group is None:
            return []
        key = "/".join(p for p in (group, row_suffix(labels)) if p)
        self._loads.put(key, reading.device_id, value, now)
        feeds = self._loads.fresh(key, now)
        if len(feeds) < rule.min_feeds:
            return []
        capacities = [rule.capacity] if rule.capacity else []
        capacities += [self._capacity[d] for d in feeds if d in self._capacity]
        if not capacities or min(capacities) <= 0:
            return []
        percent = 100.0 * sum(feeds.values()) / min(capacities)
        band = self.bands.evaluate(percent, ctx.level(rule.id, key))
        text = (
            f"{rule.title}: feeds {', '.join(sorted(feeds))} carry {fmt(sum(feeds.values()))} "
            f"together = {percent:.0f} % of one feed on {key}"
        )
        where: dict[str, str] = {lv: labels[lv] for lv in rule.group_by if lv in labels}
        return [Signal(key, band.level if band else None, where, percent, text)]


class UpsRuntimeRule(RuleBase):
    """Battery runtime shorter than the generator needs to start and take the load.

    Critical while on battery (the load will drop before the generator is on), warning
    otherwise (a utility failure now would drop it)."""

    kind: Literal["ups_runtime"]
    runtime_metric: str = "ups.battery_runtime_s"
    source_metric: str = "ups.output_source"
    on_battery: list[str] = Field(default_factory=lambda: ["battery"])
    generator_start_s: float = Field(gt=0)
    #: Per-site generator start times (site id -> seconds), overriding the default.
    generator_start_s_by_site: dict[str, float] = Field(default_factory=dict)
    margin_s: float = Field(default=0.0, ge=0)


class UpsRuntimeEvaluator(Evaluator):
    def __init__(self, rule: UpsRuntimeRule) -> None:
        super().__init__(rule)
        self.spec = rule
        self.metrics = frozenset({rule.runtime_metric, rule.source_metric})
        self._source: dict[str, str] = {}
        self._runtime: dict[str, float] = {}

    def observe(self, reading: Reading, now: float, ctx: Context) -> list[Signal]:
        rule = self.spec
        device = reading.device_id
        if reading.metric == rule.source_metric:
            self._source[device] = state_text(reading.value)
        else:
            value = number(reading.value)
            if value is None:
                return []
            self._runtime[device] = value
        runtime = self._runtime.get(device)
        if runtime is None:
            return []
        site = reading.tags.get("site", "")
        needed = rule.generator_start_s_by_site.get(site, rule.generator_start_s) + rule.margin_s
        key = f"device={device}"
        on_battery = self._source.get(device) in rule.on_battery
        text = f"{rule.title}: {device} runtime {runtime:.0f} s, generator needs {needed:.0f} s"
        if runtime >= needed:
            return [Signal(key, None, labels_of(reading), runtime, text)]
        severity = Severity.CRITICAL if on_battery else Severity.WARNING
        name = "short_on_battery" if on_battery else "short"
        level = Level(name, severity, rule.for_s, rule.clear_for_s)
        return [Signal(key, level, labels_of(reading), runtime, text)]
