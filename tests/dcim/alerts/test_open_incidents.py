"""The engine's periodic statement of open incidents (dcim/alerts/snapshot.py), for dashboards.

Through the real AlertEngine (rules, store, flush) with a manual clock: what it
emits is what the InfluxDB sink writes.
"""

from __future__ import annotations

from pathlib import Path

from dcim.alerts.config import AlertsConfig
from dcim.alerts.kinds.base import DeviceInfo
from dcim.alerts.rules import load_pack
from dcim.alerts.service import AlertEngine
from dcim.alerts.snapshot import DEFAULT_PERIOD_S, HEARTBEAT_INCIDENT, METRIC
from dcim.clock import ManualClock
from dcim.reading import Reading

TAGS = {"site": "s1", "room": "r1", "device": "ups-1", "kind": "ups"}


def _source(value: str, clock: ManualClock) -> Reading:
    return Reading("ups-1", "ups.output_source", value, None, int(clock() * 1e9), TAGS)


def test_firing_incidents_are_restated_every_period_and_closed_at_once(tmp_path: Path) -> None:
    clock = ManualClock(1000.0)
    engine = AlertEngine(
        AlertsConfig(packs=["ups"], startup_grace_s=0),
        load_pack("ups"),
        {"ups-1": DeviceInfo(TAGS, 30.0)},
        tmp_path,
        clock=clock,
    )
    emitted: list[Reading] = []
    engine._emit = emitted.extend  # what `run` hands the monitor's bus
    engine.process([_source("battery", clock)])
    stated = [r for r in emitted if r.metric == METRIC]
    incident = [r for r in stated if r.tags["incident"] != HEARTBEAT_INCIDENT]
    assert [r.value for r in incident] == [30]  # critical, firing
    assert incident[0].tags["rule"] == "ups.output_source"
    assert incident[0].tags["severity"] == "critical"
    assert incident[0].tags["since"].endswith("Z")
    assert [r.tags["site"] for r in stated if r.tags["incident"] == HEARTBEAT_INCIDENT] == ["s1"]

    emitted.clear()
    clock.advance(DEFAULT_PERIOD_S / 2)
    engine.tick()
    assert not [r for r in emitted if r.metric == METRIC]  # not due yet, nothing changed
    clock.advance(DEFAULT_PERIOD_S)
    engine.tick()
    again = [r for r in emitted if r.metric == METRIC and r.tags["incident"] != "-"]
    assert [r.value for r in again] == [30]  # restated: still open, whatever the time range

    emitted.clear()
    engine.acknowledge(incident[0].tags["incident"], "noc")
    acked = [r for r in emitted if r.metric == METRIC and r.tags["incident"] != "-"]
    assert [(r.value, r.tags["state"]) for r in acked] == [(25, "acknowledged")]

    emitted.clear()
    engine.process([_source("normal", clock)])
    closed = [r for r in emitted if r.metric == METRIC and r.tags["incident"] != "-"]
    assert [r.value for r in closed] == [0]  # leaves the active view at once
    engine.store.close()
