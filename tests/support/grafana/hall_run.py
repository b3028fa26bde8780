"""The demo hall, served by its simulator and polled by the real monitor into InfluxDB.

`simulators/sites/demo-site.yaml` (two halls, 40 racks, UPS, PDUs, CRACs, sensors,
a two-channel facility meter): SNMP, Modbus and MQTT devices served by
`simulators.site.Site`, a scenario played at high speed, traps sent to the
monitor's trap receiver, and the monitor (`dcim.runner.Monitor`, with `alerts:`
and `traps:`) writing everything to a real influxd.

The monitor polls what the site file lists, with these test-only changes:
ports and broker URL where the site actually listens, a faster poll interval,
and devices whose profile has not landed left out (`unpolled`: the site still
serves them; nothing can read them yet).
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from collectors.registry import CollectorFactory, check_profiles
from dcim.clock import SimClock
from dcim.inventory import Config, DeviceKind, iter_devices, parse_config
from dcim.runner import Monitor
from simulators.scenario import Scenario, ScenarioPlayer, load_scenario
from simulators.site import Site

ROOT = Path(__file__).resolve().parents[3]
SITE_FILE = ROOT / "simulators" / "sites" / "demo-site.yaml"
#: Simulated seconds per wall second: the scenario's 7 minutes play in about 2 s
#: (plus the hold mid-outage, see OUTAGE_STEPS).
SPEED = 240.0
#: The demo hall has a generator (gen-1) that takes the load within a minute of a
#: utility loss; the one that fails to start keeps the UPS units on battery for the
#: whole outage, which is the incident the dashboards must show.
SCENARIO = "generator-fail-to-start"
#: Wall seconds between polls of every device (the site file says 30 simulated seconds;
#: the sampled racks, see SAMPLED_RACK_SUFFIXES).
POLL_S = 3.0
#: The one device whose traps are sent. Every simulated device answers from 127.0.0.1 and
#: the trap receiver tells devices at one address apart only by the trap's community, so
#: the traps carry this UPS's community and only it sends them (ups-b's would be filed
#: under ups-a).
TRAP_DEVICE = "ups-a"
#: Seconds the monitor and trap sender get to stop once the run is over.
STOP_WITHIN_S = 20.0
#: Seconds an SNMP request may take: the agents run in the monitor's process and
#: event loop, so on a loaded machine an answer is late, not lost.
SNMP_TIMEOUT_S = 5.0
#: The step after which simulated time stands still until the monitor has seen the
#: outage, and the step it must not reach before: at SPEED the UPS units are on battery
#: for about 1 s of wall time, less than a poll takes on a loaded machine.
OUTAGE_STEPS = ("utility_fail", "utility_restore")


def site_dict() -> dict[str, Any]:
    """The demo hall's site file."""
    data: dict[str, Any] = yaml.safe_load(SITE_FILE.read_text(encoding="utf-8"))
    return data


def write_site(path: Path) -> Path:
    """The test's site file (for `dcim grafana export --config`)."""
    path.write_text(yaml.safe_dump(site_dict(), sort_keys=False), encoding="utf-8")
    return path


def site_config() -> Config:
    return parse_config(yaml.safe_dump(site_dict(), sort_keys=False), str(SITE_FILE))


def missing_profiles(config: Config) -> dict[str, str]:
    """Device id -> why it cannot be polled (its profile is not there yet)."""
    out: dict[str, str] = {}
    for problem in check_profiles(list(iter_devices(config))):
        device = problem.removeprefix("device ").split(":", 1)[0]
        out[device] = problem
    return out


#: Racks whose devices the monitor polls: the first two of every row (and the first rack
#: of any profile they lack). The site serves all 40 racks, but 175 devices served and polled in one process on a shared 2-core machine
#: time out; every profile, room and row is still polled.
SAMPLED_RACK_SUFFIXES = ("01", "02")
NOT_SAMPLED = "rack not sampled by the test (every profile, room and row still is)"


def left_out(config: Config) -> dict[str, str]:
    """Device id -> why the monitor does not poll it: no profile yet, or rack not sampled."""
    out = missing_profiles(config)
    placed = list(iter_devices(config))
    sampled = {p.rack for p in placed if p.rack.endswith(SAMPLED_RACK_SUFFIXES)}
    # and the first rack of every profile no sampled rack has (a smoke sampling point)
    profiles = {p.device.profile for p in placed if p.rack in sampled or not p.rack}
    for p in placed:
        if p.rack and p.device.profile not in profiles:
            sampled.add(p.rack)
            profiles.add(p.device.profile)
    for p in placed:
        if p.rack and p.rack not in sampled:
            out.setdefault(p.device.id, NOT_SAMPLED)
    return out


def polled_devices() -> set[str]:
    """Ids of the site's devices the monitor polls (see left_out)."""
    config = site_config()
    unpolled = left_out(config)
    return {p.device.id for p in iter_devices(config) if p.device.id not in unpolled}


def ups_devices() -> set[str]:
    """Ids of the polled UPS units (each has its own on-battery incident in the outage)."""
    config = site_config()
    polled = polled_devices()
    return {p.device.id for p in iter_devices(config) if p.device.kind is DeviceKind.UPS} & polled


def _devices(data: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for site in data["sites"]:
        for room in site["rooms"]:
            found += room.get("devices", [])
            for row in room.get("rows", []):
                for rack in row.get("racks", []):
                    found += rack.get("devices", [])
    return found


def _without(data: dict[str, Any], drop: set[str]) -> None:
    def keep(devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [d for d in devices if d["id"] not in drop]

    for site in data["sites"]:
        for room in site["rooms"]:
            room["devices"] = keep(room.get("devices", []))
            for row in room.get("rows", []):
                for rack in row.get("racks", []):
                    rack["devices"] = keep(rack.get("devices", []))


def monitor_config(
    site: Site,
    mqtt_url: str,
    sink: Mapping[str, Any],
    state_dir: Path,
    unpolled: set[str],
) -> Config:
    """The site file as the monitor should poll the started `site`."""
    data = copy.deepcopy(site_dict())
    _without(data, unpolled)
    data["defaults"]["poll_interval_s"] = POLL_S
    data["mqtt"]["url"] = mqtt_url
    for device in _devices(data):
        if "snmp" in device:
            host, port, _ = site.address_of(device["id"])
            # the agent answers every request; a late answer is a loaded machine, not a
            # dead device, and every device needs two readings before the run ends
            device["snmp"] |= {
                "host": host,
                "port": port,
                "timeout_s": SNMP_TIMEOUT_S,
                "retries": 0,
            }
        elif "modbus" in device:
            host, port, _ = site.modbus_address_of(device["id"])
            device["modbus"] |= {"host": host, "port": port}
    data["monitor"] = {"state_dir": str(state_dir), "self_metrics_interval_s": 1}
    data["sinks"] = [dict(sink)]
    community = next(d["snmp"]["community"] for d in _devices(data) if d["id"] == TRAP_DEVICE)
    data["traps"] = {"host": "127.0.0.1", "port": 0, "communities": [community]}
    # transitions at once: no startup grace, a fast tick
    data["alerts"] = {"startup_grace_s": 1.0, "tick_s": 0.2}
    return parse_config(
        yaml.safe_dump(data, sort_keys=False), f"{SITE_FILE} (as the test polls it)"
    )


class HeldTime:
    """Monotonic time for a SimClock that stands still at a gate until it is opened.

    Simulated time then waits for the monitor instead of racing it: the scenario
    holds its state (a UPS on battery) however slowly a loaded machine polls.
    Starts held at 0 (the site and monitor start in no simulated time).
    """

    def __init__(self) -> None:
        self._start = time.monotonic()
        self._lost = 0.0  # wall seconds spent held, left out of the clock
        self._gate: float | None = 0.0

    def _raw(self) -> float:
        return time.monotonic() - self._start - self._lost

    def running_s(self) -> float:
        """Wall seconds the clock has run (not held)."""
        raw = self._raw()
        return raw if self._gate is None else min(raw, self._gate)

    def __call__(self) -> float:
        return self._start + self.running_s()

    def hold_at(self, running_s: float) -> None:
        """Run on from where it stands, then stand still at `running_s` until open()."""
        self.open()
        self._gate = max(running_s, self.running_s())

    def open(self) -> None:
        if self._gate is not None:
            self._lost += max(self._raw() - self._gate, 0.0)
            self._gate = None


def outage_hold_s(scenario: Scenario) -> float:
    """Simulated seconds after the scenario start to hold at: mid-outage, on battery."""
    at = {step.do: step.at_s for step in scenario.steps}
    fail, back = (at[name] for name in OUTAGE_STEPS)
    return (fail + back) / 2


@dataclass
class HallRun:
    """What a run did: devices left out and why, the monitor config, what the site sent."""

    unpolled: dict[str, str]
    config: Config
    traps_sent: int
    scenario_steps: int


async def run_hall(
    mqtt_url: str,
    sink: Mapping[str, Any],
    state_dir: Path,
    until: Callable[[], Awaitable[bool]],
    within_s: float,
    *,
    outage_seen: Callable[[], Awaitable[bool]],
) -> HallRun:
    """Serve the site, play the scenario, run the monitor until `await until()` is true.

    Simulated time stands still mid-outage until `await outage_seen()` is true.
    """
    from tests.support.waiting import eventually

    held = HeldTime()
    site = Site(site_config(), clock=SimClock(SPEED, now_fn=held), seed=7)
    unpolled = left_out(site.config)
    async with asyncio.timeout(STOP_WITHIN_S):  # a start that hangs fails, with a message
        await site.start("127.0.0.1", 0, mqtt_url=mqtt_url)
    try:
        config = monitor_config(site, mqtt_url, sink, state_dir, set(unpolled))
        monitor = Monitor(config, collectors=CollectorFactory.for_config(config))
        receiver = next(s for s in monitor.streams if type(s).__name__ == "TrapReceiver")
        async with asyncio.timeout(STOP_WITHIN_S):
            _, trap_port = await receiver.start()  # type: ignore[attr-defined]
        community = config.traps.communities[0].get_secret_value()  # type: ignore[union-attr]
        sender = site.send_traps_to([("127.0.0.1", trap_port)], community)
        sender.profiles = {TRAP_DEVICE: sender.profiles[TRAP_DEVICE]}
        scenario = load_scenario(SCENARIO)
        scenario.check(site.topology)
        player = ScenarioPlayer(site.model, scenario, site.clock.now())
        stop = asyncio.Event()
        running = asyncio.create_task(monitor.run(stop))
        hold_s = outage_hold_s(scenario)
        held.hold_at(hold_s / SPEED)
        playing = asyncio.create_task(player.play(site.clock))
        try:
            await eventually(
                outage_seen,
                within_s,
                f"the outage in InfluxDB (simulated time held at {hold_s:g} s)",
            )
            held.open()
            await eventually(until, within_s, "the hall's readings, alerts and traps in InfluxDB")
        finally:
            playing.cancel()
            stop.set()
            # a stop that hangs is a failure with a message, not a stuck test run
            async with asyncio.timeout(STOP_WITHIN_S):
                await sender.drain()
                await running
        return HallRun(unpolled, config, len(sender.sent), len(scenario.steps))
    finally:
        async with asyncio.timeout(STOP_WITHIN_S):
            await site.aclose()
