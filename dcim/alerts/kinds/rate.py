"""Rate-of-change rules: how far a value moved within a time window."""

from __future__ import annotations

from collections import deque
from typing import Literal

from pydantic import Field

from dcim.alerts.kinds.base import Context, Evaluator, SeverityRule, Signal, fmt, number
from dcim.alerts.scope import labels_of, series_key
from dcim.reading import Reading


class RateRule(SeverityRule):
    """Fires when `metric` rose (or fell) by at least `delta` within `window_s`."""

    kind: Literal["rate"]
    metric: str
    delta: float = Field(gt=0)
    window_s: float = Field(gt=0)
    direction: Literal["rise", "fall", "any"] = "rise"
    hysteresis: float = Field(default=0.0, ge=0)


class RateEvaluator(Evaluator):
    def __init__(self, rule: RateRule) -> None:
        super().__init__(rule)
        self.spec = rule
        self.metrics = frozenset({rule.metric})
        self._windows: dict[str, deque[tuple[float, float]]] = {}

    def change(self, key: str, ts: float, value: float) -> tuple[float, float]:
        """(largest move in the rule's direction within the window, covered seconds)."""
        window = self._windows.setdefault(key, deque())
        window.append((ts, value))
        horizon = ts - self.spec.window_s
        while window and window[0][0] < horizon:
            window.popleft()
        values = [v for _, v in window]
        rise = value - min(values)
        fall = max(values) - value
        moved = {"rise": rise, "fall": fall, "any": max(rise, fall)}[self.spec.direction]
        return moved, ts - window[0][0]

    def observe(self, reading: Reading, now: float, ctx: Context) -> list[Signal]:
        value = number(reading.value)
        if value is None:
            return []
        rule = self.spec
        key = series_key(reading)
        moved, covered = self.change(key, reading.ts_ns / 1e9, value)
        active = ctx.level(rule.id, key) is not None
        limit = rule.delta - rule.hysteresis if active else rule.delta
        text = (
            f"{reading.metric} moved {fmt(moved, reading.unit)} within {rule.window_s:g} s on {key}"
        )
        if moved >= limit:
            return [Signal(key, rule.level(), labels_of(reading), value, f"{rule.title}: {text}")]
        # a short window (just started, or after a restart) cannot prove the trend has stopped
        if active and covered < rule.window_s / 2:
            return []
        return [Signal(key, None, labels_of(reading), value, f"{rule.title}: {text}")]
