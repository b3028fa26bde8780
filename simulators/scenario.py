"""Scripted incidents as data: timelines of "at T, do X" played against a hall model.

A scenario file (`simulators/scenarios/<name>.yaml`)::

    name: crac-failure
    description: One CRAC stops; its rows heat up; it restarts.
    steps:
      - {at: 2m, do: crac_fail}                    # device: defaults to the first CRAC
      - {at: 20m, do: crac_restore}

`at` is seconds, or a number with s/m/h. Devices default to the first one of
the right kind in the site, so one scenario plays on any site. Every problem
is reported with its line (`ScenarioError.problems`), and device ids are
checked against the site before anything runs (`Scenario.check`).

`ScenarioPlayer` applies due steps at their exact simulated time: call
`advance(now_s)` from a test with a hand-driven clock, or `await play(...)`
to follow a real `SimClock` at any speed.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dcim.clock import SimClock
from dcim.errors import DcimError
from dcim.yamlsource import YamlSourceError, line_of, load_yaml_with_lines
from simulators.hall.model import HallModel, SensorFault
from simulators.hall.topology import Topology

SCENARIO_DIR = Path(__file__).parent / "scenarios"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


class ScenarioError(DcimError):
    """A scenario file is invalid; each problem names its line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def parse_duration(value: object) -> float:
    """90, "90s", "1.5m", "2h" -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration (like 90, 90s, 5m, 1h)")
        seconds = float(match[1]) * _UNIT_S[match[2]]
    if seconds < 0:
        raise ValueError("must not be negative")
    return seconds


def _is_duration(value: object) -> bool:
    try:
        parse_duration(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Action:
    """One kind of step: its parameters (name -> type), which device kind it targets."""

    target: str | None  # ups, pdu, crac, generator, env, smoke, leak, door, any; None = no device
    params: Mapping[str, type]
    apply: Callable[[HallModel, str, Mapping[str, Any]], str]
    required: frozenset[str] = frozenset()


def _fault(kind: SensorFault | None) -> Callable[[HallModel, str, Mapping[str, Any]], str]:
    def apply(m: HallModel, d: str, p: Mapping[str, Any]) -> str:
        m.set_sensor_fault(d, kind, float(p.get("rate_c_per_h", 6.0)))
        return f"{d}: sensor {kind.value if kind else 'healthy again'}"

    return apply


def _utility(on: bool) -> Callable[[HallModel, str, Mapping[str, Any]], str]:
    def apply(m: HallModel, _: str, __: Mapping[str, Any]) -> str:
        m.set_utility(on)
        return "utility power restored" if on else "utility power lost"

    return apply


def _generator(on: bool) -> Callable[[HallModel, str, Mapping[str, Any]], str]:
    def apply(m: HallModel, _: str, __: Mapping[str, Any]) -> str:
        m.set_generator(on)
        return "generator on load" if on else "generator stopped"

    return apply


def _gen_fail_start(m: HallModel, d: str, _: Mapping[str, Any]) -> str:
    m.generator(d).fail_to_start()
    return f"{d}: will not start (flat starter battery)"


def _gen_trip(m: HallModel, d: str, p: Mapping[str, Any]) -> str:
    alarm = str(p.get("alarm", "high_coolant_temp"))
    m.generator(d).trip(alarm)
    return f"{d}: tripped ({alarm})"


def _gen_reset(m: HallModel, d: str, _: Mapping[str, Any]) -> str:
    m.generator(d).reset()
    return f"{d}: alarms reset, ready to start"


def _gen_fuel(m: HallModel, d: str, p: Mapping[str, Any]) -> str:
    m.generator(d).set_fuel(float(p["level_pct"]))
    return f"{d}: fuel tank at {p['level_pct']} %"


def _feed(up: bool) -> Callable[[HallModel, str, Mapping[str, Any]], str]:
    def apply(m: HallModel, _: str, p: Mapping[str, Any]) -> str:
        feed = str(p.get("feed", "A"))
        m.set_feed(feed, up)
        return f"feed {feed} {'restored' if up else 'lost: the other feed carries everything'}"

    return apply


def _crac(running: bool) -> Callable[[HallModel, str, Mapping[str, Any]], str]:
    def apply(m: HallModel, d: str, _: Mapping[str, Any]) -> str:
        m.set_crac(d, running)
        return f"{d}: {'restarted' if running else 'failed'}"

    return apply


def _smoke(m: HallModel, d: str, p: Mapping[str, Any]) -> str:
    target = float(p["obscuration"])
    m.set_smoke(d, target, parse_duration(p.get("ramp", 0)))
    return f"{d}: smoke toward {target} %/m over {p.get('ramp', 0)}"


def _leak(wet: bool) -> Callable[[HallModel, str, Mapping[str, Any]], str]:
    def apply(m: HallModel, d: str, _: Mapping[str, Any]) -> str:
        m.set_leak(d, wet)
        return f"{d}: {'water detected' if wet else 'dry'}"

    return apply


def _door(open_: bool) -> Callable[[HallModel, str, Mapping[str, Any]], str]:
    def apply(m: HallModel, d: str, _: Mapping[str, Any]) -> str:
        m.set_door(d, open_)
        return f"{d}: door {'open' if open_ else 'closed'}"

    return apply


def _overload(m: HallModel, d: str, p: Mapping[str, Any]) -> str:
    branch = int(p.get("branch", 1))
    m.overload_branch(d, branch, float(p.get("extra_w", 4500.0)))
    return f"{d}: branch {branch} overloaded by {p.get('extra_w', 4500.0)} W"


def _clear(m: HallModel, d: str, p: Mapping[str, Any]) -> str:
    branch = int(p.get("branch", 1))
    m.clear_branch(d, branch)
    return f"{d}: branch {branch} load removed, breaker reset"


def _responding(on: bool) -> Callable[[HallModel, str, Mapping[str, Any]], str]:
    def apply(m: HallModel, d: str, _: Mapping[str, Any]) -> str:
        m.set_responding(d, on)
        return f"{d}: {'answering again' if on else 'stops answering'}"

    return apply


ACTIONS: dict[str, Action] = {
    "utility_fail": Action(None, {}, _utility(False)),
    "utility_restore": Action(None, {}, _utility(True)),
    "generator_start": Action(None, {}, _generator(True)),
    "generator_stop": Action(None, {}, _generator(False)),
    "generator_fail_start": Action("generator", {}, _gen_fail_start),
    "generator_trip": Action("generator", {"alarm": str}, _gen_trip),
    "generator_reset": Action("generator", {}, _gen_reset),
    "generator_fuel": Action(
        "generator", {"level_pct": float}, _gen_fuel, frozenset({"level_pct"})
    ),
    "feed_fail": Action(None, {"feed": str}, _feed(False)),
    "feed_restore": Action(None, {"feed": str}, _feed(True)),
    "crac_fail": Action("crac", {}, _crac(False)),
    "crac_restore": Action("crac", {}, _crac(True)),
    "smoke": Action(
        "smoke", {"obscuration": float, "ramp": str}, _smoke, frozenset({"obscuration"})
    ),
    "leak": Action("leak", {}, _leak(True)),
    "leak_clear": Action("leak", {}, _leak(False)),
    "door_open": Action("door", {}, _door(True)),
    "door_close": Action("door", {}, _door(False)),
    "branch_overload": Action("pdu", {"branch": int, "extra_w": float}, _overload),
    "branch_clear": Action("pdu", {"branch": int}, _clear),
    "sensor_stick": Action("env", {}, _fault(SensorFault.STUCK)),
    "sensor_drift": Action("env", {"rate_c_per_h": float}, _fault(SensorFault.DRIFT)),
    "sensor_dropout": Action("env", {}, _fault(SensorFault.DROPOUT)),
    "sensor_restore": Action("env", {}, _fault(None)),
    "device_silent": Action("any", {}, _responding(False), frozenset({"device"})),
    "device_respond": Action("any", {}, _responding(True), frozenset({"device"})),
}


@dataclass(frozen=True, slots=True)
class Step:
    at_s: float
    do: str
    device: str | None
    params: Mapping[str, Any]
    line: int | None


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    steps: tuple[Step, ...]
    source: str = ""

    @property
    def duration_s(self) -> float:
        return max((s.at_s for s in self.steps), default=0.0)

    def check(self, topology: Topology) -> None:
        """Raise ScenarioError for steps whose device is missing or of the wrong kind."""
        problems = []
        for step in self.steps:
            try:
                resolve_device(step, topology)
            except KeyError as exc:
                where = f" (line {step.line})" if step.line else ""
                problems.append(f"step at {step.at_s:g}s ({step.do}): {exc.args[0]}{where}")
        if problems:
            raise ScenarioError(self.source, problems)


def _candidates(target: str, topology: Topology) -> list[str]:
    if target == "crac":
        return list(topology.cracs)
    if target == "pdu":
        return list(topology.pdus)
    if target == "generator":
        return list(topology.generators)
    if target == "any":
        return list(topology.placed)
    return [s.id for s in topology.sensors.values() if s.role == target]


def resolve_device(step: Step, topology: Topology) -> str:
    """The device a step acts on: its own `device`, or the first of the right kind."""
    target = ACTIONS[step.do].target
    if target is None:
        return ""
    candidates = _candidates(target, topology)
    if step.device is None:
        if not candidates:
            raise KeyError(f"the site has no {target} device")
        return candidates[0]
    if step.device not in candidates:
        raise KeyError(f"device {step.device!r} is not a {target} device of this site")
    return step.device


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Validate scenario text; every problem carries its line."""
    try:
        data, lines = load_yaml_with_lines(text, source)
    except YamlSourceError as exc:
        raise ScenarioError(source, [str(exc).removeprefix(f"{source}: ")]) from None
    problems: list[str] = []

    def problem(path: tuple[str | int, ...], message: str) -> None:
        line = line_of(lines, path)
        problems.append(f"{message}" + (f" (line {line})" if line else ""))

    if not isinstance(data, dict):
        raise ScenarioError(source, ["a scenario is a mapping with name and steps"])
    for key in data:
        if key not in ("name", "description", "steps"):
            problem((key,), f"unknown key {key!r} (expected name, description, steps)")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        problem(("steps",), "steps: a non-empty list of {at, do, ...} is required")
        raw_steps = []
    steps: list[Step] = []
    for i, raw in enumerate(raw_steps):
        path: tuple[str | int, ...] = ("steps", i)
        if not isinstance(raw, dict):
            problem(path, f"steps[{i}]: expected a mapping with at and do")
            continue
        do = raw.get("do")
        if do not in ACTIONS:
            problem((*path, "do"), f"steps[{i}].do: {do!r} is not one of {', '.join(ACTIONS)}")
            continue
        action = ACTIONS[do]
        try:
            at_s = parse_duration(raw.get("at"))
        except ValueError as exc:
            problem((*path, "at"), f"steps[{i}].at: {exc}")
            continue
        params: dict[str, Any] = {}
        for key, value in raw.items():
            if key in ("at", "do", "device"):
                continue
            kind = action.params.get(key)
            if kind is None:
                allowed = ", ".join(["device", *action.params]) if action.target else "none"
                problem((*path, key), f"steps[{i}]: {do} takes no {key!r} (allowed: {allowed})")
            elif kind is float and (isinstance(value, bool) or not isinstance(value, int | float)):
                problem((*path, key), f"steps[{i}].{key}: expected a number, got {value!r}")
            elif kind is int and (isinstance(value, bool) or not isinstance(value, int)):
                problem((*path, key), f"steps[{i}].{key}: expected a whole number, got {value!r}")
            elif key == "ramp" and not _is_duration(value):
                problem((*path, key), f"steps[{i}].ramp: {value!r} is not a duration")
            else:
                params[key] = value
        for key in sorted(action.required - {"device"} - params.keys()):
            problem(path, f"steps[{i}]: {do} needs {key}")
        device = raw.get("device")
        if "device" in action.required and device is None:
            problem(path, f"steps[{i}]: {do} needs device")
        if device is not None and action.target is None:
            problem((*path, "device"), f"steps[{i}]: {do} acts on the site, not on a device")
        if "feed" in params and params["feed"] not in ("A", "B"):
            problem((*path, "feed"), f"steps[{i}].feed: expected A or B, got {params['feed']!r}")
        steps.append(
            Step(at_s, do, None if device is None else str(device), params, line_of(lines, path))
        )
    if problems:
        raise ScenarioError(source, problems)
    steps.sort(key=lambda s: s.at_s)
    return Scenario(
        str(data.get("name", Path(source).stem)),
        str(data.get("description", "")),
        tuple(steps),
        source,
    )


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A bundled scenario by name (`crac-failure`) or a scenario file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIO_DIR / f"{name_or_path}.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        known = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml")))
        raise ScenarioError(str(path), [f"cannot read: {exc.strerror}; bundled: {known}"]) from None
    return parse_scenario(text, str(path))


@dataclass
class ScenarioPlayer:
    """Applies a scenario's steps to a model at `start_s` + each step's `at`."""

    model: HallModel
    scenario: Scenario
    start_s: float
    on_step: Callable[[Step, str], None] | None = None
    applied: list[tuple[Step, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.scenario.check(self.model.topology)

    @property
    def done(self) -> bool:
        return len(self.applied) == len(self.scenario.steps)

    def advance(self, now_s: float) -> None:
        """Apply every step due by `now_s` at its own time, then bring the model to `now_s`."""
        for step in self.scenario.steps[len(self.applied) :]:
            when = self.start_s + step.at_s
            if when > now_s:
                break
            self.model.advance_to(when)
            device = resolve_device(step, self.model.topology)
            text = ACTIONS[step.do].apply(self.model, device, step.params)
            self.applied.append((step, text))
            if self.on_step is not None:
                self.on_step(step, text)
        self.model.advance_to(now_s)

    async def play(self, clock: SimClock) -> None:
        """Follow `clock` until the last step has been applied."""
        while not self.done:
            self.advance(clock.now())
            if self.done:
                break
            next_at = self.start_s + self.scenario.steps[len(self.applied)].at_s
            # Scheduling, not a race: wake when the next step is due in simulated time.
            await asyncio.sleep(max((next_at - clock.now()) / clock.speed, 0.0) + 0.001)
