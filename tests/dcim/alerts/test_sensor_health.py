"""Sensor health (the shipped sensor-health pack): a probe that is stuck, drifts away
from its peers or drops out raises a warning, and healthy probes, or a row warming
together, raise nothing. Synthetic probes, 60 s polls, a hand-driven clock."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from dcim.alerts.engine import EngineSettings, RuleEngine
from dcim.alerts.kinds.base import DeviceInfo
from dcim.alerts.model import Notification, Transition
from dcim.alerts.rules import load_pack, merge_rules
from dcim.clock import ManualClock
from dcim.reading import Reading, Value

POLL_S = 60.0
HOUR = 3600.0
#: Two rows of three racks in one room, one inlet probe per rack; their own offsets.
PROBES = {
    f"env-r{row}-{n}": (f"r{row}", 21.0 + 0.7 * n + 0.4 * row) for row in (1, 2) for n in (1, 2, 3)
}

#: (probe, time) -> the temperature it reports, or None for no value this poll.
Fault = Callable[[str, float, float], float | None]


def no_warming(t: float) -> float:
    del t
    return 0.0


def healthy(probe: str, t: float, true_c: float) -> float | None:
    del probe, t
    return true_c


class Room:
    """The probes of one room, polled every 60 s into an engine on the shipped packs."""

    def __init__(self, *packs: str, resolution: float = 0.1, seed: int = 3) -> None:
        self.clock = ManualClock(0.0)
        self.devices = {
            name: DeviceInfo(self.tags(name), POLL_S) for name in PROBES
        }  # every probe is its own device (one APC/Raritan probe port each)
        self.engine = RuleEngine(
            merge_rules(load_pack(p) for p in packs),
            clock=self.clock,
            devices=self.devices,
            settings=EngineSettings(escalate_after_s=None),
        )
        self.resolution = resolution
        self.rng = random.Random(seed)
        self.transitions: list[Transition] = []
        self.sent: list[Notification] = []
        #: Extra warming per row, °C, as a function of time (a cooling failure).
        self.row_warming: dict[str, Callable[[float], float]] = {}
        self.fault: Fault = healthy
        self.device_up: dict[str, bool] = dict.fromkeys(PROBES, True)

    @staticmethod
    def tags(name: str) -> dict[str, str]:
        row = PROBES[name][0]
        return {"site": "par1", "room": "hall-a", "row": row, "rack": name[4:], "kind": "sensor"}

    def true_c(self, name: str, t: float) -> float:
        row, offset = PROBES[name]
        # the room breathes a little over the day; every probe sees its own noise
        room = 0.4 * math.sin(2 * math.pi * t / (24 * HOUR))
        warming = self.row_warming.get(row, no_warming)(t)
        return offset + room + warming + self.rng.gauss(0.0, 0.12)

    def read(self, name: str, metric: str, value: Value, **tags: str) -> None:
        all_tags = {**self.tags(name), "device": name, **tags}
        unit = "degC" if metric == "sensor.temp_c" else None
        self.engine.observe(Reading(name, metric, value, unit, int(self.clock() * 1e9), all_tags))

    def poll(self) -> None:
        t = self.clock()
        for name in PROBES:
            if not self.device_up[name]:
                self.read(name, "device.up", False)
                continue
            value = self.fault(name, t, self.true_c(name, t))
            if value is not None:
                rounded = round(value / self.resolution) * self.resolution
                self.read(name, "sensor.temp_c", round(rounded, 3), position="inlet")
                self.read(name, "sensor.humidity_pct", 45.0, position="inlet")
            self.read(name, "device.up", True)
        self.engine.tick()
        out = self.engine.take()
        self.transitions.extend(out.transitions)
        self.sent.extend(out.notifications)

    def run_for(self, seconds: float) -> None:
        end = self.clock() + seconds
        while self.clock() < end:
            self.poll()
            self.clock.advance(POLL_S)

    def raised(self, prefix: str = "sensor.") -> list[tuple[float, str, str, str]]:
        """Every pending/firing/resolved transition of the rules starting with `prefix`."""
        return [
            (tr.at, tr.event, tr.incident.rule, tr.incident.key)
            for tr in self.transitions
            if tr.incident.rule.startswith(prefix) and tr.event in ("pending", "firing", "resolved")
        ]

    def fired(self, prefix: str = "sensor.") -> list[tuple[float, str, str]]:
        return [
            (at, rule, key) for at, event, rule, key in self.raised(prefix) if event == "firing"
        ]


def key(probe: str) -> str:
    return f"device={probe}/position=inlet"


def test_healthy_noisy_probes_raise_nothing_for_hours() -> None:
    room = Room("sensor-health")
    room.run_for(4 * HOUR)
    assert room.raised() == []


def test_healthy_whole_degree_probes_are_never_called_stuck() -> None:
    # APC UIO probes read whole degrees: a healthy one sits on one value for hours
    room = Room("sensor-health", resolution=1.0)
    room.run_for(4 * HOUR)
    assert room.raised() == []


def test_a_stuck_probe_raises_a_warning_that_names_it_and_its_value() -> None:
    room = Room("sensor-health")
    room.run_for(2 * HOUR)
    frozen: dict[str, float] = {}
    start = room.clock()

    def stuck(probe: str, t: float, true_c: float) -> float | None:
        if probe != "env-r1-2":
            return true_c
        return frozen.setdefault(probe, true_c)

    room.fault = stuck
    room.run_for(15 * 60)
    fired = room.fired()
    assert [(rule, k) for _, rule, k in fired] == [("sensor.stuck", key("env-r1-2"))]
    # at least 300 s of one value, and 3x the longest run of repeats this noisy probe
    # (0.1 °C resolution) had by chance while healthy
    assert 300.0 <= fired[0][0] - start <= 15 * 60
    incident = room.engine.open_incidents[0]
    assert incident.severity.value == "warning"
    value = round(round(frozen["env-r1-2"] / 0.1) * 0.1, 3)
    assert f"env-r1-2 inlet sensor.temp_c stuck at {value:.4g} °C for" in incident.summary
    assert [n.rule for n in room.sent] == ["sensor.stuck"]
    # the probe is repaired: it moves again and the warning resolves
    room.fault = healthy
    room.run_for(5 * 60)
    assert room.raised()[-1][1:] == ("resolved", "sensor.stuck", key("env-r1-2"))


def test_a_drifting_probe_raises_a_warning_and_its_peers_do_not() -> None:
    room = Room("sensor-health")
    room.run_for(2 * HOUR)
    start = room.clock()

    def drift(probe: str, t: float, true_c: float) -> float | None:
        return true_c + 6.0 * (t - start) / HOUR if probe == "env-r2-3" else true_c

    room.fault = drift
    room.run_for(30 * 60)
    fired = room.fired()
    assert [(rule, k) for _, rule, k in fired] == [("sensor.drift", key("env-r2-3"))]
    # 1.5 °C away after 15 min at 6 °C/h, then two minutes of `for`, give or take noise
    assert 14 * 60 <= fired[0][0] - start <= 21 * 60
    summary = room.engine.open_incidents[0].summary
    assert "env-r2-3 inlet sensor.temp_c moved +" in summary
    assert "no peer moved with it" in summary


@pytest.mark.parametrize(
    "warming",
    [
        # a CRAC fails: its row warms 5-6.5 °C within 20 min, each rack a little differently
        {"r1": lambda t, s: min(max(t - s, 0.0) / 1200.0, 1.0) * 6.0},
        # the whole room warms
        {
            "r1": lambda t, s: min(max(t - s, 0.0) / 1200.0, 1.0) * 5.0,
            "r2": lambda t, s: min(max(t - s, 0.0) / 1200.0, 1.0) * 5.5,
        },
    ],
    ids=["one-row", "whole-room"],
)
def test_a_row_warming_together_is_no_sensor_fault(
    warming: dict[str, Callable[[float, float], float]],
) -> None:
    room = Room("sensor-health")
    room.run_for(2 * HOUR)
    start = room.clock()
    spread = {"env-r1-1": 0.85, "env-r1-2": 1.0, "env-r1-3": 1.1}  # uneven racks

    def since_start(curve: Callable[[float, float], float]) -> Callable[[float], float]:
        return lambda t: curve(t, start)

    for row, curve in warming.items():
        room.row_warming[row] = since_start(curve)

    def uneven(probe: str, t: float, true_c: float) -> float | None:
        row = PROBES[probe][0]
        extra = room.row_warming.get(row, no_warming)(t)
        return true_c + extra * (spread.get(probe, 1.0) - 1.0)

    room.fault = uneven
    room.run_for(HOUR)
    assert room.raised() == []


def test_a_probe_that_drops_out_raises_one_warning_and_clears_when_back() -> None:
    room = Room("sensor-health")
    room.run_for(30 * 60)
    start = room.clock()
    room.fault = lambda probe, t, true_c: None if probe == "env-r1-1" else true_c
    room.run_for(10 * 60)
    fired = room.fired()
    # temperature and humidity both gone: one incident for the probe, after 3 reports
    assert [(rule, k) for _, rule, k in fired] == [("sensor.dropout", key("env-r1-1"))]
    assert fired[0][0] - start == pytest.approx(3 * POLL_S)
    assert [n.rule for n in room.sent] == ["sensor.dropout"]
    summary = room.sent[0].summary
    assert "env-r1-1 inlet sent no sensor.humidity_pct, sensor.temp_c in its last 3 reports" in (
        summary
    )
    assert "(last " in summary
    assert "°C" in summary
    room.fault = healthy
    room.run_for(2 * 60)
    assert room.raised()[-1][1:] == ("resolved", "sensor.dropout", key("env-r1-1"))


def test_a_device_that_is_down_is_no_dropout() -> None:
    room = Room("sensor-health")
    room.run_for(30 * 60)
    room.device_up["env-r1-1"] = False
    room.run_for(10 * 60)
    assert room.raised() == []


def test_an_unplugged_probe_pages_once_for_its_status_and_its_missing_values() -> None:
    room = Room("sensor-health", "fire-environment")
    room.run_for(30 * 60)
    start = room.clock()
    room.fault = lambda probe, t, true_c: None if probe == "env-r1-1" else true_c
    original = room.read

    def with_status(name: str, metric: str, value: Value, **tags: str) -> None:
        original(name, metric, value, **tags)
        if metric == "device.up" and value:
            status = "unplugged" if name == "env-r1-1" and room.clock() >= start else "normal"
            original(name, "sensor.status", status, position="inlet")

    room.read = with_status  # type: ignore[method-assign]
    room.run_for(10 * 60)
    assert sorted((rule, k) for _, rule, k in room.fired("")) == [
        ("env.sensor_failed", key("env-r1-1")),
        ("sensor.dropout", key("env-r1-1")),
    ]
    assert [n.rule for n in room.sent] == ["env.sensor_failed"]


def test_a_device_dropping_implausible_values_for_ten_minutes_raises_a_warning() -> None:
    room = Room("sensor-health")
    room.run_for(5 * 60)
    original = room.read
    bad = {"count": 1}

    def counting(name: str, metric: str, value: Value, **tags: str) -> None:
        original(name, metric, value, **tags)
        if metric == "device.up" and value:
            original(name, "device.values_invalid", bad["count"] if name == "env-r2-1" else 0)

    room.read = counting  # type: ignore[method-assign]
    room.run_for(9 * 60)  # one garbled poll or nine are not yet a fault
    assert room.fired("device.") == []
    room.run_for(3 * 60)
    assert [(rule, k) for _, rule, k in room.fired("device.")] == [
        ("device.values_invalid", "device=env-r2-1")
    ]
    bad["count"] = 0
    room.run_for(6 * 60)
    assert room.raised("device.")[-1][1:] == (
        "resolved",
        "device.values_invalid",
        "device=env-r2-1",
    )
