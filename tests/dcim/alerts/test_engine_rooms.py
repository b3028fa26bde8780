"""Rooms moving between monitors: released without a word, adopted without a second page."""

from __future__ import annotations

import json

from dcim.alerts.engine import RuleEngine
from dcim.alerts.kinds.base import DeviceInfo
from dcim.alerts.model import Phase
from dcim.alerts.rules import parse_rules
from dcim.alerts.store import incident_from_json, incident_to_json
from dcim.clock import ManualClock
from dcim.reading import Reading

RULES = """
rules:
  - id: on_battery
    kind: state
    metric: ups.output_source
    states: {battery: critical}
"""
DEVICES = {
    "ups-a": DeviceInfo({"site": "dc1", "room": "hall-a", "device": "ups-a", "kind": "ups"}, 1.0),
    "ups-b": DeviceInfo({"site": "dc1", "room": "hall-b", "device": "ups-b", "kind": "ups"}, 1.0),
}


def engine(clock: ManualClock) -> RuleEngine:
    return RuleEngine(parse_rules(RULES, "test"), clock=clock, devices=DEVICES)


def source(clock: ManualClock, device: str, state: str) -> Reading:
    tags = DEVICES[device].tags
    return Reading(device, "ups.output_source", state, None, int(clock() * 1e9), tags)


def test_a_released_room_is_forgotten_silently_and_its_readings_ignored() -> None:
    clock = ManualClock(0.0)
    old = engine(clock)
    old.observe(source(clock, "ups-a", "battery"))
    old.observe(source(clock, "ups-b", "battery"))
    fired = old.take()
    assert [n.event for n in fired.notifications] == ["firing", "firing"]

    forgotten = old.release_rooms({("dc1", "hall-a")})
    assert [i.labels["device"] for i in forgotten] == ["ups-a"]
    old.observe(source(clock, "ups-a", "normal"))  # a last reading still in the queue
    old.observe(source(clock, "ups-a", "battery"))
    clock.advance(5.0)
    old.tick()
    out = old.take()
    assert out.notifications == []  # no resolve, no second page: the new owner speaks now
    assert [i.labels["device"] for i in old.open_incidents] == ["ups-b"]


def test_an_adopted_incident_is_not_paged_again_and_resolves_once() -> None:
    clock = ManualClock(0.0)
    old = engine(clock)
    old.observe(source(clock, "ups-a", "battery"))
    old.take()
    (incident,) = old.release_rooms({("dc1", "hall-a")})
    carried = incident_from_json(incident_to_json(incident))  # as it travels through etcd

    clock.advance(3.0)
    new = engine(clock)
    new.release_rooms({("dc1", "hall-a"), ("dc1", "hall-b")})  # started owning nothing
    assert new.adopt_rooms({("dc1", "hall-a")}, [carried]) == 1
    new.observe(source(clock, "ups-a", "battery"))  # still on battery: the same incident
    out = new.take()
    assert out.notifications == []
    assert [i.id for i in out.changed] == [incident.id]  # stored by the new owner
    new.observe(source(clock, "ups-a", "normal"))
    out = new.take()
    assert [(n.event, n.incident_id) for n in out.notifications] == [("resolved", incident.id)]
    assert new.open_incidents == []


def test_adopting_what_is_already_open_keeps_ours() -> None:
    clock = ManualClock(0.0)
    one = engine(clock)
    one.observe(source(clock, "ups-a", "battery"))
    one.take()
    mine = one.open_incidents[0]
    other = incident_from_json(incident_to_json(mine))
    other_data = json.loads(incident_to_json(other))
    other_data["id"] = "someone-else"
    stranger = incident_from_json(json.dumps(other_data))
    assert one.adopt_rooms({("dc1", "hall-a")}, [stranger]) == 0
    assert [i.id for i in one.open_incidents] == [mine.id]
    assert mine.phase is Phase.FIRING
