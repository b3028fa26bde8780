"""Standby power: a generator that does not start when the utility fails, and running out.

`standby_start`: per generator controller, the utility (mains) it senses is lost and
the engine is not in a started state; the level holds for `start_within_s` (the
set's start delay plus crank, warm-up and transfer, with a margin) before it fires,
so a healthy start never pages and a failed one pages at once after.

`depletion`: per series, the time until a falling level (fuel, battery charge)
reaches empty at the present rate, from a least-squares slope over a window:
integer readings (a fuel gauge in whole percent) still give a rate once the window
spans a few steps. A level that is not falling clears it.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

from pydantic import Field

from dcim.alerts.kinds.base import (
    Bands,
    Context,
    Evaluator,
    Levels,
    RuleBase,
    Signal,
    number,
)
from dcim.alerts.kinds.state import state_text
from dcim.alerts.model import Level, Severity
from dcim.alerts.scope import labels_of, series_key
from dcim.reading import Reading


class StandbyStartRule(RuleBase):
    """Fires when a controller sees the utility lost and its engine not started in time."""

    kind: Literal["standby_start"]
    #: Utility voltage the controller senses (per line; the lowest line counts).
    mains_metric: str = "generator.mains_voltage_v"
    #: Below this the utility counts as lost.
    mains_lost_below: float = Field(default=100.0, gt=0)
    state_metric: str = "generator.state"
    started_states: list[str] = Field(default_factory=lambda: ["running", "on_load"])
    #: Start delay + crank + warm-up + transfer + margin, seconds.
    start_within_s: float = Field(gt=0)
    severity: Severity = Severity.CRITICAL


class StandbyStartEvaluator(Evaluator):
    def __init__(self, rule: StandbyStartRule) -> None:
        super().__init__(rule)
        self.spec = rule
        self.metrics = frozenset({rule.mains_metric, rule.state_metric})
        self._mains: dict[str, dict[str, float]] = {}
        self._state: dict[str, str] = {}

    def observe(self, reading: Reading, now: float, ctx: Context) -> list[Signal]:
        rule = self.spec
        device = reading.device_id
        if reading.metric == rule.state_metric:
            self._state[device] = state_text(reading.value)
        else:
            value = number(reading.value)
            if value is None:
                return []
            self._mains.setdefault(device, {})[reading.tags.get("phase", "")] = value
        lines = self._mains.get(device)
        state = self._state.get(device)
        if not lines or state is None:
            return []
        key = f"device={device}"
        labels = {k: v for k, v in labels_of(reading).items() if k not in ("phase",)}
        lowest = min(lines.values())
        lost = lowest < rule.mains_lost_below
        started = state in rule.started_states
        text = f"{rule.title}: {device} mains {lowest:.0f} V, engine {state}" + (
            f" (must start within {rule.start_within_s:.0f} s)" if lost else ""
        )
        if lost and not started:
            level = Level("not_started", rule.severity, rule.start_within_s, rule.clear_for_s)
            return [Signal(key, level, labels, state, text)]
        return [Signal(key, None, labels, state, text)]


class DepletionRule(RuleBase):
    """Fires when a falling level would reach `empty_at` within the levels' seconds."""

    kind: Literal["depletion"]
    metric: str
    empty_at: float = 0.0
    window_s: float = Field(gt=0)
    #: The trend needs readings spanning at least this much of the window.
    min_span_s: float = Field(default=0.0, ge=0)
    #: Seconds to empty: low_warning / low_critical.
    levels: Levels
    hysteresis: float = Field(default=0.0, ge=0)


class DepletionEvaluator(Evaluator):
    def __init__(self, rule: DepletionRule) -> None:
        super().__init__(rule)
        self.spec = rule
        self.metrics = frozenset({rule.metric})
        self.bands = Bands(rule.levels, rule, rule.hysteresis)
        self._windows: dict[str, deque[tuple[float, float]]] = {}

    def observe(self, reading: Reading, now: float, ctx: Context) -> list[Signal]:
        value = number(reading.value)
        if value is None:
            return []
        rule = self.spec
        key = series_key(reading)
        ts = reading.ts_ns / 1e9
        window = self._windows.setdefault(key, deque())
        window.append((ts, value))
        while window[0][0] < ts - rule.window_s:
            window.popleft()
        span = ts - window[0][0]
        current = ctx.level(rule.id, key)
        if len(window) < 3 or span < max(rule.min_span_s, 1e-9):
            # too short to tell a trend; keep what is open until it can
            return [] if current is not None else [Signal(key, None, labels_of(reading), value)]
        rate = _slope(window)  # per second; negative while falling
        if rate >= 0:
            text = f"{rule.title}: {reading.metric} not falling on {key}"
            return [Signal(key, None, labels_of(reading), value, text)]
        seconds = max(value - rule.empty_at, 0.0) / -rate
        band = self.bands.evaluate(seconds, current)
        text = (
            f"{rule.title}: {reading.metric} {value:g} falling {-rate * 3600:.3g}/h on {key}: "
            f"empty in {seconds / 3600:.1f} h"
        )
        return [Signal(key, band.level if band else None, labels_of(reading), value, text)]


def _slope(points: deque[tuple[float, float]]) -> float:
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    num = sum((t - mean_t) * (v - mean_v) for t, v in points)
    den = sum((t - mean_t) ** 2 for t, _ in points)
    return num / den if den else 0.0
