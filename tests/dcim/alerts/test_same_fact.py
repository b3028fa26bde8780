"""One fact, one page: rule pairs declared `same_as` (the PDU's own branch state and our
80 % rule on the same branch, a UPS trap and the polled output source, a CRAC's alarm,
fault mode and condition count) page once and resolve once, with the shipped packs and
a hand-driven clock."""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest

from dcim.alerts.engine import EngineSettings, RuleEngine
from dcim.alerts.kinds.base import DeviceInfo
from dcim.alerts.model import Incident, Notification, Phase
from dcim.alerts.rules import RuleError, load_pack, merge_rules, parse_rules
from dcim.clock import ManualClock
from dcim.reading import Reading, Value

PLACE = {"site": "par1", "room": "hall-a", "row": "r1", "rack": "a01"}
POLL_S = 10.0


class Hall:
    """The engine on the shipped packs; `poll` feeds one round of readings, then time passes."""

    def __init__(self, *packs: str, kinds: Mapping[str, str]) -> None:
        self.clock = ManualClock(0.0)
        devices = {
            name: DeviceInfo({**PLACE, "device": name, "kind": kind}, POLL_S)
            for name, kind in kinds.items()
        }
        self.engine = RuleEngine(
            merge_rules(load_pack(p) for p in packs),
            clock=self.clock,
            devices=devices,
            settings=EngineSettings(escalate_after_s=None),
        )
        self.kinds = kinds
        self.sent: list[Notification] = []

    def reading(self, device: str, metric: str, value: Value, **tags: str) -> Reading:
        all_tags = {**PLACE, "device": device, "kind": self.kinds[device], **tags}
        return Reading(device, metric, value, None, int(self.clock() * 1e9), all_tags)

    def poll(self, readings: list[Reading], rounds: int = 1) -> None:
        for _ in range(rounds):
            for reading in readings:
                self.engine.observe(
                    Reading(
                        reading.device_id,
                        reading.metric,
                        reading.value,
                        reading.unit,
                        int(self.clock() * 1e9),
                        reading.tags,
                    )
                )
            self.engine.tick()
            self.sent.extend(self.engine.take().notifications)
            self.clock.advance(POLL_S)

    def pages(self) -> list[tuple[str, str, str, str]]:
        return [(n.event, n.rule, n.key, n.severity.value) for n in self.sent]

    def incident(self, rule: str, key: str) -> Incident:
        found = [i for i in self.engine.open_incidents if (i.rule, i.key) == (rule, key)]
        assert len(found) == 1, [(i.rule, i.key) for i in self.engine.open_incidents]
        return found[0]


def branch(
    hall: Hall, number: str, amps: float | None, state: str | None, rating: float | None = 20.0
) -> list[Reading]:
    """One branch of an APC PDU: current, breaker rating and the PDU's own load state."""
    out = []
    if rating is not None:
        out.append(hall.reading("pdu-1", "pdu.branch_rating_a", rating, branch=number))
    if amps is not None:
        out.append(hall.reading("pdu-1", "pdu.branch_current_a", amps, branch=number))
    if state is not None:
        out.append(hall.reading("pdu-1", "pdu.branch_load_state", state, branch=number))
    return out


@pytest.fixture
def pdu_hall() -> Hall:
    return Hall("power", "ups", kinds={"pdu-1": "pdu", "ups-1": "ups"})


B1 = "device=pdu-1/branch=1"
B2 = "device=pdu-1/branch=2"


def test_one_overloaded_branch_pages_once_and_keeps_both_facts(pdu_hall: Hall) -> None:
    hall = pdu_hall
    hall.poll(branch(hall, "1", 8.0, "normal"), rounds=3)
    # 17 A on a 20 A breaker: 85 % (our 80 % rule) and the PDU's own near-overload
    hall.poll(branch(hall, "1", 17.0, "near_overload"), rounds=12)
    assert hall.pages() == [("firing", "pdu.branch_load_state", B1, "warning")]
    state = hall.incident("pdu.branch_load_state", B1)
    load = hall.incident("pdu.branch_load", B1)
    # our rule fired too (after its 60 s): visible, grouped under the device's state
    assert load.phase is Phase.FIRING
    assert load.parent == state.id
    assert state.children == {load.id}
    assert hall.sent[0].children == 1  # the page says it stands for the (pending) load too
    # the PDU's state clears first (its own hysteresis): the fact still holds by our rule,
    # so the parent stays open rather than resolving while the branch is still over 80 %
    hall.poll(branch(hall, "1", 17.0, "normal"), rounds=6)
    assert hall.pages() == [("firing", "pdu.branch_load_state", B1, "warning")]
    assert state.phase is Phase.FIRING
    # load back down: our rule clears after its 300 s, and the pair resolves once
    hall.poll(branch(hall, "1", 8.0, "normal"), rounds=40)
    assert hall.pages() == [
        ("firing", "pdu.branch_load_state", B1, "warning"),
        ("resolved", "pdu.branch_load_state", B1, "warning"),
    ]
    assert hall.engine.open_incidents == []


def test_two_overloaded_branches_page_twice(pdu_hall: Hall) -> None:
    hall = pdu_hall
    both = branch(hall, "1", 17.0, "near_overload") + branch(hall, "2", 16.5, "near_overload")
    hall.poll(both, rounds=12)
    assert sorted(hall.pages()) == [
        ("firing", "pdu.branch_load_state", B1, "warning"),
        ("firing", "pdu.branch_load_state", B2, "warning"),
    ]
    # each branch's load is grouped under its own branch's state, not the other's
    for key in (B1, B2):
        assert hall.incident("pdu.branch_load", key).parent == (
            hall.incident("pdu.branch_load_state", key).id
        )


def test_one_branch_by_state_the_other_by_current_page_separately(pdu_hall: Hall) -> None:
    hall = pdu_hall
    readings = branch(hall, "1", 10.0, "near_overload") + branch(hall, "2", 17.0, "normal")
    hall.poll(readings, rounds=12)
    assert sorted(hall.pages()) == [
        ("firing", "pdu.branch_load", B2, "warning"),
        ("firing", "pdu.branch_load_state", B1, "warning"),
    ]


def test_a_pdu_that_reports_only_the_state_still_pages(pdu_hall: Hall) -> None:
    hall = pdu_hall
    hall.poll(branch(hall, "1", None, "overload", rating=None), rounds=3)
    assert hall.pages() == [("firing", "pdu.branch_load_state", B1, "critical")]
    hall.poll(branch(hall, "1", None, "normal", rating=None), rounds=1)
    assert hall.pages()[-1] == ("resolved", "pdu.branch_load_state", B1, "critical")


def test_a_pdu_without_a_state_pages_by_our_rule(pdu_hall: Hall) -> None:
    hall = pdu_hall
    hall.poll(branch(hall, "1", 17.0, None), rounds=12)
    assert hall.pages() == [("firing", "pdu.branch_load", B1, "warning")]


def test_the_first_to_fire_is_the_parent(pdu_hall: Hall) -> None:
    hall = pdu_hall
    # the PDU's near-overload threshold is set higher than 80 %: our rule fires first
    hall.poll(branch(hall, "1", 17.0, "normal"), rounds=12)
    assert hall.pages() == [("firing", "pdu.branch_load", B1, "warning")]
    hall.poll(branch(hall, "1", 17.5, "near_overload"), rounds=3)
    assert hall.pages() == [("firing", "pdu.branch_load", B1, "warning")]
    load = hall.incident("pdu.branch_load", B1)
    assert hall.incident("pdu.branch_load_state", B1).parent == load.id


def test_a_worse_fact_is_never_hidden_behind_a_milder_parent(pdu_hall: Hall) -> None:
    hall = pdu_hall
    hall.poll(branch(hall, "1", 17.0, "near_overload"), rounds=12)
    # 19 A = 95 %: critical by our rule while the PDU still says near-overload (warning)
    hall.poll(branch(hall, "1", 19.0, "near_overload"), rounds=12)
    assert hall.pages() == [
        ("firing", "pdu.branch_load_state", B1, "warning"),
        ("firing", "pdu.branch_load", B1, "critical"),
    ]
    assert hall.incident("pdu.branch_load", B1).parent is None


def test_a_ups_trap_and_the_polled_state_page_once_and_resolve_once() -> None:
    hall = Hall("ups", "ups-traps", kinds={"ups-1": "ups"})
    hall.poll([hall.reading("ups-1", "ups.output_source", "normal")], rounds=2)
    hall.poll([hall.reading("ups-1", "event.trap", "on_battery")])
    hall.poll([hall.reading("ups-1", "ups.output_source", "battery")], rounds=90)  # 15 min
    # the trap paged; the poll confirmed the same fact, grouped under it; the trap's
    # 600 s auto-clear does not end the incident while the UPS is still on battery
    assert hall.pages() == [("firing", "ups.trap_on_battery", "device=ups-1", "critical")]
    trap = hall.incident("ups.trap_on_battery", "device=ups-1")
    assert hall.incident("ups.output_source", "device=ups-1").parent == trap.id
    hall.poll([hall.reading("ups-1", "ups.output_source", "normal")], rounds=2)
    assert hall.pages() == [
        ("firing", "ups.trap_on_battery", "device=ups-1", "critical"),
        ("resolved", "ups.trap_on_battery", "device=ups-1", "critical"),
    ]
    assert hall.engine.open_incidents == []


def test_a_failed_crac_pages_once_for_alarm_fault_and_conditions() -> None:
    hall = Hall("cooling", kinds={"crac-1": "crac"})
    failed = [
        hall.reading("crac-1", "crac.alarm", True, alarm="common"),
        hall.reading("crac-1", "crac.operating_mode", "fault"),
        hall.reading("crac-1", "crac.alarms_active", 2),
    ]
    hall.poll(failed, rounds=3)
    assert hall.pages() == [("firing", "crac.alarm", "device=crac-1/alarm=common", "critical")]
    alarm = hall.incident("crac.alarm", "device=crac-1/alarm=common")
    assert {i.rule for i in hall.engine.open_incidents if i.parent == alarm.id} == {
        "crac.fault",
        "crac.conditions",
    }


@pytest.mark.parametrize(
    ("within", "problem"),
    [("[branch]", "within must include device"), ("[device, shelf]", "unknown label(s) shelf")],
)
def test_same_as_must_name_known_labels_of_one_device(within: str, problem: str) -> None:
    text = (
        "rules:\n  - id: a\n    kind: state\n    metric: m\n    states: {x: warning}\n"
        f"    same_as: [{{rules: [b], within: {within}}}]\n"
    )
    with pytest.raises(RuleError, match=re.escape(problem)):
        parse_rules(text, "rules.yaml")
