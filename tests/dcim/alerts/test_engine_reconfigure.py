"""A reloaded config in a running rule engine: what is unchanged keeps its state."""

from __future__ import annotations

from dcim.alerts.engine import RuleEngine
from dcim.alerts.kinds.base import DeviceInfo
from dcim.alerts.model import Phase
from dcim.alerts.rules import parse_rules
from dcim.clock import ManualClock
from dcim.reading import Reading

RULES = """
rules:
  - id: down
    kind: stale
    intervals: 3
  - id: inlet
    kind: threshold
    metric: sensor.temp_c
    levels: {high_critical: 32}
  - id: rise
    kind: rate
    metric: sensor.temp_c
    delta: 5
    window_s: 600
"""


def info(name: str, room: str = "hall-a") -> DeviceInfo:
    return DeviceInfo({"site": "par1", "room": room, "device": name, "kind": "sensor"}, 10.0)


def reading(clock: ManualClock, device: DeviceInfo, value: float) -> Reading:
    name = device.tags["device"]
    return Reading(name, "sensor.temp_c", value, "C", int(clock() * 1e9), device.tags)


def test_unchanged_rules_keep_their_evaluator_and_incidents_survive() -> None:
    clock = ManualClock(0.0)
    devices = {"t1": info("t1"), "t2": info("t2"), "t3": info("t3")}
    rules = parse_rules(RULES, "test")
    engine = RuleEngine(rules, clock=clock, devices=devices)
    engine.observe(reading(clock, devices["t1"], 35.0))
    engine.observe(reading(clock, devices["t2"], 36.0))
    engine.take()
    firing = {i.labels["device"]: i for i in engine.open_incidents if i.rule == "inlet"}
    assert {d: i.phase for d, i in firing.items()} == {"t1": Phase.FIRING, "t2": Phase.FIRING}
    kept = engine._compiled["rise"][1]

    # t2 removed, t3 moved to another room, t4 added; "inlet" changed, "down" removed
    changed = parse_rules(RULES.replace("high_critical: 32", "high_critical: 34"), "test")
    changed = [r for r in changed if r.id != "down"]
    new_devices = {"t1": devices["t1"], "t3": info("t3", room="hall-b"), "t4": info("t4")}
    engine.reconfigure(changed, new_devices)
    out = engine.take()
    resolved = {
        (t.incident.rule, t.incident.labels.get("device"))
        for t in out.transitions
        if t.event == "resolved"
    }
    assert ("inlet", "t2") in resolved  # its device is gone
    assert ("inlet", "t1") not in resolved  # its rule changed, the incident carries on
    t1 = next(i for i in engine.open_incidents if i.labels.get("device") == "t1")
    assert t1.id == firing["t1"].id
    assert engine._compiled["rise"][1] is kept  # unchanged rule: same evaluator, same windows
    assert "down" not in engine.rules
    assert set(engine.devices) == {"t1", "t3", "t4"}
    resolved_t2 = next(
        t.incident for t in out.transitions if t.incident.labels.get("device") == "t2"
    )
    assert resolved_t2.summary.endswith("(device removed from the inventory)")


def test_a_device_added_by_a_reload_is_not_stale_from_the_start() -> None:
    clock = ManualClock(0.0)
    rules = parse_rules(RULES, "test")
    engine = RuleEngine(rules, clock=clock, devices={"t1": info("t1")})
    clock.advance(1000.0)  # long after start: silence since start would be 1000 s
    engine.reconfigure(rules, {"t1": info("t1"), "t9": info("t9")})
    engine.tick()
    out = engine.take()
    assert not [t for t in out.transitions if t.incident.labels.get("device") == "t9"]
    clock.advance(31.0)  # three 10 s intervals without a word from t9
    engine.tick()
    assert any(
        t.incident.labels.get("device") == "t9" and t.event == "pending"
        for t in engine.take().transitions
    )
