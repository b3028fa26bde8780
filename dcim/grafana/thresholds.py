"""Panel colours from the alert rules the inventory loads: a tile turns red when the rule pages.

The rules are the monitor's own (`alerts.packs` and `alerts.rule_files`, loaded as
the engine loads them). A threshold rule's four levels become Grafana threshold
steps (red below low_critical, orange below low_warning, green, orange from
high_warning, red from high_critical); a state rule's states become the colours
of their values. Colour says severity and nothing else: critical red, warning
orange, every value no rule objects to green.

Rules are matched per room with their scope and judge it at its ASHRAE class (the
room's `ashrae_class`, else `alerts.ashrae_class`), so a room of another class, or
one a site rule file scoped to it (`room: hall-2`) judges otherwise, gets its own
colours: `classes()` groups the rooms of a site by the steps that apply to them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dcim.alerts.config import AlertsConfig
from dcim.alerts.kinds.aggregate import RatioRule
from dcim.alerts.kinds.base import Levels, LevelSpec
from dcim.alerts.kinds.correlation import RedundancyRule, UpsRuntimeRule
from dcim.alerts.kinds.state import StateRule
from dcim.alerts.kinds.threshold import ThresholdRule
from dcim.alerts.rules import Rule
from dcim.alerts.service import load_rules
from dcim.grafana.model import Threshold
from dcim.inventory import Config

GREEN, ORANGE, RED = "green", "orange", "red"
SEVERITY_COLOUR = {"critical": RED, "warning": ORANGE, "info": "blue"}
#: Shown for a value no rule judges (a state like `unknown`): neither fine nor an alarm.
NEUTRAL = "text"
OK_ONLY: tuple[Threshold, ...] = (Threshold(GREEN),)


def _value(spec: float | LevelSpec | None) -> float | None:
    if spec is None:
        return None
    return spec.value if isinstance(spec, LevelSpec) else float(spec)


def steps_of(levels: Levels) -> tuple[Threshold, ...]:
    """Grafana steps (a step colours values from its value up) for four rule levels."""
    lc, lw = _value(levels.low_critical), _value(levels.low_warning)
    hw, hc = _value(levels.high_warning), _value(levels.high_critical)
    base = RED if lc is not None else ORANGE if lw is not None else GREEN
    steps = [Threshold(base)]
    if lc is not None:
        steps.append(Threshold(ORANGE if lw is not None else GREEN, lc))
    if lw is not None:
        steps.append(Threshold(GREEN, lw))
    if hw is not None:
        steps.append(Threshold(ORANGE, hw))
    if hc is not None:
        steps.append(Threshold(RED, hc))
    return tuple(steps)


@dataclass(frozen=True, slots=True)
class RoomClass:
    """Rooms that share one rule (and so one set of colours) for a metric."""

    rooms: tuple[str, ...]
    rule: str
    steps: tuple[Threshold, ...]


class RuleColours:
    """What the loaded rules say about each metric, at one site."""

    def __init__(self, config: Config, site: str, rooms: Sequence[str]) -> None:
        alerts = config.alerts or AlertsConfig()
        self.rules: list[Rule] = load_rules(alerts)
        self.site = site
        self.rooms = tuple(rooms)
        #: Each room's ASHRAE class: what its thermal levels follow.
        self.room_classes = {
            room.id: room.ashrae_class or alerts.ashrae_class
            for s in config.sites
            if s.id == site
            for room in s.rooms
        }

    def _threshold_rule(self, metric: str, tags: Mapping[str, str]) -> ThresholdRule | None:
        found = [
            r
            for r in self.rules
            if isinstance(r, ThresholdRule)
            and r.metric == metric
            and r.ratio_to is None
            and r.scope.matches(tags)
        ]
        # a rule naming the room (a site file's override) wins over the pack's
        found.sort(key=lambda r: len(r.scope.model_dump(exclude_defaults=True)), reverse=True)
        return found[0] if found else None

    def classes(self, metric: str, kind: str, **tags: str) -> list[RoomClass]:
        """The site's rooms grouped by the threshold rule that judges `metric` there."""
        groups: dict[tuple[str, tuple[Threshold, ...]], list[str]] = {}
        for room in self.rooms:
            where = {"site": self.site, "room": room, "kind": kind, **tags}
            rule = self._threshold_rule(metric, where)
            levels = rule.levels_for(self.room_classes.get(room)) if rule else None
            key = (rule.id, steps_of(levels)) if rule and levels else ("", OK_ONLY)
            groups.setdefault(key, []).append(room)
        return [RoomClass(tuple(rooms), rule, steps) for (rule, steps), rooms in groups.items()]

    def steps(self, metric: str, kind: str, **tags: str) -> tuple[Threshold, ...]:
        """Steps for a metric judged alike in every room (else the first room's, see classes)."""
        found = self.classes(metric, kind, **tags)
        return found[0].steps if found else OK_ONLY

    def ratio_steps(self, metric: str, ratio_to: str) -> tuple[Threshold, ...]:
        """Steps of the threshold rule on `metric` as a percentage of `ratio_to`."""
        for r in self.rules:
            if isinstance(r, ThresholdRule) and r.metric == metric and r.ratio_to == ratio_to:
                return steps_of(r.levels)
        return OK_ONLY

    def pue_steps(self) -> tuple[Threshold, ...]:
        for r in self.rules:
            if isinstance(r, RatioRule) and r.numerator.tags.get("scope") == "facility":
                return steps_of(r.levels)
        return OK_ONLY

    def redundancy_steps(self) -> tuple[Threshold, ...]:
        for r in self.rules:
            if isinstance(r, RedundancyRule):
                return steps_of(r.levels)
        return OK_ONLY

    def runtime_steps(self) -> tuple[Threshold, ...]:
        """Orange below what the generator needs (the rule's warning; critical on battery)."""
        for r in self.rules:
            if isinstance(r, UpsRuntimeRule):
                needed = r.generator_start_s_by_site.get(self.site, r.generator_start_s)
                return (Threshold(ORANGE), Threshold(GREEN, needed + r.margin_s))
        return OK_ONLY

    def state_colour(self, metric: str, value: str, unjudged: str = GREEN) -> str:
        """The colour of one state: its severity in the rule, else `unjudged`."""
        for r in self.rules:
            if isinstance(r, StateRule) and r.metric == metric and value in r.states:
                return SEVERITY_COLOUR[r.states[value].value]
        return unjudged
