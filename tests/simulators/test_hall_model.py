"""The hall's physics, without any network: sums, redundancy, thermal lag, batteries."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from dcim.inventory import load_config, parse_config
from simulators.hall.model import HallModel
from simulators.hall.thermal import dew_point_c, relative_humidity_pct
from simulators.hall.topology import TopologyError, build_topology
from simulators.hall.views import view_for
from simulators.ups import OutputSource

SITES = Path(__file__).resolve().parents[2] / "simulators" / "sites"


@pytest.fixture
def model() -> HallModel:
    return HallModel(build_topology(load_config(SITES / "small-site.yaml")), seed=1)


def rack_pdus(model: HallModel, rack: str) -> tuple[str, str]:
    pdus = {model.topology.pdus[p].feed: p for p in model.topology.racks[rack].pdus}
    return pdus["A"], pdus["B"]


def test_loads_add_up_at_every_level(model: HallModel) -> None:
    model.advance_to(3 * 3600)
    for rack in model.topology.racks:
        a, b = rack_pdus(model, rack)
        fa, fb = model.flows[a], model.flows[b]
        assert fa.total_w + fb.total_w == pytest.approx(model.rack_w[rack])
        assert fa.total_w == pytest.approx(fb.total_w)  # both feeds up: half each
        for flow in (fa, fb):
            assert sum(flow.outlet_w) == pytest.approx(flow.total_w)
            assert sum(flow.branch_a) == pytest.approx(sum(flow.outlet_a))
            assert sum(flow.phase_a) == pytest.approx(sum(flow.branch_a))
            assert sum(flow.phase_w) == pytest.approx(flow.total_w)
    assert model.feed_w["A"] + model.feed_w["B"] == pytest.approx(sum(model.rack_w.values()))


def test_losing_feed_a_moves_every_rack_to_feed_b(model: HallModel) -> None:
    model.advance_to(600)
    model.set_feed("A", up=False)
    model.advance_to(900)
    for rack in model.topology.racks:
        a, b = rack_pdus(model, rack)
        assert model.flows[a].total_w == 0
        assert model.flows[a].voltage_v == 0
        assert model.flows[b].total_w == pytest.approx(model.rack_w[rack])
    ups_b = next(u for u in model.topology.ups.values() if u.feed == "B")
    assert model.ups_state(ups_b.id).output_lines[0].power_w * 3 == pytest.approx(
        model.feed_w["B"], rel=0.02
    )


def test_crac_failure_heats_its_rows_over_minutes_and_recovery_settles(model: HallModel) -> None:
    crac = next(iter(model.topology.cracs.values()))
    hot = [r for r in model.topology.racks.values() if r.row in crac.serves]
    other = [r for r in model.topology.racks.values() if r.row not in crac.serves]
    model.advance_to(600)
    before = {r.id: model.thermal.inlet_c[r.id] for r in hot + other}
    model.set_crac(crac.id, running=False)
    model.advance_to(660)
    after_1min = {r.id: model.thermal.inlet_c[r.id] for r in hot}
    model.advance_to(600 + 30 * 60)
    after_30min = {r.id: model.thermal.inlet_c[r.id] for r in hot + other}
    for r in hot:
        assert after_1min[r.id] - before[r.id] < 2.0  # not instantly
        assert after_30min[r.id] - before[r.id] > 4.0  # but clearly, within the half hour
        assert after_30min[r.id] - before[r.id] > after_30min[other[0].id] - before[other[0].id]
    model.set_crac(crac.id, running=True)
    model.advance_to(600 + 90 * 60)
    for r in hot:
        assert abs(model.thermal.inlet_c[r.id] - before[r.id]) < 1.0


def test_utility_outage_runtime_falls_monotonically_and_generator_recharges(
    model: HallModel,
) -> None:
    model.advance_to(600)
    model.set_utility(False)
    runtimes = []
    for t in range(605, 600 + 600, 5):
        model.advance_to(t)
        runtimes.append(model.ups_state("ups-a").runtime_s)
    assert model.ups_state("ups-a").output_source is OutputSource.BATTERY
    assert all(b <= a for a, b in itertools.pairwise(runtimes))
    assert runtimes[-1] < runtimes[0]
    assert not model.crac_running(next(iter(model.topology.cracs)))  # cooling is not on UPS
    model.set_generator(True)
    model.advance_to(1800)
    assert model.ups_state("ups-a").output_source is OutputSource.NORMAL
    assert model.ups_state("ups-a").battery_current_a > 0  # recharging


def test_humidity_and_dew_point_are_consistent(model: HallModel) -> None:
    model.advance_to(3600)
    for sid, s in model.topology.sensors.items():
        if s.role != "env":
            continue
        env = model.env(sid)
        assert env.inlet_c is not None
        assert env.inlet_rh is not None
        assert env.dew_point_c == pytest.approx(dew_point_c(env.inlet_c, env.inlet_rh), abs=0.01)
        assert env.outlet_rh is not None
        assert env.outlet_rh < env.inlet_rh
    assert relative_humidity_pct(20.0, 20.0) == pytest.approx(100.0)


def test_same_seed_same_values() -> None:
    topo = build_topology(load_config(SITES / "small-site.yaml"))
    a, b = HallModel(topo, seed=5), HallModel(topo, seed=5)
    for m in (a, b):
        m.advance_to(1800)
        m.set_crac(next(iter(topo.cracs)), running=False)
        m.advance_to(3600)
    assert a.rack_w == b.rack_w
    assert a.thermal == b.thermal


def test_views_answer_vocabulary_metrics(model: HallModel) -> None:
    pdu = next(iter(model.topology.pdus))
    view = view_for(model, pdu, lambda: None)
    total = view.value("pdu.power_w", {})
    assert isinstance(total, float)
    outlets = [view.value("pdu.outlet_power_w", {"outlet": str(i)}) for i in range(1, 25)]
    assert sum(float(w or 0) for w in outlets) == pytest.approx(total)
    assert view.value("pdu.phase_current_a", {"phase": "4"}) is None
    assert view.value("no.such_metric", {}) is None
    meter = view_for(model, "meter-1", lambda: None)
    facility = meter.value("meter.power_w", {"scope": "facility"})
    it = meter.value("meter.power_w", {"scope": "it"})
    assert isinstance(facility, float)
    assert isinstance(it, float)
    assert 1.1 < facility / it < 2.0  # a plausible PUE


def test_bad_simulator_tags_name_the_device_and_field() -> None:
    text = (SITES / "small-site.yaml").read_text()
    text = text.replace('tags: {feed: "B", rated_a', 'tags: {feed: "C", rated_a', 1)
    text = text.replace('capacity_w: "30000"', 'capacity_w: "lots"', 1)
    with pytest.raises(TopologyError) as err:
        build_topology(parse_config(text))
    problems = "\n".join(err.value.problems)
    assert "tags.feed: 'C', expected one of A, B" in problems
    assert "device crac-hall-1-1: tags.capacity_w: not a number: 'lots'" in problems
