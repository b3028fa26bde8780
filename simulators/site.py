"""Start everything a site inventory describes, in one process.

    site = Site.from_file("simulators/sites/demo-site.yaml", speed=60)
    await site.start(port=0)        # port 0: every SNMP device on one free port
    site.describe()                 # lines saying what is served where
    site.model.set_utility(False)   # or play a scenario (simulators.scenario)
    site.stop()

SNMP devices are grouped by the host:port their inventory entry names (one
agent, one UDP port per group, community = the inventory community or the
device id). Devices that speak Modbus or MQTT are exposed as `ValueSource`s
(`site.sources`) for those front ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from dcim.inventory import Config, load_config
from simulators.clock import SimClock
from simulators.hall.model import HallModel
from simulators.hall.topology import Topology, TopologyError, build_topology
from simulators.hall.views import HallView, view_for
from simulators.mib import MibDevice
from simulators.mibs.apc_rpdu2 import ApcRpdu2Device
from simulators.mibs.apc_uio import ApcUioDevice
from simulators.mibs.base import HallMibDevice
from simulators.mibs.hall_ups import HallTime, HallUpsDevice
from simulators.mibs.liebert_gp import LiebertGpDevice
from simulators.mibs.raritan_pdu2 import RaritanPdu2Device
from simulators.snmp_agent import SnmpAgent
from simulators.traps import TrapSender

#: SNMP profile name (as in the inventory) -> the MIB view that serves it.
MIB_VIEWS: dict[str, type[HallMibDevice]] = {
    "apc-rpdu2": ApcRpdu2Device,
    "raritan-pdu2": RaritanPdu2Device,
    "liebert-gp": LiebertGpDevice,
    "apc-uio": ApcUioDevice,
}
UPS_PROFILES = ("ups-mib-rfc1628",)
#: Wall seconds between background catch-ups, so events fire while nobody polls.
TICK_WALL_S = 0.5


class Site:
    """One hall model, its device views and the SNMP agents serving them."""

    def __init__(
        self,
        config: Config,
        *,
        speed: float = 1.0,
        clock: SimClock | None = None,
        seed: int = 0,
        tick_s: float = 5.0,
    ) -> None:
        self.config = config
        self.topology: Topology = build_topology(config)
        self.clock = clock or SimClock(speed)
        self.model = HallModel(self.topology, seed=seed, start_s=self.clock.now(), tick_s=tick_s)
        self.views: dict[str, HallView] = {
            device_id: view_for(self.model, device_id, self.sync)
            for device_id in self.topology.placed
        }
        self._hall_time = HallTime(self.clock, self.model)
        self.snmp_groups: dict[tuple[str, int], dict[str, MibDevice]] = {}
        problems = []
        for device_id, placed in self.topology.placed.items():
            d = placed.device
            if d.snmp is None:
                continue
            community = d.snmp.community.get_secret_value() if d.snmp.community else d.id
            mib: MibDevice
            if d.profile in UPS_PROFILES:
                mib = HallUpsDevice(community, device_id, self.model, self._hall_time)
            elif d.profile in MIB_VIEWS:
                mib = MIB_VIEWS[d.profile](self.views[device_id], community)
            else:
                known = ", ".join([*UPS_PROFILES, *MIB_VIEWS])
                problems.append(
                    f"device {d.id}: profile: {d.profile!r} has no simulated SNMP view (have: {known})"
                )
                continue
            group = self.snmp_groups.setdefault((d.snmp.host, d.snmp.port), {})
            if community in group:
                problems.append(
                    f"device {d.id}: snmp.community: {community!r} is used twice on {d.snmp.host}:{d.snmp.port}"
                )
            group[community] = mib
        if problems:
            raise TopologyError(problems)
        self.agents: list[SnmpAgent] = []
        self.traps: TrapSender | None = None
        self._ticker: asyncio.Task[None] | None = None

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: float | int | SimClock | None) -> Site:
        return cls(load_config(path), **kwargs)  # type: ignore[arg-type]

    @property
    def sources(self) -> Mapping[str, HallView]:
        """Every device as a `ValueSource` (by device id), for Modbus/MQTT front ends."""
        return self.views

    def sync(self) -> None:
        """Catch the model up with the clock."""
        self.model.advance_to(self.clock.now())

    def send_traps_to(
        self, receivers: Sequence[tuple[str, int]], community: str = "public"
    ) -> TrapSender:
        """Send v2c traps for model events to `receivers` from now on."""
        profiles = {d: p.device.profile for d, p in self.topology.placed.items()}
        self.traps = TrapSender(receivers, profiles, community)
        self.model.listeners.append(self.traps.on_event)
        return self.traps

    async def start(self, host: str | None = None, port: int | None = None) -> None:
        """Serve every SNMP group; `host`/`port` override the inventory (port 0: one free port)."""
        groups: dict[tuple[str, int], dict[str, MibDevice]] = {}
        for (h, p), devices in self.snmp_groups.items():
            key = (host or h, p if port is None else port)
            groups.setdefault(key, {}).update(devices)
        try:
            for (h, p), devices in groups.items():
                agent = SnmpAgent(devices)
                await agent.start(h, p)
                self.agents.append(agent)
        except BaseException:
            self.stop()
            raise
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            self.sync()
            await asyncio.sleep(TICK_WALL_S)

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        for agent in self.agents:
            agent.close()
        self.agents.clear()
        if self.traps is not None:
            self.traps.close()

    def address_of(self, device_id: str) -> tuple[str, int, str]:
        """(host, port, community) where a started site serves an SNMP device."""
        for agent in self.agents:
            for community, mib in agent.communities.items():
                inner = getattr(mib, "view", None)
                did = inner.device_id if inner is not None else getattr(mib, "device_id", "")
                if did == device_id:
                    return agent.address[0], agent.address[1], community
        raise KeyError(f"{device_id} is not served over SNMP")

    def describe(self, modbus: Callable[[], list[str]] | None = None) -> list[str]:
        """Human-readable lines: what is served where."""
        lines = [
            f"site {self.topology.site}: {len(self.topology.placed)} devices, "
            f"{len(self.topology.racks)} racks, speed x{self.clock.speed:g}"
        ]
        for agent in self.agents:
            host, port = agent.address
            kinds: dict[str, int] = {}
            for mib in agent.communities.values():
                kinds[type(mib).__name__] = kinds.get(type(mib).__name__, 0) + 1
            summary = ", ".join(f"{n} {k.removesuffix('Device')}" for k, n in sorted(kinds.items()))
            lines.append(f"snmp udp:{host}:{port} v1/v2c, community = device id: {summary}")
            for community, mib in agent.communities.items():
                lines.append(f"  {community}: {type(mib).__name__.removesuffix('Device')}")
        for device_id, placed in self.topology.placed.items():
            d = placed.device
            if d.modbus is not None:
                lines.append(
                    f"modbus tcp:{d.modbus.host}:{d.modbus.port} unit {d.modbus.unit_id}: "
                    f"{device_id} ({d.profile}) - value source ready, served by the Modbus front end"
                )
            if d.mqtt is not None:
                lines.append(
                    f"mqtt topic {d.mqtt.topic}: {device_id} ({d.profile}) - value source ready"
                )
        if modbus is not None:
            lines.extend(modbus())
        return lines


async def run_site(
    site_file: str | Path,
    *,
    host: str | None = None,
    port: int | None = None,
    speed: float = 1.0,
    scenario: str | None = None,
    trap_receivers: Sequence[tuple[str, int]] = (),
    duration: float | None = None,
    out: Callable[[str], None] = print,
) -> None:
    """`dcim simulate --site`: serve the site, print where, play a scenario, print its events."""
    from simulators.scenario import ScenarioPlayer, load_scenario

    site = Site.from_file(site_file, speed=speed)
    played = load_scenario(scenario) if scenario else None
    if played is not None:
        played.check(site.topology)
    if trap_receivers:
        site.send_traps_to(trap_receivers)
    site.model.listeners.append(
        lambda e: out(
            f"[t+{e.time_s - site.clock.start_s:7.0f}s] event {e.kind}: {e.device}: {e.detail}"
        )
    )
    await site.start(host, port)
    try:
        for line in site.describe():
            out(line)
        tasks = []
        if played is not None:
            out(f"scenario {played.name}: {played.description.strip()}")
            player = ScenarioPlayer(
                site.model,
                played,
                site.clock.now(),
                on_step=lambda s, text: out(f"[t+{s.at_s:7.0f}s] scenario {s.do}: {text}"),
            )
            tasks.append(asyncio.get_running_loop().create_task(player.play(site.clock)))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration):
                await asyncio.Event().wait()
        for task in tasks:
            task.cancel()
    finally:
        if site.traps is not None:
            await site.traps.drain()
        site.stop()
