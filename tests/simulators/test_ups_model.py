"""UpsModel over hours of simulated time (pure: no clock, no sleeps)."""

from __future__ import annotations

import itertools

import pytest

from dcim.clock import SimClock
from simulators.ups import AlarmKind, BatteryStatus, OutputSource, UpsModel, UpsState


def run(model: UpsModel, until_s: float, every_s: float) -> list[UpsState]:
    states = []
    t = model.time_s
    while t < until_s:
        t += every_s
        model.advance_to(t)
        states.append(model.state())
    return states


def test_a_day_on_utility_stays_in_plausible_ranges() -> None:
    model = UpsModel(3000, 2700, seed=7)
    states = run(model, 24 * 3600, 60)
    for s in states:
        assert s.utility_on
        assert s.output_source is OutputSource.NORMAL
        assert s.battery_status is BatteryStatus.NORMAL
        assert s.alarms == ()
        assert s.seconds_on_battery == 0
        assert s.charge_percent == 100.0
        (line,) = s.input_lines
        assert 212 < line.voltage_v < 248
        assert 49.95 <= line.frequency_hz <= 50.05
        assert line.power_w > s.output_lines[0].power_w  # conversion losses
        (out,) = s.output_lines
        assert 228 < out.voltage_v < 232
        assert 2 <= out.percent_load <= 115
        assert 18 < s.battery_temperature_c < 32
        assert 54.0 < s.battery_voltage_v < 55.0  # float charge of a 48 V string
        assert 10 * 60 < s.runtime_s < 2 * 3600
    loads = [s.load_percent for s in states]
    assert max(loads) - min(loads) > 3  # drifts
    assert 30 < sum(loads) / len(loads) < 60  # around the 45 % base load
    temps = [s.battery_temperature_c for s in states]
    assert max(temps) - min(temps) > 0.5


def test_on_battery_runtime_falls_monotonically_to_depletion() -> None:
    model = UpsModel(3000, 2700, seed=3)
    model.advance_to(3600)
    model.set_utility(False)
    states = run(model, 3600 + 2 * 3600, 10)

    runtimes = [s.runtime_s for s in states]
    assert all(b <= a for a, b in itertools.pairwise(runtimes))
    charges = [s.charge_percent for s in states]
    assert all(b <= a for a, b in itertools.pairwise(charges))
    assert [s.seconds_on_battery for s in states[:3]] == [10, 20, 30]
    assert all(s.input_lines[0].voltage_v == 0 for s in states)
    assert states[0].input_line_bads == 1
    assert states[0].battery_current_a < 0  # discharging
    assert 40.0 < states[0].battery_voltage_v < 53.0

    first = states[0]
    assert first.output_source is OutputSource.BATTERY
    assert first.battery_status is BatteryStatus.NORMAL
    assert [a.kind for a in first.alarms] == [AlarmKind.ON_BATTERY]

    low = next(s for s in states if s.battery_status is BatteryStatus.LOW)
    assert 0 < low.runtime_s < 120
    assert {a.kind for a in low.alarms} == {AlarmKind.ON_BATTERY, AlarmKind.LOW_BATTERY}
    # An alarm keeps its id while present.
    on_batt_ids = {a.id for s in states for a in s.alarms if a.kind is AlarmKind.ON_BATTERY}
    assert len(on_batt_ids) == 1

    last = states[-1]
    assert last.battery_status is BatteryStatus.DEPLETED
    assert last.output_source is OutputSource.NONE
    assert last.runtime_s == 0
    assert last.output_lines[0].power_w == 0
    assert AlarmKind.UPS_OUTPUT_OFF in {a.kind for a in last.alarms}
    # Half-loaded 3 kVA unit with the default battery: roughly a quarter of an hour.
    on_battery_s = next(s for s in states if s.charge_percent == 0).seconds_on_battery
    assert 10 * 60 < on_battery_s < 30 * 60


def test_charge_recovers_when_utility_returns() -> None:
    model = UpsModel(6000, 5400, seed=11)
    model.set_utility(False)
    model.advance_to(600)
    drained = model.state().charge_percent
    assert drained < 70
    model.set_utility(True)
    states = run(model, 600 + 8 * 3600, 300)
    charges = [s.charge_percent for s in states]
    assert all(b >= a for a, b in itertools.pairwise(charges))
    assert states[0].battery_current_a > 0  # charging
    assert states[0].battery_voltage_v > 55.0  # bulk charge voltage
    assert charges[-1] > 99
    end = states[-1]
    assert end.output_source is OutputSource.NORMAL
    assert end.seconds_on_battery == 0
    assert end.alarms == ()
    assert end.battery_status is BatteryStatus.NORMAL


def test_same_seed_same_story_regardless_of_how_often_it_is_read() -> None:
    def story(read_every_s: float, seed: int) -> UpsState:
        model = UpsModel(3000, 2700, seed=seed)
        run(model, 1800, read_every_s)
        model.set_utility(False)
        run(model, 2400, read_every_s)
        return model.state()

    assert story(1, seed=5) == story(600, seed=5)
    assert story(1, seed=5) != story(1, seed=6)


def test_three_phase_lines_share_the_load() -> None:
    model = UpsModel(10000, 9000, seed=2, lines=3)
    model.advance_to(600)
    s = model.state()
    assert len(s.input_lines) == len(s.output_lines) == 3
    total_w = sum(o.power_w for o in s.output_lines)
    assert 0.2 * 9000 < total_w < 0.8 * 9000
    for out in s.output_lines:
        assert out.power_w == pytest.approx(total_w / 3, rel=0.15)
        # Percent load is per phase: a third of the rating each.
        assert out.percent_load == pytest.approx(out.power_w / 3000 * 100, rel=0.01)


def test_invalid_configurations_are_refused() -> None:
    with pytest.raises(ValueError, match="lines"):
        UpsModel(3000, 2700, lines=2)
    with pytest.raises(ValueError, match="rated"):
        UpsModel(1000, 2700)


def test_sim_clock_runs_at_speed() -> None:
    wall = [100.0]
    clock = SimClock(speed=60.0, start_s=5.0, now_fn=lambda: wall[0])
    assert clock.now() == 5.0
    wall[0] += 2.0
    assert clock.now() == 125.0
    assert clock.elapsed() == 120.0
