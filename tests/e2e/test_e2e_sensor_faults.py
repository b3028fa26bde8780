"""Sensor faults end to end on the hall model: the `sensor-faults` scenario (a rack probe
sticks, drifts at 6 °C/h, drops out, recovers) raises the stick, the drift and the
dropout once each, and a CRAC failure (a row warming together) raises no sensor fault.

The small site's four rack probes are read through the hall's own device views and
sent as its MQTT probes publish them (hundredths of a degree; a value the probe cannot
read is left out), one report per probe every 60 s of simulated time, into a rule
engine on the shipped default packs. Time is driven by hand, so two hours of warm-up
(the probes' baselines) and the scenario take a few seconds.

`test_e2e_alert_scenarios.py` plays the same scenario through the real SNMP agents and
collectors; there the APC probes read whole degrees (never judged stuck) and only two
probes are polled (too few peers for drift), so only the dropout shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dcim.alerts.config import AlertsConfig
from dcim.alerts.engine import EngineSettings, RuleEngine
from dcim.alerts.kinds.base import DeviceInfo
from dcim.alerts.model import Notification, Phase
from dcim.alerts.service import load_rules
from dcim.clock import ManualClock, SimClock
from dcim.inventory import iter_devices, load_config
from dcim.reading import Reading
from simulators.scenario import ScenarioPlayer, load_scenario
from simulators.site import Site

pytestmark = pytest.mark.slow

SITE_FILE = Path(__file__).resolve().parents[2] / "simulators" / "sites" / "small-site.yaml"
POLL_S = 60.0
START_S = 1_780_000_000.0
WARM_UP_S = 2 * 3600.0
SEED = 8
PROBE = "env-hall-1-A01"
INLET = f"device={PROBE}/position=inlet"
METRICS = ("sensor.temp_c", "sensor.humidity_pct", "sensor.dew_point_c", "sensor.status")


@dataclass
class Hall:
    site: Site
    time: ManualClock
    engine: RuleEngine
    probes: list[str]
    players: list[ScenarioPlayer] = field(default_factory=list)
    sent: list[Notification] = field(default_factory=list)
    #: (rule, key) -> (first fired, simulated seconds after the scenario start)
    fired: dict[tuple[str, str], float] = field(default_factory=dict)
    scenario_start: float = 0.0

    def now(self) -> float:
        return self.site.clock.now()

    def report(self) -> None:
        """Every rack probe reports once, as the simulator's MQTT probes publish."""
        now = self.now()
        for player in self.players:
            player.advance(now)
        self.site.model.advance_to(now)
        stamp = int(now * 1e9)
        for probe in self.probes:
            view = self.site.views[probe]
            tags = {**self.site_tags(probe), "position": "inlet"}
            for metric in METRICS:
                value = view.value(metric, tags)
                if value is None:
                    continue  # a value the probe cannot read is left out of its message
                if isinstance(value, float):
                    value = round(value, 2)
                unit = "degC" if metric in ("sensor.temp_c", "sensor.dew_point_c") else None
                self.engine.observe(Reading(probe, metric, value, unit, stamp, tags))
        self.engine.tick()
        out = self.engine.take()
        self.sent.extend(out.notifications)
        for incident in self.engine.open_incidents:
            if incident.phase is Phase.FIRING:
                self.fired.setdefault(
                    (incident.rule, incident.key), self.now() - self.scenario_start
                )

    def run_for(self, seconds: float) -> None:
        end = self.now() + seconds
        while self.now() + 1e-6 < end:
            self.time.now += POLL_S
            self.report()

    def site_tags(self, probe: str) -> dict[str, str]:
        return dict(self.devices[probe].tags)

    devices: dict[str, DeviceInfo] = field(default_factory=dict)


@pytest.fixture
def hall() -> Hall:
    config = load_config(SITE_FILE)
    time = ManualClock(0.0)
    site = Site(config, clock=SimClock(start_s=START_S, now_fn=time), seed=SEED)
    devices = {placed.device.id: DeviceInfo(placed.tags, POLL_S) for placed in iter_devices(config)}
    probes = sorted(
        d for d, info in devices.items() if d.startswith("env-") and info.tags.get("rack")
    )
    assert len(probes) == 4, probes
    engine = RuleEngine(
        load_rules(AlertsConfig()),
        clock=site.clock.now,
        devices={p: devices[p] for p in probes},
        settings=EngineSettings(escalate_after_s=None),
    )
    return Hall(site, time, engine, probes, devices=devices)


def _play(hall: Hall, name: str, after_s: float) -> None:
    hall.run_for(WARM_UP_S)
    assert hall.sent == [], "healthy probes raise nothing while the baselines are learnt"
    player = ScenarioPlayer(hall.site.model, load_scenario(name), hall.now())
    hall.players.append(player)
    hall.scenario_start = hall.now()
    hall.report()
    hall.run_for(player.scenario.duration_s + after_s)
    assert player.done


def test_sensor_faults_raise_stuck_drift_and_dropout_once_each(hall: Hall) -> None:
    _play(hall, "sensor-faults", after_s=15 * 60)
    fired = {rule: at for (rule, key), at in hall.fired.items()}
    keys = {key for rule, key in hall.fired}
    assert sorted(fired) == ["env.sensor_failed", "sensor.drift", "sensor.dropout", "sensor.stuck"]
    assert all(key.startswith(INLET) for key in keys), keys
    # each while its fault was on: stuck 1-10 min, drift 10-30 min, dropout 30-40 min
    assert 60 < fired["sensor.stuck"] <= 600
    assert 600 < fired["sensor.drift"] <= 1800
    assert 1800 < fired["env.sensor_failed"] <= fired["sensor.dropout"] <= 2400
    # one page per fault (the dropout is the unplugged status' same fact), all resolved
    paged = sorted((n.rule, n.event) for n in hall.sent if n.event in ("firing", "resolved"))
    assert paged == sorted(
        (rule, event)
        for rule in ("sensor.stuck", "sensor.drift", "env.sensor_failed")
        for event in ("firing", "resolved")
    )
    assert hall.engine.open_incidents == []


def test_a_crac_failure_is_no_sensor_fault(hall: Hall) -> None:
    inlet = {"position": "inlet"}
    before = {p: hall.site.views[p].value("sensor.temp_c", inlet) for p in hall.probes}
    warmed: dict[str, float] = {}
    original = hall.report

    def report() -> None:
        original()
        for probe in hall.probes:
            now = hall.site.views[probe].value("sensor.temp_c", inlet)
            assert isinstance(now, float)
            warmed[probe] = max(warmed.get(probe, 0.0), now - float(before[probe] or 0.0))

    hall.report = report  # type: ignore[method-assign]
    _play(hall, "crac-failure", after_s=15 * 60)
    # the failed CRAC's row warmed by degrees, together; the other row barely moved
    assert sorted(p for p, rise in warmed.items() if rise > 3.0) == [
        "env-hall-1-A01",
        "env-hall-1-A02",
    ]
    assert [rule for rule, _ in hall.fired if rule.startswith("sensor.")] == []
