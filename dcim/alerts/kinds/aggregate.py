"""Aggregates over a scope: avg/max/min/sum of a metric per group, ratios (PUE), imbalance."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import Field

from dcim.alerts.kinds.base import (
    Aggregation,
    Bands,
    ClassBands,
    ClassLevels,
    Context,
    Evaluator,
    Levels,
    RuleBase,
    Signal,
    fmt,
    number,
)
from dcim.alerts.scope import group_key, labels_of, row_suffix, series_key
from dcim.configmodel import Strict
from dcim.reading import Reading

#: Places to group by, and `feed` (the A/B power path a device is on: an inventory tag).
GroupLevel = Literal["site", "room", "row", "rack", "device", "feed"]


class _Latest:
    """Latest value of each series per group, forgetting values older than `max_age_s`."""

    def __init__(self, max_age_s: float) -> None:
        self.max_age_s = max_age_s
        self.groups: dict[str, dict[str, tuple[float, float]]] = {}

    def put(self, group: str, series: str, value: float, now: float) -> None:
        self.groups.setdefault(group, {})[series] = (value, now)

    def fresh(self, group: str, now: float) -> dict[str, float]:
        members = self.groups.get(group, {})
        return {s: v for s, (v, at) in members.items() if now - at <= self.max_age_s}


def aggregate(fn: Aggregation, values: Iterable[float]) -> float:
    items = list(values)
    if fn == "avg":
        return sum(items) / len(items)
    if fn == "max":
        return max(items)
    if fn == "min":
        return min(items)
    return sum(items)


def _group_labels(labels: dict[str, str], levels: list[GroupLevel]) -> dict[str, str]:
    return {level: labels[level] for level in levels if level in labels}


def placed_labels(reading: Reading, levels: list[GroupLevel]) -> dict[str, str]:
    """A reading's labels plus the group-by tags that are not places (e.g. `feed`)."""
    labels = labels_of(reading)
    for level in levels:
        if level not in labels and level in reading.tags:
            labels[level] = reading.tags[level]
    return labels


class AggregateRule(RuleBase, ClassLevels):
    """`fn` of the latest `metric` of every series in a group (e.g. max inlet temp per row).
    `levels_by_class`: other levels for a group in a room of an ASHRAE class."""

    kind: Literal["aggregate"]
    metric: str
    fn: Aggregation
    group_by: list[GroupLevel] = Field(min_length=1)
    hysteresis: float = Field(default=0.0, ge=0)
    max_age_s: float = Field(default=300.0, gt=0)
    min_members: int = Field(default=1, ge=1)


class AggregateEvaluator(Evaluator):
    def __init__(self, rule: AggregateRule) -> None:
        super().__init__(rule)
        self.spec = rule
        self.metrics = frozenset({rule.metric})
        self.bands = ClassBands(rule, rule, rule.hysteresis)
        self._latest = _Latest(rule.max_age_s)

    def observe(self, reading: Reading, now: float, ctx: Context) -> list[Signal]:
        value = number(reading.value)
        labels = placed_labels(reading, self.spec.group_by)
        group = group_key(labels, list(self.spec.group_by))
        if value is None or group is None:
            return []
        self._latest.put(group, series_key(reading), value, now)
        members = self._latest.fresh(group, now)
        if len(members) < self.spec.min_members:
            return []
        result = aggregate(self.spec.fn, members.values())
        bands = self.bands.of(reading.device_id, ctx)  # a group is in one room: its class
        band = bands.evaluate(result, ctx.level(self.spec.id, group))
        where = f"{self.spec.fn} {reading.metric} of {group} ({len(members)} series)"
        text = f"{self.spec.title}: {where} {fmt(result, reading.unit)}"
        if band is not None:
            text += f" {bands.describe(band)}"
        group_labels = _group_labels(labels, self.spec.group_by)
        return [Signal(group, band.level if band else None, group_labels, result, text)]


class Term(Strict):
    """A sum of the latest `metric` of the series whose tags match `tags`."""

    metric: str
    tags: dict[str, str] = Field(default_factory=dict)

    def accepts(self, reading: Reading) -> bool:
        return reading.metric == self.metric and all(
            reading.tags.get(k) == v for k, v in self.tags.items()
        )


class RatioRule(RuleBase):
    """sum(numerator) / sum(denominator) per group, e.g. PUE = facility power / IT power."""

    kind: Literal["ratio"]
    numerator: Term
    denominator: Term
    group_by: list[GroupLevel] = Field(min_length=1)
    levels: Levels
    hysteresis: float = Field(default=0.0, ge=0)
    max_age_s: float = Field(default=300.0, gt=0)


class RatioEvaluator(Evaluator):
    def __init__(self, rule: RatioRule) -> None:
        super().__init__(rule)
        self.spec = rule
        self.metrics = frozenset({rule.numerator.metric, rule.denominator.metric})
        self.bands = Bands(rule.levels, rule, rule.hysteresis)
        self._num = _Latest(rule.max_age_s)
        self._den = _Latest(rule.max_age_s)

    def observe(self, reading: Reading, now: float, ctx: Context) -> list[Signal]:
        value = number(reading.value)
        labels = placed_labels(reading, self.spec.group_by)
        group = group_key(labels, list(self.spec.group_by))
        if value is None or group is None:
            return []
        matched = False
        for term, store in ((self.spec.numerator, self._num), (self.spec.denominator, self._den)):
            if term.accepts(reading):
                store.put(group, series_key(reading), value, now)
                matched = True
        if not matched:
            return []
        num, den = self._num.fresh(group, now), self._den.fresh(group, now)
        if not num or not den or sum(den.values()) <= 0:
            return []
        ratio = sum(num.values()) / sum(den.values())
        band = self.bands.evaluate(ratio, ctx.level(self.spec.id, group))
        text = f"{self.spec.title}: ratio {fmt(ratio)} for {group}"
        if band is not None:
            text += f" {self.bands.describe(band)}"
        group_labels = _group_labels(labels, self.spec.group_by)
        return [Signal(group, band.level if band else None, group_labels, ratio, text)]


class ImbalanceRule(RuleBase):
    """Per device (and inlet): max |I_i − I_avg| / I_avg × 100 across the `across` tag [R3]."""

    kind: Literal["imbalance"]
    metric: str = "pdu.phase_current_a"
    across: str = "phase"
    #: Below this mean the percentage means nothing (ServerTech ignores < 0.5 A) [R3].
    min_mean: float = Field(default=0.5, ge=0)
    min_members: int = Field(default=3, ge=2)
    levels: Levels
    hysteresis: float = Field(default=0.0, ge=0)
    max_age_s: float = Field(default=300.0, gt=0)


class ImbalanceEvaluator(Evaluator):
    def __init__(self, rule: ImbalanceRule) -> None:
        super().__init__(rule)
        self.spec = rule
        self.metrics = frozenset({rule.metric})
        self.bands = Bands(rule.levels, rule, rule.hysteresis)
        self._latest = _Latest(rule.max_age_s)

    def observe(self, reading: Reading, now: float, ctx: Context) -> list[Signal]:
        value = number(reading.value)
        member = reading.tags.get(self.spec.across)
        if value is None or member is None:
            return []
        labels = labels_of(reading)
        labels.pop(self.spec.across, None)
        key = "/".join(p for p in (f"device={reading.device_id}", row_suffix(labels)) if p)
        self._latest.put(key, member, value, now)
        members = self._latest.fresh(key, now)
        if len(members) < self.spec.min_members:
            return []
        mean = sum(members.values()) / len(members)
        if mean < self.spec.min_mean:
            imbalance = 0.0
        else:
            imbalance = max(abs(v - mean) for v in members.values()) / mean * 100.0
        band = self.bands.evaluate(imbalance, ctx.level(self.spec.id, key))
        text = f"{self.spec.title}: {self.spec.across} imbalance {imbalance:.1f} % on {key}"
        if band is not None:
            text += f" {self.bands.describe(band)}"
        return [Signal(key, band.level if band else None, labels, imbalance, text)]
