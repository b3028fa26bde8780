"""Every rule kind, hysteresis and `for`, on synthetic reading streams with a hand-driven clock.

Each case plays readings at given seconds, ticks the engine every second, and
compares the firing / updated / resolved transitions (time, event, level).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pytest

from dcim.alerts.engine import EngineSettings, RuleEngine
from dcim.alerts.kinds.base import DeviceInfo
from dcim.alerts.rules import load_pack, parse_rules
from dcim.clock import ManualClock
from dcim.reading import Reading, Value

RACK = {"site": "par1", "room": "hall-a", "row": "r1", "rack": "a01"}


@dataclass(frozen=True)
class At:
    """One reading at second `t`."""

    t: float
    metric: str
    value: Value
    device: str = "env-1"
    tags: Mapping[str, str] = field(default_factory=dict)


def reading(step: At) -> Reading:
    tags = {**RACK, "device": step.device, "kind": "sensor", **step.tags}
    return Reading(step.device, step.metric, step.value, None, int(step.t * 1e9), tags)


def play(
    rules_yaml: str,
    steps: Sequence[At],
    until: float,
    *,
    devices: Mapping[str, DeviceInfo] | None = None,
    settings: EngineSettings | None = None,
    events: tuple[str, ...] = ("firing", "updated", "resolved"),
) -> list[tuple[float, str, str]]:
    clock = ManualClock(0.0)
    engine = RuleEngine(
        parse_rules(rules_yaml, "test"), clock=clock, devices=devices, settings=settings
    )
    pending = sorted(steps, key=lambda s: s.t)
    seen: list[tuple[float, str, str]] = []
    t = 0.0
    while t <= until:
        clock.set(t)
        while pending and pending[0].t <= t:
            engine.observe(reading(pending.pop(0)))
        engine.tick()
        seen.extend(
            (t, tr.event, tr.incident.level)
            for tr in engine.take().transitions
            if tr.event in events
        )
        t += 1.0
    return seen


def temps(*pairs: tuple[float, float], **tags: str) -> list[At]:
    return [At(t, "sensor.temp_c", v, tags={"position": "inlet", **tags}) for t, v in pairs]


INLET = """
rules:
  - id: inlet
    kind: threshold
    metric: sensor.temp_c
    scope: {tags: {position: inlet}}
    levels: {low_critical: 15, low_warning: 18, high_warning: 27, high_critical: 32}
    hysteresis: 1
    for_s: %(for_s)s
    clear_for_s: %(clear_for_s)s
"""


def inlet(for_s: float = 0, clear_for_s: float = 0) -> str:
    return INLET % {"for_s": for_s, "clear_for_s": clear_for_s}


CASES: list[tuple[str, str, list[At], float, list[tuple[float, str, str]]]] = [
    (
        "high levels with hysteresis both ways",
        inlet(),
        temps((0, 26), (10, 28), (20, 32.5), (30, 31.5), (40, 30), (50, 26.5), (60, 25.9)),
        70,
        [
            (10, "firing", "high_warning"),
            (20, "updated", "high_critical"),
            (40, "updated", "high_warning"),
            (60, "resolved", "high_warning"),
        ],
    ),
    (
        "low levels with hysteresis",
        inlet(),
        temps((0, 20), (10, 17), (20, 14), (30, 15.5), (40, 16.5), (50, 18.5), (60, 19.5)),
        70,
        [
            (10, "firing", "low_warning"),
            (20, "updated", "low_critical"),
            (40, "updated", "low_warning"),
            (60, "resolved", "low_warning"),
        ],
    ),
    (
        "for: fires only after the condition held for_s",
        inlet(for_s=60),
        temps((10, 28), (40, 28), (70, 28)),
        100,
        [(70, "firing", "high_warning")],
    ),
    (
        "for: a short excursion never fires",
        inlet(for_s=60),
        temps((10, 28), (40, 25), (50, 28)),
        100,
        [],
    ),
    (
        "clear_for: resolves only after clear for clear_for_s",
        inlet(clear_for_s=120),
        temps((10, 28), (20, 25), (30, 25)),
        200,
        [(10, "firing", "high_warning"), (140, "resolved", "high_warning")],
    ),
    (
        "clear_for: a relapse restarts the clear clock",
        inlet(clear_for_s=60),
        temps((10, 28), (20, 25), (50, 28), (60, 25)),
        200,
        [(10, "firing", "high_warning"), (120, "resolved", "high_warning")],
    ),
    (
        "ratio_to: branch current as % of the branch rating (80 % rule)",
        """
rules:
  - id: branch
    kind: threshold
    metric: pdu.branch_current_a
    ratio_to: pdu.branch_rating_a
    levels: {high_warning: 80, high_critical: 90}
""",
        [
            At(0, "pdu.branch_rating_a", 16.0, "pdu-1", {"branch": "1"}),
            At(1, "pdu.branch_current_a", 12.0, "pdu-1", {"branch": "1"}),
            At(5, "pdu.branch_current_a", 13.0, "pdu-1", {"branch": "1"}),
            At(6, "pdu.branch_current_a", 14.5, "pdu-1", {"branch": "2"}),  # no rating: no verdict
            At(9, "pdu.branch_current_a", 14.5, "pdu-1", {"branch": "1"}),
        ],
        12,
        [(5, "firing", "high_warning"), (9, "updated", "high_critical")],
    ),
    (
        "rate: a rise of 5 °C within 15 min; a short window never proves recovery",
        """
rules:
  - id: rise
    kind: rate
    metric: sensor.temp_c
    delta: 5
    window_s: 900
""",
        temps((0, 20), (300, 22), (600, 25.5), (1600, 25.5), (1700, 25.6), (2100, 25.5)),
        2200,
        [(600, "firing", "warning"), (2100, "resolved", "warning")],
    ),
    (
        "state: UPS output source",
        """
rules:
  - id: ups-source
    kind: state
    metric: ups.output_source
    states: {battery: critical, bypass: warning, none: critical}
""",
        [
            At(0, "ups.output_source", "normal", "ups-1"),
            At(10, "ups.output_source", "battery", "ups-1"),
            At(20, "ups.output_source", "bypass", "ups-1"),
            At(30, "ups.output_source", "normal", "ups-1"),
        ],
        40,
        [(10, "firing", "battery"), (20, "updated", "bypass"), (30, "resolved", "bypass")],
    ),
    (
        "state: a bool with for_s (door open longer than 5 min)",
        """
rules:
  - id: door
    kind: state
    metric: sensor.door_open
    states: {"true": warning}
    for_s: 300
""",
        [
            At(0, "sensor.door_open", True),
            At(60, "sensor.door_open", False),
            At(100, "sensor.door_open", True),
            At(500, "sensor.door_open", False),
        ],
        600,
        [(400, "firing", "true"), (500, "resolved", "true")],
    ),
    (
        "event: on_battery trap raises, power_restored clears",
        """
rules:
  - id: trap-battery
    kind: event
    raise_on: {on_battery: critical}
    clear_on: [power_restored]
""",
        [
            At(5, "event.trap", "on_battery", "ups-1"),
            At(6, "event.trap", "overload", "ups-1"),
            At(50, "event.trap", "power_restored", "ups-1"),
        ],
        60,
        [(5, "firing", "on_battery"), (50, "resolved", "on_battery")],
    ),
    (
        "aggregate: max inlet temperature of a row",
        """
rules:
  - id: row-max
    kind: aggregate
    metric: sensor.temp_c
    fn: max
    group_by: [site, room, row]
    levels: {high_critical: 32}
""",
        [
            *temps((0, 25)),
            At(1, "sensor.temp_c", 33.0, "env-2", {"position": "inlet", "rack": "a02"}),
            At(20, "sensor.temp_c", 26.0, "env-2", {"position": "inlet", "rack": "a02"}),
        ],
        30,
        [(1, "firing", "high_critical"), (20, "resolved", "high_critical")],
    ),
    (
        "aggregate: average over a row, stale members forgotten",
        """
rules:
  - id: row-avg
    kind: aggregate
    metric: sensor.temp_c
    fn: avg
    group_by: [row]
    levels: {high_warning: 27}
    max_age_s: 60
""",
        [
            *temps((0, 25)),
            At(1, "sensor.temp_c", 33.0, "env-2", {"position": "inlet"}),  # avg 29
            At(100, "sensor.temp_c", 26.0, "env-2", {"position": "inlet"}),  # env-1 too old
        ],
        110,
        [(1, "firing", "high_warning"), (100, "resolved", "high_warning")],
    ),
    (
        "ratio: PUE per site from facility and IT meters",
        """
rules:
  - id: pue
    kind: ratio
    numerator: {metric: meter.power_w, tags: {scope: facility}}
    denominator: {metric: meter.power_w, tags: {scope: it}}
    group_by: [site]
    levels: {low_critical: 1.0, high_warning: 2.0}
""",
        [
            At(0, "meter.power_w", 1000.0, "m-it", {"scope": "it"}),
            At(1, "meter.power_w", 1500.0, "m-fac", {"scope": "facility"}),
            At(10, "meter.power_w", 2100.0, "m-fac", {"scope": "facility"}),
            At(20, "meter.power_w", 900.0, "m-fac", {"scope": "facility"}),
            At(30, "meter.power_w", 1400.0, "m-fac", {"scope": "facility"}),
        ],
        40,
        [
            (10, "firing", "high_warning"),
            (20, "updated", "low_critical"),
            (30, "resolved", "low_critical"),
        ],
    ),
    (
        "imbalance: three phases of one PDU",
        """
rules:
  - id: imbalance
    kind: imbalance
    levels: {high_warning: 15, high_critical: 20}
""",
        [
            At(0, "pdu.phase_current_a", 10.0, "pdu-1", {"phase": "L1"}),
            At(0, "pdu.phase_current_a", 10.0, "pdu-1", {"phase": "L2"}),
            At(0, "pdu.phase_current_a", 10.5, "pdu-1", {"phase": "L3"}),
            At(10, "pdu.phase_current_a", 14.0, "pdu-1", {"phase": "L3"}),
            At(20, "pdu.phase_current_a", 10.0, "pdu-1", {"phase": "L3"}),
        ],
        30,
        [(10, "firing", "high_critical"), (20, "resolved", "high_critical")],
    ),
    (
        "fire risk: smoke alert plus a fast rise in the same room, then action",
        """
rules:
  - id: fire
    kind: fire_risk
    rise_c: 5
    window_s: 900
""",
        [
            *temps((0, 22)),
            At(10, "sensor.smoke_level", "alert", "vesda-1"),
            *temps((20, 24), (30, 27.5)),
            At(40, "sensor.smoke_level", "action", "vesda-1"),
            At(50, "sensor.smoke_level", "normal", "vesda-1"),
        ],
        60,
        # action at 40 raises the level within the same critical incident: no new alert
        [(30, "firing", "smoke_and_heat"), (50, "resolved", "smoke_action")],
    ),
    (
        "fire risk: heat in another room does not count",
        """
rules:
  - id: fire
    kind: fire_risk
""",
        [
            At(0, "sensor.temp_c", 22.0, "env-9", {"room": "hall-b"}),
            At(10, "sensor.smoke_level", "alert", "vesda-1"),
            At(20, "sensor.temp_c", 30.0, "env-9", {"room": "hall-b"}),
        ],
        30,
        [],
    ),
    (
        "redundancy: A+B feed current against one feed's rating (2N)",
        """
rules:
  - id: two-n
    kind: redundancy
    levels: {high_warning: 80, high_critical: 100}
""",
        [
            At(0, "pdu.rated_current_a", 16.0, "pdu-a"),
            At(0, "pdu.rated_current_a", 16.0, "pdu-b"),
            At(1, "pdu.phase_current_a", 6.0, "pdu-a", {"phase": "L1"}),
            At(1, "pdu.phase_current_a", 6.0, "pdu-b", {"phase": "L1"}),
            At(10, "pdu.phase_current_a", 7.0, "pdu-a", {"phase": "L1"}),
            At(10, "pdu.phase_current_a", 7.0, "pdu-b", {"phase": "L1"}),
            At(20, "pdu.phase_current_a", 10.0, "pdu-a", {"phase": "L1"}),
            At(30, "pdu.phase_current_a", 5.0, "pdu-a", {"phase": "L1"}),
            At(30, "pdu.phase_current_a", 5.0, "pdu-b", {"phase": "L1"}),
        ],
        40,
        [
            (10, "firing", "high_warning"),
            (20, "updated", "high_critical"),
            (30, "resolved", "high_critical"),
        ],
    ),
    (
        "UPS runtime below the generator start time",
        """
rules:
  - id: runtime
    kind: ups_runtime
    generator_start_s: 60
    margin_s: 30
""",
        [
            At(0, "ups.output_source", "normal", "ups-1"),
            At(0, "ups.battery_runtime_s", 600.0, "ups-1"),
            At(10, "ups.battery_runtime_s", 80.0, "ups-1"),
            At(20, "ups.output_source", "battery", "ups-1"),
            At(30, "ups.battery_runtime_s", 900.0, "ups-1"),
        ],
        40,
        [
            (10, "firing", "short"),
            (20, "updated", "short_on_battery"),
            (30, "resolved", "short_on_battery"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("rules", "steps", "until", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_rule_kind_stream(
    rules: str, steps: list[At], until: float, expected: list[tuple[float, str, str]]
) -> None:
    assert play(rules, steps, until) == expected


STALE = """
rules:
  - id: down
    kind: stale
    intervals: 3
"""
DEVICES = {"env-1": DeviceInfo({**RACK, "device": "env-1", "kind": "sensor"}, 10.0)}


def test_stale_fires_after_n_silent_intervals_and_resolves_when_heard() -> None:
    steps = [At(t, "sensor.temp_c", 22.0) for t in range(0, 51, 10)] + [
        At(100, "sensor.temp_c", 22.0)
    ]
    assert play(STALE, steps, 110, devices=DEVICES) == [
        (81, "firing", "no_data"),
        (100, "resolved", "no_data"),
    ]


def test_failed_polls_mean_down_at_once() -> None:
    steps = [
        At(0, "device.up", True),
        At(10, "device.up", False),
        At(20, "device.up", False),
        At(30, "device.up", True),
    ]
    assert play(STALE, steps, 40, devices=DEVICES) == [
        (10, "firing", "down"),
        (30, "resolved", "down"),
    ]


def test_a_device_never_heard_is_down_after_the_intervals() -> None:
    assert play(STALE, [], 40, devices=DEVICES) == [(31, "firing", "no_data")]


def test_silent_metric_keeps_a_firing_alert_firing_and_marks_it_stale() -> None:
    steps = temps((0, 30), (10, 30), (200, 24))
    seen = play(
        inlet(), steps, 210, devices=DEVICES, events=("firing", "stale", "fresh", "resolved")
    )
    # 3 intervals of 10 s after the last reading at 10 s: stale, never resolved by silence
    assert seen == [
        (0, "firing", "high_warning"),
        (41, "stale", "high_warning"),
        (200, "fresh", "high_warning"),
        (200, "resolved", "high_warning"),
    ]


def test_pending_then_cancelled_is_visible_but_never_fires() -> None:
    seen = play(
        inlet(for_s=60), temps((10, 28), (20, 25)), 100, events=("pending", "cancelled", "firing")
    )
    assert seen == [(10, "pending", "high_warning"), (20, "cancelled", "high_warning")]


def test_startup_grace_holds_everything_until_the_first_poll_round() -> None:
    seen = play(inlet(), temps((5, 33)), 60, settings=EngineSettings(startup_grace_s=30))
    assert seen == [(30, "firing", "high_critical")]


def test_alert_readings_coming_back_through_the_bus_are_not_proof_of_life() -> None:
    steps = [At(0, "device.up", True)] + [At(t, "alert.event", "firing") for t in range(5, 60, 5)]
    assert play(STALE, steps, 40, devices=DEVICES) == [(31, "firing", "no_data")]


def test_shipped_feed_lost_rule_raises_one_incident_per_feed_and_room() -> None:
    """pdu.feed_lost (power pack): the A PDUs of two racks lose voltage together; one
    incident keyed by the feed, none for the B side that stays live."""
    rules = [r for r in load_pack("power") if r.id == "pdu.feed_lost"]
    clock = ManualClock(0.0)
    engine = RuleEngine(rules, clock=clock)
    pdus = {"pdu-a01-a": ("a01", "A"), "pdu-a01-b": ("a01", "B")}
    pdus |= {"pdu-a02-a": ("a02", "A"), "pdu-a02-b": ("a02", "B")}
    fired: list[tuple[float, str, str]] = []
    for t in range(0, 1200, 60):
        clock.set(float(t))
        for device, (rack, feed) in pdus.items():
            dead = feed == "A" and 120 <= t < 600
            tags = {**RACK, "rack": rack, "device": device, "kind": "pdu", "feed": feed}
            for phase in ("1", "2", "3"):
                volts = 0.0 if dead else 230.0
                row = {**tags, "phase": phase}
                engine.observe(Reading(device, "pdu.phase_voltage_v", volts, "V", t * 10**9, row))
        engine.tick()
        fired += [
            (clock(), tr.event, tr.incident.key)
            for tr in engine.take().transitions
            if tr.event in ("firing", "resolved")
        ]
    key = "site=par1/room=hall-a/feed=A"
    # for_s 60: the second dead poll fires; clear_for_s 300 after the first live one
    assert fired == [(180.0, "firing", key), (900.0, "resolved", key)]
