"""Rack inlet bands per room: the ASHRAE class's levels, read from the shipped rule pack.

The board colours a rack by its worst inlet temperature against the same four
levels the alert rule `ashrae.inlet_temp` uses: the room's `ashrae_class` picks
that class's levels in the pack `thermal-ashrae`; a room without one gets the
rule the alert engine runs (a site rule file may have changed it) at the
default class (`alerts.ashrae_class`, else A1).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dcim.alerts.config import AlertsConfig
from dcim.alerts.kinds.base import Levels, LevelSpec, LevelValue
from dcim.alerts.kinds.threshold import ThresholdRule
from dcim.alerts.model import DEFAULT_ASHRAE_CLASS
from dcim.alerts.rules import Rule, load_pack, merge_rules

INLET_RULE = "ashrae.inlet_temp"
THERMAL_PACK = "thermal-ashrae"


class Band(StrEnum):
    """How a value sits against its levels (the board's shapes and colours follow it)."""

    NORMAL = "normal"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Band.UNKNOWN: 0, Band.NORMAL: 1, Band.WARNING: 2, Band.CRITICAL: 3}


def _number(spec: LevelValue | None) -> float | None:
    if spec is None:
        return None
    return spec.value if isinstance(spec, LevelSpec) else float(spec)


@dataclass(frozen=True, slots=True)
class InletBands:
    """The four inlet levels of one class (any may be absent)."""

    name: str
    low_critical: float | None
    low_warning: float | None
    high_warning: float | None
    high_critical: float | None

    @classmethod
    def of(cls, name: str, levels: Levels) -> InletBands:
        return cls(
            name,
            _number(levels.low_critical),
            _number(levels.low_warning),
            _number(levels.high_warning),
            _number(levels.high_critical),
        )

    def band(self, value: float | None) -> Band:
        if value is None:
            return Band.UNKNOWN
        if (self.high_critical is not None and value > self.high_critical) or (
            self.low_critical is not None and value < self.low_critical
        ):
            return Band.CRITICAL
        if (self.high_warning is not None and value > self.high_warning) or (
            self.low_warning is not None and value < self.low_warning
        ):
            return Band.WARNING
        return Band.NORMAL


def _inlet_rule(rules: list[Rule]) -> ThresholdRule | None:
    for rule in rules:
        if rule.id == INLET_RULE and isinstance(rule, ThresholdRule):
            return rule
    return None


def class_bands(ashrae_class: str) -> InletBands:
    """The levels of the shipped pack for `ashrae_class` (A1..A4)."""
    rule = _inlet_rule(load_pack(THERMAL_PACK))
    if rule is None:  # the shipped pack always has it; a test guards that
        msg = f"pack {THERMAL_PACK} has no {INLET_RULE} rule"
        raise LookupError(msg)
    return InletBands.of(ashrae_class, rule.levels_for(ashrae_class))


def engine_bands(alerts: AlertsConfig | None) -> InletBands:
    """The inlet levels the alert engine runs with this config for a room of the
    default class (A1's without alerts)."""
    if alerts is None:
        return class_bands(DEFAULT_ASHRAE_CLASS)
    from dcim.alerts.service import load_rules

    name = alerts.ashrae_class
    rule = _inlet_rule(merge_rules([load_rules(alerts)]))
    return InletBands.of(name, rule.levels_for(name)) if rule is not None else class_bands(name)
