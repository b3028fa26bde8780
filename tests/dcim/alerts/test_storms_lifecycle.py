"""No storms (degraded monitoring, parent/child grouping, flapping) and the incident
lifecycle (acknowledge, silence, maintenance, escalation, fire alarms), with a hand clock."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from dcim.alerts.engine import EngineSettings, RuleEngine
from dcim.alerts.kinds.base import DeviceInfo
from dcim.alerts.model import Notification, Phase
from dcim.alerts.rules import parse_rules
from dcim.alerts.silences import Silence, parse_duration, parse_matchers
from dcim.alerts.tracker import FlapPolicy
from dcim.clock import ManualClock
from dcim.reading import Reading, Value

RULES = """
rules:
  - id: down
    kind: stale
    intervals: 3
  - id: inlet
    kind: threshold
    metric: sensor.temp_c
    levels: {high_warning: 27, high_critical: 32}
    hysteresis: 1
  - id: pdu.branch
    kind: threshold
    metric: pdu.branch_current_a
    levels: {high_warning: 12.8}
  - id: ups.on-battery
    kind: state
    metric: ups.output_source
    states: {battery: critical}
    explains: [{rules: ["pdu.*"], within: room}]
  - id: smoke
    kind: state
    metric: sensor.smoke_level
    states: {action: critical, fire1: critical, fire2: critical}
    fire_alarm: true
"""


def device(name: str, kind: str, site: str = "par1", room: str = "hall-a") -> DeviceInfo:
    tags = {"site": site, "room": room, "device": name, "kind": kind}
    return DeviceInfo(tags, 10.0)


class Harness:
    def __init__(self, devices: Mapping[str, DeviceInfo], settings: EngineSettings) -> None:
        self.clock = ManualClock(0.0)
        self.devices = devices
        self.engine = RuleEngine(
            parse_rules(RULES, "test"), clock=self.clock, devices=devices, settings=settings
        )
        self.sent: list[Notification] = []
        #: Devices that stopped answering; the others report device.up every 10 s.
        self.dead: set[str] = set()

    def feed(self, name: str, metric: str, value: Value, **tags: str) -> None:
        info = self.devices[name]
        all_tags = {**info.tags, **tags}
        self.engine.observe(Reading(name, metric, value, None, int(self.clock() * 1e9), all_tags))
        self.sent.extend(self.engine.take().notifications)

    def run_until(self, t: float) -> None:
        while self.clock() < t:
            self.clock.advance(1.0)
            if self.clock() % 10 == 0:
                for name in self.devices:
                    if name not in self.dead:
                        self.feed(name, "device.up", True)
            self.engine.tick()
            self.sent.extend(self.engine.take().notifications)

    def events(self) -> list[tuple[str, str, str]]:
        return [(n.event, n.rule, n.key) for n in self.sent]


@pytest.fixture
def hall() -> Harness:
    devices = {f"env-{i}": device(f"env-{i}", "sensor") for i in range(4)}
    devices["ups-1"] = device("ups-1", "ups")
    devices["pdu-1"] = device("pdu-1", "pdu")
    devices["pdu-2"] = device("pdu-2", "pdu", room="hall-b")
    devices["vesda-1"] = device("vesda-1", "sensor")
    devices["other-site"] = device("other-site", "sensor", site="lon1")
    return Harness(devices, EngineSettings(escalate_after_s=600, degraded_min_devices=3))


def test_many_devices_down_together_make_one_degraded_incident(hall: Harness) -> None:
    hall.run_until(10)
    hall.dead = {"env-0", "env-1", "env-2", "ups-1"}
    hall.run_until(60)
    assert hall.events() == [("firing", "dcim.monitoring_degraded", "site=par1")]
    degraded = hall.sent[0]
    assert degraded.children == 4
    assert "4 of 8 devices" in degraded.summary
    # they come back: the one incident resolves, no per-device resolve was owed
    hall.dead = set()
    hall.run_until(100)
    assert hall.events()[-1] == ("resolved", "dcim.monitoring_degraded", "site=par1")
    assert len(hall.sent) == 2


def test_one_device_down_is_its_own_alert_and_explains_its_metrics(hall: Harness) -> None:
    hall.feed("env-3", "device.up", False)
    hall.feed("env-3", "sensor.temp_c", 35.0)  # a last reading before it went quiet
    assert hall.events() == [("firing", "down", "device=env-3")]
    down, temp = sorted(hall.engine.open_incidents, key=lambda inc: inc.rule)
    assert (down.rule, temp.rule) == ("down", "inlet")
    assert temp.parent == down.id
    assert down.children == {temp.id}


def test_an_incident_that_fires_and_clears_in_one_batch_still_pages(hall: Harness) -> None:
    """A UPS on battery for a moment whose two readings reach the engine together (the
    monitor was busy): paged firing then resolved, as when they come one flush apart."""
    ups = hall.devices["ups-1"].tags
    at = int(hall.clock() * 1e9)
    hall.engine.observe(Reading("ups-1", "ups.output_source", "battery", None, at, ups))
    hall.engine.observe(Reading("ups-1", "ups.output_source", "normal", None, at, ups))
    sent = hall.engine.take().notifications
    assert [(n.event, n.rule, n.phase) for n in sent] == [
        ("firing", "ups.on-battery", Phase.FIRING),
        ("resolved", "ups.on-battery", Phase.RESOLVED),
    ]
    assert hall.engine.open_incidents == []
    # a silenced one stays quiet either way
    hall.engine.add_silence(Silence("s1", {"device": "ups-1"}, 0.0, 3600.0, "op"))
    hall.engine.observe(Reading("ups-1", "ups.output_source", "battery", None, at, ups))
    hall.engine.observe(Reading("ups-1", "ups.output_source", "normal", None, at, ups))
    assert hall.engine.take().notifications == []


def test_ups_on_battery_explains_pdu_alerts_in_its_room_only(hall: Harness) -> None:
    hall.feed("ups-1", "ups.output_source", "battery")
    hall.feed("pdu-1", "pdu.branch_current_a", 14.0, branch="1")  # same room: grouped
    hall.feed("pdu-2", "pdu.branch_current_a", 14.0, branch="1")  # other room: its own alert
    assert hall.events() == [
        ("firing", "ups.on-battery", "device=ups-1"),
        ("firing", "pdu.branch", "device=pdu-2/branch=1"),
    ]
    # the parent clears while the child still fires: the child is no longer explained
    hall.feed("ups-1", "ups.output_source", "normal")
    assert hall.events()[-2:] == [
        ("resolved", "ups.on-battery", "device=ups-1"),
        ("firing", "pdu.branch", "device=pdu-1/branch=1"),
    ]


def test_flapping_alert_is_detected_and_its_resolve_held() -> None:
    settings = EngineSettings(flap=FlapPolicy(count=3, window_s=600, hold_s=300))
    h = Harness({"env-0": device("env-0", "sensor")}, settings)
    for _ in range(3):
        h.feed("env-0", "sensor.temp_c", 28.0)
        h.run_until(h.clock() + 10)
        h.feed("env-0", "sensor.temp_c", 25.0)
        h.run_until(h.clock() + 10)
    assert [n.event for n in h.sent] == ["firing", "resolved", "firing", "resolved", "firing"]
    assert h.sent[-1].flapping
    started = h.clock()
    h.feed("env-0", "sensor.temp_c", 28.0)  # flaps on: still the same incident, nothing new
    h.feed("env-0", "sensor.temp_c", 25.0)
    h.run_until(started + 299)
    assert len(h.sent) == 5
    h.run_until(started + 301)
    assert h.sent[-1].event == "resolved"


def test_ack_records_who_when_and_stops_escalation(hall: Harness) -> None:
    hall.feed("ups-1", "ups.output_source", "battery")
    hall.feed("pdu-2", "pdu.branch_current_a", 20.0, branch="1")
    hall.run_until(100)
    ups = next(i for i in hall.engine.open_incidents if i.rule == "ups.on-battery")
    acked = hall.engine.acknowledge(ups.id, "alice", "generator starting")
    assert (acked.ack_by, acked.ack_at, acked.ack_comment) == ("alice", 100.0, "generator starting")
    hall.run_until(700)
    # only unacknowledged criticals escalate: the warning PDU alert does not either
    assert [e for e in hall.events() if e[0] == "escalated"] == []


def test_unacknowledged_critical_escalates_once(hall: Harness) -> None:
    hall.feed("ups-1", "ups.output_source", "battery")
    hall.run_until(599)
    assert [n.event for n in hall.sent] == ["firing"]
    hall.run_until(900)
    assert [n.event for n in hall.sent] == ["firing", "escalated"]


def test_silence_by_scope_and_time_holds_notifications_until_it_ends(hall: Harness) -> None:
    silence = Silence("s1", parse_matchers("room=hall-a"), 0.0, parse_duration("2m"), "bob")
    hall.engine.add_silence(silence)
    hall.feed("pdu-1", "pdu.branch_current_a", 14.0, branch="1")
    hall.feed("vesda-1", "sensor.smoke_level", "action")
    # fire alarms are never silenced
    assert hall.events() == [("firing", "smoke", "device=vesda-1")]
    hall.run_until(121)
    assert hall.events()[-1] == ("firing", "pdu.branch", "device=pdu-1/branch=1")


def test_maintenance_window_starts_later(hall: Harness) -> None:
    hall.engine.add_silence(Silence("m1", {"device": "pdu-*"}, 100.0, 200.0, "ops", "breaker work"))
    hall.feed("pdu-1", "pdu.branch_current_a", 14.0, branch="1")
    assert len(hall.sent) == 1
    hall.feed("pdu-1", "pdu.branch_current_a", 1.0, branch="1")
    hall.run_until(150)
    hall.feed("pdu-1", "pdu.branch_current_a", 14.0, branch="1")
    assert [n.event for n in hall.sent] == ["firing", "resolved"]


def test_fire_alarm_can_be_acknowledged(hall: Harness) -> None:
    hall.feed("vesda-1", "sensor.smoke_level", "fire1")
    incident = hall.engine.open_incidents[0]
    hall.engine.acknowledge(incident.id, "carol")
    assert incident.acknowledged
    assert incident.phase is Phase.FIRING


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "at least one"), ("color=red", "bad scope"), ("room", "bad scope")],
)
def test_bad_silence_scope_is_refused(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_matchers(text)


def test_durations() -> None:
    assert parse_duration("2h") == 7200
    assert parse_duration("90s") == 90
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("2 hours")


def test_an_ack_of_an_announced_incident_is_a_notification_of_its_own(hall: Harness) -> None:
    hall.feed("ups-1", "ups.output_source", "battery")
    (fired,) = hall.sent
    hall.engine.acknowledge(fired.incident_id, "alice", "generator starting")
    hall.sent.extend(hall.engine.take().notifications)
    acked = hall.sent[-1]
    assert (acked.event, acked.incident_id, acked.acknowledged_by) == (
        "acknowledged",
        fired.incident_id,
        "alice",
    )
    # an incident nobody was told of (silenced) is acknowledged quietly
    hall.engine.add_silence(Silence("s1", {"device": "pdu-1"}, 0.0, 3600.0, "bob"))
    hall.feed("pdu-1", "pdu.branch_current_a", 14.0, branch="1")
    quiet = next(i for i in hall.engine.open_incidents if i.rule == "pdu.branch")
    before = len(hall.sent)
    hall.engine.acknowledge(quiet.id, "alice")
    hall.sent.extend(hall.engine.take().notifications)
    assert len(hall.sent) == before
