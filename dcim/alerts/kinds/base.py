"""What every rule kind shares: common fields, the signal it produces, its context."""

from __future__ import annotations

import itertools
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal, Protocol

from pydantic import Field, field_validator, model_validator

from dcim.alerts.model import AshraeClass, Level, Severity
from dcim.alerts.scope import LABEL_TAGS, ROW_TAGS, Place, Scope
from dcim.configmodel import Strict
from dcim.reading import Reading, Value

RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9_.:-]{0,80}$"
Seconds = Annotated[float, Field(ge=0)]


def check_runbook(value: str) -> str:
    """A runbook reference: empty, an http(s) URL, or a relative path (no other scheme)."""
    foreign = bool(_SCHEME.match(value)) and not _HTTP.match(value)
    if any(c.isspace() for c in value) or foreign:
        msg = "runbook_url must be an http(s) URL or a relative path like docs/runbooks.md#anchor"
        raise ValueError(msg)
    return value


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_HTTP = re.compile(r"^https?://[^/\s]+")


class Explains(Strict):
    """While this rule fires, matching rules' incidents in the same place are its children."""

    rules: list[str] = Field(min_length=1)  # rule id globs
    within: Place = "room"


class SameFact(Strict):
    """Matching rules state the same fact as this one about the same thing (e.g. the
    PDU's own overload state and our 80 % rule on one branch): the pair pages once.

    Whichever of the two fires first is the parent and pages; the other is grouped
    under it (visible as its child, no page of its own) unless it is more severe, and
    the parent stays open while its same-fact child still fires, so the pair also
    resolves once. Declared on either rule of the pair; at a tie the declaring rule
    is the parent.
    """

    rules: list[str] = Field(min_length=1)  # rule id globs
    #: Labels that must be equal on both incidents (a label absent on both is equal).
    #: Default: the same device and the same table row (branch, phase, position...).
    within: list[str] = Field(default_factory=lambda: ["device", *ROW_TAGS], min_length=1)

    @field_validator("within")
    @classmethod
    def _labels(cls, within: list[str]) -> list[str]:
        unknown = sorted(set(within) - set(LABEL_TAGS))
        if unknown:
            msg = f"unknown label(s) {', '.join(unknown)} (known: {', '.join(LABEL_TAGS)})"
            raise ValueError(msg)
        if "device" not in within:
            msg = "a same fact is about one device: within must include device"
            raise ValueError(msg)
        return within


class RuleBase(Strict):
    """Fields every rule has. `for_s` delays assertion, `clear_for_s` delays the clear."""

    id: str = Field(pattern=RULE_ID_PATTERN)
    name: str = ""
    description: str = ""
    #: Where the number comes from (a key of docs/sources.md such as [H1]); shipped packs always say.
    source: str = ""
    scope: Scope = Scope()
    for_s: Seconds = 0.0
    clear_for_s: Seconds = 0.0
    explains: list[Explains] = Field(default_factory=list)
    same_as: list[SameFact] = Field(default_factory=list)
    #: Fire alarms can be acknowledged but never silenced.
    fire_alarm: bool = False
    enabled: bool = True
    #: What on-call staff should do: an http(s) URL, or a path such as
    #: `docs/runbooks.md#ups-load` that `alerts.links.runbook_base_url` makes absolute.
    runbook_url: str = ""

    @field_validator("runbook_url")
    @classmethod
    def _runbook(cls, value: str) -> str:
        return check_runbook(value)

    @property
    def title(self) -> str:
        return self.name or self.id


class SeverityRule(RuleBase):
    """A rule with one severity (state, rate, stale...)."""

    severity: Severity = Severity.WARNING

    def level(self, name: str | None = None) -> Level:
        return Level(name or self.severity.value, self.severity, self.for_s, self.clear_for_s)


class LevelSpec(Strict):
    """A threshold with its own hysteresis and timing (defaults come from the rule)."""

    value: float
    hysteresis: float | None = Field(default=None, ge=0)
    for_s: float | None = Field(default=None, ge=0)
    clear_for_s: float | None = Field(default=None, ge=0)


LevelValue = float | LevelSpec


class Levels(Strict):
    """Four thresholds, as rack PDUs have them [R1]: any subset, in increasing order."""

    low_critical: LevelValue | None = None
    low_warning: LevelValue | None = None
    high_warning: LevelValue | None = None
    high_critical: LevelValue | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Levels:
        given = [
            (name, _value(spec))
            for name in ("low_critical", "low_warning", "high_warning", "high_critical")
            if (spec := getattr(self, name)) is not None
        ]
        if not given:
            msg = "give at least one of low_critical, low_warning, high_warning, high_critical"
            raise ValueError(msg)
        for (name_a, a), (name_b, b) in itertools.pairwise(given):
            if not a < b:
                msg = f"{name_a} ({a:g}) must be below {name_b} ({b:g})"
                raise ValueError(msg)
        return self


class ClassLevels(Strict):
    """Levels that depend on the ASHRAE class of the device's room.

    `levels_by_class` gives a class's own levels; `levels` judges a device of any
    other class, or one the inventory does not place in a room.
    """

    levels: Levels
    levels_by_class: dict[AshraeClass, Levels] = Field(default_factory=dict)

    def levels_for(self, ashrae_class: str | None) -> Levels:
        """The levels that judge a device in a room of `ashrae_class`."""
        for name, levels in self.levels_by_class.items():
            if name == ashrae_class:
                return levels
        return self.levels


class ClassBands:
    """`Bands` for each class a rule names, chosen per reading by its device's room."""

    def __init__(self, rule: ClassLevels, base: RuleBase, hysteresis: float) -> None:
        self.default = Bands(rule.levels, base, hysteresis)
        self._by_class = {
            name: Bands(levels, base, hysteresis) for name, levels in rule.levels_by_class.items()
        }

    def of(self, device: str, ctx: Context) -> Bands:
        if not self._by_class:
            return self.default
        info = ctx.devices.get(device)
        chosen = self._by_class.get(info.ashrae_class) if info and info.ashrae_class else None
        return chosen or self.default


def _value(spec: LevelValue) -> float:
    return spec.value if isinstance(spec, LevelSpec) else float(spec)


@dataclass(frozen=True, slots=True)
class Band:
    """One compiled threshold: which side, where, and how far back it clears."""

    level: Level
    high: bool
    threshold: float
    hysteresis: float


class Bands:
    """Four-level threshold logic with per-level hysteresis (deassertion margin) [R1]."""

    _ORDER = (
        ("high_critical", True, Severity.CRITICAL),
        ("low_critical", False, Severity.CRITICAL),
        ("high_warning", True, Severity.WARNING),
        ("low_warning", False, Severity.WARNING),
    )

    def __init__(self, levels: Levels, rule: RuleBase, hysteresis: float) -> None:
        self.bands: list[Band] = []
        for name, high, severity in self._ORDER:
            spec = getattr(levels, name)
            if spec is None:
                continue
            full = spec if isinstance(spec, LevelSpec) else LevelSpec(value=float(spec))
            level = Level(
                name,
                severity,
                rule.for_s if full.for_s is None else full.for_s,
                rule.clear_for_s if full.clear_for_s is None else full.clear_for_s,
            )
            h = hysteresis if full.hysteresis is None else full.hysteresis
            self.bands.append(Band(level, high, full.value, h))
        self._by_name = {band.level.name: band for band in self.bands}

    def evaluate(self, value: float, current: str | None) -> Band | None:
        """The most severe band that is crossed, or still held within its hysteresis."""
        held = self._by_name.get(current) if current is not None else None
        for band in self.bands:
            if (value > band.threshold) if band.high else (value < band.threshold):
                return band
            # a level once asserted stays until the value is back past threshold -/+ margin;
            # a more severe level on the same side holds the lesser one the same way
            if (
                held is not None
                and held.high == band.high
                and held.level.severity.rank >= band.level.severity.rank
                and (
                    value > band.threshold - band.hysteresis
                    if band.high
                    else value < band.threshold + band.hysteresis
                )
            ):
                return band
        return None

    def describe(self, band: Band) -> str:
        return f"{'above' if band.high else 'below'} {band.threshold:g} ({band.level.name})"


@dataclass(frozen=True, slots=True)
class Signal:
    """An evaluator's verdict for one scope: a level, or None when the condition is clear."""

    key: str
    level: Level | None
    labels: Mapping[str, str]
    value: Value | None = None
    summary: str = ""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What the engine knows of an inventory device."""

    tags: Mapping[str, str]
    interval_s: float
    #: The ASHRAE class of its room (the room's, else `alerts.ashrae_class`).
    ashrae_class: AshraeClass | None = None


class Context(Protocol):
    """What evaluators may ask the engine."""

    def level(self, rule_id: str, key: str) -> str | None:
        """The level currently asserted for (rule, key): evaluators apply hysteresis to it."""
        ...

    @property
    def devices(self) -> Mapping[str, DeviceInfo]: ...

    @property
    def started_at(self) -> float: ...


class Evaluator(ABC):
    """Compiled rule: turns readings (and the passing of time) into signals."""

    #: Metrics routed to `observe`; None means every reading.
    metrics: frozenset[str] | None = None
    #: Whether `tick` needs calling as time passes.
    timed: bool = False

    def __init__(self, rule: RuleBase) -> None:
        self.rule = rule

    @abstractmethod
    def observe(self, reading: Reading, now: float, ctx: Context) -> list[Signal]: ...

    def tick(self, now: float, ctx: Context) -> list[Signal]:
        del now, ctx
        return []

    def devices_changed(self, *, added: set[str], forget: set[str], now: float) -> None:
        """The inventory was reloaded: `added` devices are new, and what is cached about
        `forget` devices (removed, or their place or interval changed) is out of date."""
        del added, forget, now


def number(value: Value) -> float | None:
    """A reading's value as a float, or None for bools and text."""
    if isinstance(value, bool | str):
        return None
    return float(value)


def fmt(value: float, unit: str | None = None) -> str:
    text = f"{value:.4g}"
    return f"{text} {unit}" if unit else text


Aggregation = Literal["avg", "max", "min", "sum"]
