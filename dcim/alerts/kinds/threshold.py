"""Threshold rules: four levels with hysteresis, optionally as a percentage of a rating."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dcim.alerts.kinds.base import (
    ClassBands,
    ClassLevels,
    Context,
    Evaluator,
    RuleBase,
    Signal,
    fmt,
    number,
)
from dcim.alerts.scope import labels_of, series_key
from dcim.reading import Reading


class ThresholdRule(RuleBase, ClassLevels):
    """`metric` against four levels; with `ratio_to`, the value is 100 × metric / ratio_to
    of the same series (e.g. branch current as a percentage of the branch rating).
    `levels_by_class`: other levels for rooms of an ASHRAE class."""

    kind: Literal["threshold"]
    metric: str
    hysteresis: float = Field(default=0.0, ge=0)
    ratio_to: str | None = None


class ThresholdEvaluator(Evaluator):
    def __init__(self, rule: ThresholdRule) -> None:
        super().__init__(rule)
        self.spec = rule
        self.bands = ClassBands(rule, rule, rule.hysteresis)
        names = {rule.metric} | ({rule.ratio_to} if rule.ratio_to else set())
        self.metrics = frozenset(names)
        self._ratings: dict[str, float] = {}

    def observe(self, reading: Reading, now: float, ctx: Context) -> list[Signal]:
        value = number(reading.value)
        if value is None:
            return []
        key = series_key(reading)
        rule = self.spec
        unit = reading.unit
        if reading.metric == rule.ratio_to:
            self._ratings[key] = value
            if reading.metric != rule.metric:
                return []
        if rule.ratio_to is not None:
            rating = self._ratings.get(key)
            if rating is None or rating <= 0:
                return []  # unknown rating: no verdict, never a recovery
            value = 100.0 * value / rating
            unit = "%"
        bands = self.bands.of(reading.device_id, ctx)
        band = bands.evaluate(value, ctx.level(rule.id, key))
        if band is None:
            summary = f"{rule.title}: {reading.metric} {fmt(value, unit)} on {key}: normal"
            return [Signal(key, None, labels_of(reading), value, summary)]
        summary = (
            f"{rule.title}: {reading.metric} {fmt(value, unit)} on {key} {bands.describe(band)}"
        )
        return [Signal(key, band.level, labels_of(reading), value, summary)]
