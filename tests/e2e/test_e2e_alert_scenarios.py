"""The alert engine end to end: the small site's hall, polled for real, scenario by scenario.

`simulators/sites/small-site.yaml` is served by its real agents (SNMP for the UPSes,
PDUs, the Liebert CRAC and the APC uio probes; Modbus TCP for the meter and the
second CRAC), polled by the real collectors (`CollectorFactory` + `DevicePoller`,
as the monitor does), and every reading goes into a real `AlertEngine` (shipped
default rule packs, SQLite state, an outbox channel that records what would be
sent). Time is driven by hand: one poll round per poll interval of simulated time,
the hall model, the scenario player and the engine all read the same simulated clock,
so `for` delays, clear delays and the start-up grace pass in milliseconds.

Each scenario must raise EXACTLY the incidents of `EXPECTED` (rule, scope, worst
severity, and the parent rule when it is grouped under another incident), page
only the ungrouped ones, and resolve every one of them after recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from collectors.registry import CollectorFactory
from dcim.alerts.config import AlertsConfig
from dcim.alerts.kinds.base import DeviceInfo
from dcim.alerts.model import Incident, Notification, Phase, Severity
from dcim.alerts.notify.base import Notifier
from dcim.alerts.service import AlertEngine, load_rules
from dcim.clock import ManualClock, SimClock
from dcim.errors import ProfileError
from dcim.inventory import Config, iter_devices, parse_config
from dcim.poller import DevicePoller
from dcim.reading import Reading
from simulators.mib import OidTable
from simulators.scenario import ScenarioPlayer, load_scenario
from simulators.site import Site

pytestmark = pytest.mark.slow

SITE_FILE = Path(__file__).resolve().parents[2] / "simulators" / "sites" / "small-site.yaml"
#: Poll interval of every device in this test: the shipped rules are tuned for 60 s polls
#: ("two readings at 60 s polls", thermal packs); the site file says 30 s.
POLL_S = 60.0
#: Simulated start: a weekday morning (the hall's IT load follows the time of day).
START_S = 1_780_000_000.0
WARNING, CRITICAL = Severity.WARNING, Severity.CRITICAL
#: Hall model seed. Servers get random shares of a rack's load, so most seeds build racks
#: whose phases are 15-21 % apart: pdu.phase_imbalance then fires in steady state, as it
#: should on such a rack. Seed 8 is a hall balanced within 6 %, as an installer balances
#: phases; the fixture asserts it.
SEED = 8


@dataclass(frozen=True, slots=True)
class Expect:
    """One incident a scenario must raise: rule, scope key, worst severity, parent rule."""

    rule: str
    key: str
    severity: Severity
    #: Rule of the incident it is grouped under (never paged on its own), or None.
    under: str | None = None


#: Every scenario's incidents, in one place. Keys are the incident scopes the engine
#: builds: `device=<id>` plus table-row tags, or the group of an aggregate rule.
EXPECTED: dict[str, tuple[Expect, ...]] = {
    "steady-state": (),
    # both UPSes on battery until the generator takes the load (one incident per UPS)
    "utility-outage": (
        Expect("ups.output_source", "device=ups-a", CRITICAL),
        Expect("ups.output_source", "device=ups-b", CRITICAL),
    ),
    # 2N redundancy is gone while the B side carries every rack
    "feed-a-loss": (Expect("pdu.feed_lost", "site=lab/room=hall-1/feed=A", CRITICAL),),
    # the CRAC's common alarm; its condition count and the row-1 inlet alerts it explains
    # grouped under it
    "crac-failure": (
        Expect("crac.alarm", "device=crac-hall-1-1/alarm=common", CRITICAL),
        Expect("crac.conditions", "device=crac-hall-1-1", WARNING, under="crac.alarm"),
    ),
    # Alert stage is a warning; Action and above one fire-risk incident (fire alarm)
    "vesda-smoke": (
        Expect("fire.smoke_alert", "device=vesda-hall-1", WARNING),
        Expect("fire.risk", "site=lab/room=hall-1", CRITICAL),
    ),
    # the APC bank's own overload state pages; its current over the breaker rating the
    # profile reads (rPDU2BankPropertiesBreakerRating) past 90 % is the same fact
    # (same_as), grouped under it; its breaker trips (APC rPDU2 reports no trip state)
    "branch-overload": (
        Expect("pdu.branch_load_state", "device=pdu-hall-1-A01-a/branch=1", CRITICAL),
        Expect(
            "pdu.branch_load",
            "device=pdu-hall-1-A01-a/branch=1",
            CRITICAL,
            under="pdu.branch_load_state",
        ),
    ),
    "water-leak": (Expect("env.leak", "device=leak-hall-1/label=leak-hall-1 Leak", CRITICAL),),
    "door-open": (
        Expect("env.door_open", "device=door-hall-1-A01/label=door-hall-1-A01 Door", WARNING),
    ),
    # a probe that drops out is a failed probe (warning), not a -1 degC inlet; its values
    # missing from the polls are the same fact (sensor-health pack), grouped under it.
    # The stick and the drift go unseen here: APC UIO probes read whole degrees (a stick
    # looks like a calm room), and only two rack probes of the room are polled here (row
    # 2's publish over MQTT): with one peer there is no telling which one drifts.
    # tests/e2e/test_e2e_sensor_faults.py plays the drift on all four probes' values.
    "sensor-faults": (
        Expect(
            "env.sensor_failed",
            "device=env-hall-1-A01/position=inlet/label=env-hall-1-A01 Inlet",
            WARNING,
        ),
        Expect(
            "sensor.dropout",
            "device=env-hall-1-A01/position=inlet/label=env-hall-1-A01 Inlet",
            WARNING,
            under="env.sensor_failed",
        ),
    ),
    # polls time out: one device-down incident, no storm of stale UPS alerts
    "device-silent": (Expect("device.down", "device=ups-a", CRITICAL),),
}

#: Scenarios where the engine, the shipped rules or the vocabulary the collectors produce
#: do not give EXPECTED yet: the test runs and must fail (strict xfail) until fixed.
KNOWN_GAPS: dict[str, str] = {}

#: Simulated seconds each scenario may take to resolve everything after its last step.
RECOVERY_S: dict[str, float] = {}
DEFAULT_RECOVERY_S = 12 * 60.0


@dataclass(frozen=True, slots=True)
class Pending:
    """An expectation that cannot be checked yet, and why."""

    scenario: str
    expect: Expect
    reason: str


#: Expectations whose readings do not exist yet (a profile that has not landed).
PENDING: list[Pending] = []


# --- the rig -----------------------------------------------------------------------------


class OutboxOnly:
    """A channel that is never started: what it would send stays in the store's outbox."""

    name = "page"

    async def send(self, notification: Notification) -> None:
        raise AssertionError(f"nothing is delivered in this test: {notification}")

    async def aclose(self) -> None:
        return None


@dataclass
class Seen:
    """What the test saw of one incident over its life."""

    rule: str
    key: str
    worst: Severity
    fired: bool = False
    fired_at: float | None = None
    resolved_at: float | None = None
    parents: set[str] = field(default_factory=set)


def _devices_of(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for site in data["sites"]:
        for room in site.get("rooms", []):
            yield from room.get("devices", [])
            for row in room.get("rows", []):
                yield from row.get("devices", [])
                for rack in row.get("racks", []):
                    yield from rack.get("devices", [])


def _cached_snapshots(site: Site) -> None:
    """Build each agent's MIB once per model tick instead of once per GETNEXT row.

    The views compute the same table for every row of a walk while the model stands
    still (hand-driven time: it only moves between poll rounds), so this changes no
    value served, only the CPU a round costs.
    """
    model = site.model
    for agent in site.agents:
        for mib in agent.communities.values():
            build = mib.snapshot
            cache: dict[str, tuple[tuple[float, bool], OidTable]] = {}

            def snapshot(build: Any = build, cache: Any = cache, mib: Any = mib) -> OidTable:
                device = getattr(getattr(mib, "view", None), "device_id", None) or getattr(
                    mib, "device_id", ""
                )
                key = (model.time_s, device in model.silent)
                hit = cache.get("table")
                if hit is None or hit[0] != key:
                    hit = cache["table"] = (key, build())
                table: OidTable = hit[1]
                return table

            mib.snapshot = snapshot  # type: ignore[method-assign]


class Rig:
    """The site, its collectors and the alert engine on one simulated clock."""

    def __init__(self, site: Site, config: Config, time: ManualClock, state_dir: Path) -> None:
        self.site = site
        self.config = config
        self.time = time
        self.clock = site.clock
        self.players: list[ScenarioPlayer] = []
        self.batch: list[Reading] = []
        self.factory = CollectorFactory()
        self.pollers: list[DevicePoller] = []
        self.unpolled: dict[str, str] = {}
        self.seen: dict[str, Seen] = {}
        devices: dict[str, DeviceInfo] = {}
        for placed in iter_devices(config):
            device = placed.device
            if device.mqtt is not None:
                self.unpolled[device.id] = "MQTT (not wired into this rig)"
                continue
            try:
                collector = self.factory.build(placed)
            except ProfileError as exc:
                self.unpolled[device.id] = f"profile {device.profile}: {exc}"
                continue
            devices[device.id] = DeviceInfo(placed.tags, device.poll_interval_s)
            self.pollers.append(
                DevicePoller(collector, interval_s=device.poll_interval_s, emit=self.batch.extend)
            )
        self.interval_s = max(p.interval_s for p in self.pollers)
        settings = AlertsConfig()
        self.engine = AlertEngine(
            settings,
            load_rules(settings),
            devices,
            state_dir,
            clock=self.clock.now,
            notifiers={"page": _outbox()},
        )
        self._stack = contextlib.AsyncExitStack()

    async def open(self) -> None:
        for poller in self.pollers:
            await self._stack.enter_async_context(poller.collector)

    async def aclose(self) -> None:
        await self._stack.aclose()
        await self.engine.aclose()
        self.factory.close()

    def play(self, name: str) -> ScenarioPlayer:
        player = ScenarioPlayer(self.site.model, load_scenario(name), self.clock.now())
        self.players.append(player)
        return player

    async def poll_round(self) -> None:
        """Every device polled once at the present simulated time, into the engine."""
        now = self.clock.now()
        for player in self.players:
            player.advance(now)
        self.site.sync()
        self.batch.clear()
        await asyncio.gather(*(poller.poll_once() for poller in self.pollers))
        # a poll takes place at one simulated instant: stamp it so (rate windows use it)
        stamp = int(now * 1e9)
        self.engine.process([dataclasses.replace(r, ts_ns=stamp) for r in self.batch])
        self.engine.tick()
        self._observe()

    async def run_for(self, seconds: float) -> None:
        end = self.clock.now() + seconds
        while self.clock.now() + 1e-6 < end:
            self.time.now += self.interval_s
            await self.poll_round()

    def _observe(self) -> None:
        for incident in self.engine.incidents():
            seen = self.seen.setdefault(
                incident.id, Seen(incident.rule, incident.key, incident.severity)
            )
            if incident.severity.rank > seen.worst.rank:
                seen.worst = incident.severity
            if incident.phase is Phase.FIRING and not seen.fired:
                seen.fired, seen.fired_at = True, self.clock.now() - START_S
            if incident.parent is not None:
                parent = self.engine.engine.get(incident.parent)
                seen.parents.add(parent.rule if parent is not None else incident.parent)

    # --- what happened ---------------------------------------------------------------

    def fired(self) -> list[Seen]:
        return [s for s in self.seen.values() if s.fired]

    def open_incidents(self) -> list[Incident]:
        return self.engine.incidents()

    def notifications(self) -> list[Notification]:
        return [n for _, n in self.engine.store.pending("page", limit=100_000)]


def _outbox() -> Notifier:
    return OutboxOnly()


def _inventory(data: dict[str, Any], snmp: tuple[str, int], modbus: dict[str, int]) -> Config:
    """small-site.yaml pointed at the started agents (free ports), short SNMP timeouts."""
    data = copy.deepcopy(data)
    data["defaults"]["poll_interval_s"] = POLL_S
    for device in _devices_of(data):
        if "snmp" in device:
            device["snmp"].update(host=snmp[0], port=snmp[1], timeout_s=0.5, retries=1)
        elif "modbus" in device:
            device["modbus"].update(port=modbus[device["id"]], timeout_s=0.5, retries=1)
    return parse_config(yaml.safe_dump(data), str(SITE_FILE))


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    data = yaml.safe_load(SITE_FILE.read_text(encoding="utf-8"))
    time = ManualClock(0.0)
    site = Site(
        parse_config(yaml.safe_dump(data), str(SITE_FILE)),
        clock=SimClock(start_s=START_S, now_fn=time),
        seed=SEED,
    )
    assert _worst_phase_imbalance(site) < 10.0, "the simulated hall must be phase-balanced"
    await site.start(port=0)
    try:
        _cached_snapshots(site)
        snmp_at = site.agents[0].address
        modbus_at = {d: site.modbus_address_of(d)[1] for d in _modbus_ids(data)}
        rig = Rig(site, _inventory(data, snmp_at, modbus_at), time, tmp_path)
        await rig.open()
        try:
            yield rig
        finally:
            await rig.aclose()
    finally:
        await site.aclose()


def _worst_phase_imbalance(site: Site) -> float:
    worst = 0.0
    for flow in site.model.flows.values():
        mean = sum(flow.phase_a) / len(flow.phase_a)
        worst = max(worst, max(abs(a - mean) for a in flow.phase_a) / mean * 100.0)
    return worst


def _modbus_ids(data: dict[str, Any]) -> list[str]:
    return [d["id"] for d in _devices_of(data) if "modbus" in d]


# --- the tests -----------------------------------------------------------------------------


def _describe(seen: list[Seen]) -> list[str]:
    return sorted(
        f"{s.rule} {s.key} {s.worst.value}" + (f" under {sorted(s.parents)}" if s.parents else "")
        for s in seen
    )


async def _play(rig: Rig, name: str) -> None:
    player = rig.play(name)
    await rig.poll_round()  # the first round at the scenario's start
    await rig.run_for(player.scenario.duration_s)
    assert player.done
    limit = RECOVERY_S.get(name, DEFAULT_RECOVERY_S)
    waited = 0.0
    while rig.open_incidents() and waited < limit:
        await rig.run_for(rig.interval_s)
        waited += rig.interval_s


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            n,
            marks=[pytest.mark.xfail(reason=KNOWN_GAPS[n], strict=True)] if n in KNOWN_GAPS else [],
        )
        for n in EXPECTED
        if n != "steady-state"
    ],
)
async def test_scenario_raises_exactly_the_expected_incidents(rig: Rig, name: str) -> None:
    await _play(rig, name)
    expected = [e for e in EXPECTED[name] if not any(p.expect == e for p in PENDING)]
    want = sorted(
        f"{e.rule} {e.key} {e.severity.value}" + (f" under {[e.under]}" if e.under else "")
        for e in expected
    )
    assert _describe(rig.fired()) == want
    assert [f"{i.rule} {i.key}" for i in rig.open_incidents()] == []
    # no storm: one page when it fires and one when it resolves, per ungrouped incident only
    paged = sorted(
        (n.rule, n.key, n.event) for n in rig.notifications() if n.event in ("firing", "resolved")
    )
    assert paged == sorted(
        (e.rule, e.key, event)
        for e in expected
        if e.under is None
        for event in ("firing", "resolved")
    )


async def test_steady_state_hour_raises_nothing(rig: Rig) -> None:
    await rig.poll_round()
    await rig.run_for(3600)
    assert _describe(list(rig.seen.values())) == []
    assert rig.notifications() == []
