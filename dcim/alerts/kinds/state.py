"""State rules (enum or bool values mapped to severities) and event rules (traps)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dcim.alerts.kinds.base import Context, Evaluator, RuleBase, Signal
from dcim.alerts.model import Level, Severity
from dcim.alerts.scope import labels_of, series_key
from dcim.reading import Reading, Value


def state_text(value: Value) -> str:
    """How a state value is written in rules: true/false, integers plain, text as is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class StateRule(RuleBase):
    """Fires while `metric` is in one of `states` (value -> severity)."""

    kind: Literal["state"]
    metric: str
    states: dict[str, Severity] = Field(min_length=1)

    def level_for(self, state: str) -> Level | None:
        severity = self.states.get(state)
        if severity is None:
            return None
        return Level(state, severity, self.for_s, self.clear_for_s)


class StateEvaluator(Evaluator):
    def __init__(self, rule: StateRule) -> None:
        super().__init__(rule)
        self.spec = rule
        self.metrics = frozenset({rule.metric})

    def observe(self, reading: Reading, now: float, ctx: Context) -> list[Signal]:
        state = state_text(reading.value)
        key = series_key(reading)
        level = self.spec.level_for(state)
        summary = f"{self.spec.title}: {reading.metric} is {state} on {key}"
        return [Signal(key, level, labels_of(reading), state, summary)]


class EventRule(RuleBase):
    """Discrete events (traps): some raise the condition, others clear it, per device."""

    kind: Literal["event"]
    metric: str = "event.trap"
    raise_on: dict[str, Severity] = Field(min_length=1)
    clear_on: list[str] = Field(default_factory=list)
    #: Clear by itself this long after the last raising event (0: only `clear_on` clears).
    auto_clear_s: float = Field(default=0.0, ge=0)


class EventEvaluator(Evaluator):
    timed = True

    def __init__(self, rule: EventRule) -> None:
        super().__init__(rule)
        self.spec = rule
        self.metrics = frozenset({rule.metric})
        self._raised: dict[str, tuple[float, dict[str, str]]] = {}

    def observe(self, reading: Reading, now: float, ctx: Context) -> list[Signal]:
        event = state_text(reading.value)
        key = f"device={reading.device_id}"
        labels = labels_of(reading)
        severity = self.spec.raise_on.get(event)
        summary = f"{self.spec.title}: event {event} from {reading.device_id}"
        if severity is not None:
            self._raised[key] = (now, labels)
            level = Level(event, severity, self.spec.for_s, self.spec.clear_for_s)
            return [Signal(key, level, labels, event, summary)]
        if event in self.spec.clear_on:
            self._raised.pop(key, None)
            return [Signal(key, None, labels, event, summary)]
        return []

    def tick(self, now: float, ctx: Context) -> list[Signal]:
        if not self.spec.auto_clear_s:
            return []
        expired = [k for k, (at, _) in self._raised.items() if now - at >= self.spec.auto_clear_s]
        signals = []
        for key in expired:
            _, labels = self._raised.pop(key)
            signals.append(Signal(key, None, labels, None, f"{self.spec.title}: auto-cleared"))
        return signals
