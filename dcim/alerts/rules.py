"""Rule files: YAML data validated by pydantic (one model per `kind:`), with line numbers.

A rule file is `{rules: [...]}`. Shipped packs live in `dcim/alerts/rules/<name>.yaml`.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Annotated

from pydantic import Field, TypeAdapter, ValidationError, field_validator

from dcim.alerts.kinds.aggregate import (
    AggregateEvaluator,
    AggregateRule,
    ImbalanceEvaluator,
    ImbalanceRule,
    RatioEvaluator,
    RatioRule,
)
from dcim.alerts.kinds.base import Evaluator
from dcim.alerts.kinds.correlation import (
    FireRiskEvaluator,
    FireRiskRule,
    RedundancyEvaluator,
    RedundancyRule,
    UpsRuntimeEvaluator,
    UpsRuntimeRule,
)
from dcim.alerts.kinds.rate import RateEvaluator, RateRule
from dcim.alerts.kinds.sensor import (
    DeviationEvaluator,
    DeviationRule,
    DropoutEvaluator,
    DropoutRule,
    StuckEvaluator,
    StuckRule,
)
from dcim.alerts.kinds.stale import StaleEvaluator, StaleRule
from dcim.alerts.kinds.standby import (
    DepletionEvaluator,
    DepletionRule,
    StandbyStartEvaluator,
    StandbyStartRule,
)
from dcim.alerts.kinds.state import EventEvaluator, EventRule, StateEvaluator, StateRule
from dcim.alerts.kinds.threshold import ThresholdEvaluator, ThresholdRule
from dcim.configmodel import Strict
from dcim.errors import DcimError
from dcim.yamlsource import YamlSourceError, format_path, line_of, load_yaml_with_lines

Rule = Annotated[
    ThresholdRule
    | RateRule
    | StateRule
    | EventRule
    | StaleRule
    | AggregateRule
    | RatioRule
    | ImbalanceRule
    | FireRiskRule
    | RedundancyRule
    | UpsRuntimeRule
    | StuckRule
    | DeviationRule
    | DropoutRule
    | StandbyStartRule
    | DepletionRule,
    Field(discriminator="kind"),
]

_EVALUATORS: dict[type, type[Evaluator]] = {
    ThresholdRule: ThresholdEvaluator,
    RateRule: RateEvaluator,
    StateRule: StateEvaluator,
    EventRule: EventEvaluator,
    StaleRule: StaleEvaluator,
    AggregateRule: AggregateEvaluator,
    RatioRule: RatioEvaluator,
    ImbalanceRule: ImbalanceEvaluator,
    FireRiskRule: FireRiskEvaluator,
    RedundancyRule: RedundancyEvaluator,
    UpsRuntimeRule: UpsRuntimeEvaluator,
    StuckRule: StuckEvaluator,
    DeviationRule: DeviationEvaluator,
    DropoutRule: DropoutEvaluator,
    StandbyStartRule: StandbyStartEvaluator,
    DepletionRule: DepletionEvaluator,
}

_KIND_NAMES = {"threshold", "rate", "state", "event", "stale", "aggregate", "ratio"}
_KIND_NAMES |= {"imbalance", "fire_risk", "redundancy", "ups_runtime"}
_KIND_NAMES |= {"stuck", "deviation", "dropout", "standby_start", "depletion"}


class RuleError(DcimError):
    """A rule file is invalid; the message lists each problem with its line."""


class RuleFile(Strict):
    rules: list[Rule] = Field(default_factory=list)

    @field_validator("rules")
    @classmethod
    def _unique(cls, rules: list[Rule]) -> list[Rule]:
        ids = [rule.id for rule in rules]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            msg = f"rule ids used twice: {', '.join(twice)}"
            raise ValueError(msg)
        return rules


_RULES = TypeAdapter(RuleFile)


def compile_rule(rule: Rule) -> Evaluator:
    """The evaluator for a validated rule."""
    return _EVALUATORS[type(rule)](rule)


def parse_rules(text: str, source: str) -> list[Rule]:
    """Validate a rule file's text; RuleError lists every problem with its line."""
    try:
        data, lines = load_yaml_with_lines(text, source)
    except YamlSourceError as exc:
        raise RuleError(str(exc)) from None
    if data is None:
        return []
    try:
        return list(_RULES.validate_python(data).rules)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            # pydantic puts the discriminator value into the location: drop it
            path = tuple(part for part in error["loc"] if part not in _KIND_NAMES)
            line = line_of(lines, path)
            message = str(error["msg"]).removeprefix("Value error, ")
            suffix = f" (line {line})" if line else ""
            problems.append(f"{format_path(path) or '(top level)'}: {message}{suffix}")
        raise RuleError(f"{source}: " + "; ".join(problems)) from None


def load_rule_file(path: Path | str) -> list[Rule]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(f"{path}: cannot read file: {exc.strerror}") from None
    return parse_rules(text, str(path))


def pack_dir() -> Path:
    return Path(str(resources.files("dcim.alerts").joinpath("rules")))


def available_packs() -> list[str]:
    return sorted(path.stem for path in pack_dir().glob("*.yaml"))


def load_pack(name: str) -> list[Rule]:
    """A shipped rule pack by name (`dcim/alerts/rules/<name>.yaml`)."""
    path = pack_dir() / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(available_packs()) or "none"
        raise RuleError(f"unknown rule pack {name!r} (known: {known})")
    return load_rule_file(path)


def merge_rules(sets: Iterable[list[Rule]]) -> list[Rule]:
    """Later sets override earlier rules with the same id (site files override packs)."""
    merged: dict[str, Rule] = {}
    for rules in sets:
        for rule in rules:
            merged[rule.id] = rule
    return [rule for rule in merged.values() if rule.enabled]
