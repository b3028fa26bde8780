"""Start everything a site inventory describes, in one process.

    site = Site.from_file("simulators/sites/demo-site.yaml", speed=60)
    await site.start(port=0)        # port 0: every SNMP device on one free port
    site.describe()                 # lines saying what is served where
    site.model.set_utility(False)   # or play a scenario (simulators.scenario)
    site.stop()

SNMP devices are grouped by the host:port their inventory entry names (one
agent, one UDP port per group, community = the inventory community or the
device id). Modbus devices are grouped the same way: one Modbus TCP server per
host:port (a gateway), each device answering on its `unit_id` with its register
map. MQTT sensors publish to the broker URL given to `start(mqtt_url=...)`;
without one they are only listed. Every front end reads the same `HallModel`,
so a scenario shows up on SNMP, Modbus and MQTT at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from collectors.modbus.profile import load_modbus_profile
from dcim.clock import SimClock
from dcim.errors import ProfileError
from dcim.inventory import Config, PlacedDevice, SnmpV3Config, SnmpVersion, load_config
from simulators.fast_agent import FastAgent
from simulators.hall.model import HallModel
from simulators.hall.topology import Topology, TopologyError, build_topology
from simulators.hall.views import HallView, view_for
from simulators.mib import MibDevice
from simulators.mibs.apc_rpdu2 import ApcRpdu2Device
from simulators.mibs.apc_uio import ApcUioDevice
from simulators.mibs.apc_ups import HallApcUpsDevice
from simulators.mibs.base import HallMibDevice
from simulators.mibs.hall_ups import HallTime, HallUpsDevice
from simulators.mibs.liebert_gp import LiebertGpDevice
from simulators.mibs.liebert_ups import HallLiebertUpsDevice
from simulators.mibs.raritan_pdu2 import RaritanPdu2Device
from simulators.modbus_server import ModbusSimServer, RequestHook
from simulators.mqtt_publisher import KINDS, MqttSensor, PublisherStats, run_publishers
from simulators.snmp_agent import SnmpAgent, V3User
from simulators.traps import TrapSender

log = logging.getLogger(__name__)

#: Longest one step of stopping may take (a publisher, a Modbus server).
CLOSE_STEP_S = 5.0

#: SNMP profile name (as in the inventory) -> the MIB view that serves it.
MIB_VIEWS: dict[str, type[HallMibDevice]] = {
    "apc-rpdu2": ApcRpdu2Device,
    "raritan-pdu2": RaritanPdu2Device,
    "liebert-gp": LiebertGpDevice,
    "apc-uio": ApcUioDevice,
}
#: SNMP profile name -> the MIB view of a hall UPS (every one driven by its UpsModel).
UPS_VIEWS: dict[str, type[HallUpsDevice]] = {
    "ups-mib-rfc1628": HallUpsDevice,
    "apc-ups": HallApcUpsDevice,
    "liebert-ups": HallLiebertUpsDevice,
}
UPS_PROFILES = tuple(UPS_VIEWS)
#: Inventory SNMPv3 protocol names -> the agent's (net-snmp style) names it can serve.
V3_AUTH = {
    "md5": "MD5",
    "sha": "SHA",
    "sha224": "SHA-224",
    "sha256": "SHA-256",
    "sha384": "SHA-384",
    "sha512": "SHA-512",
}
V3_PRIV = {"des": "DES", "aes": "AES", "aes128": "AES", "aes192c": "AES-192", "aes256c": "AES-256"}
#: Wall seconds between background catch-ups, so events fire while nobody polls.
TICK_WALL_S = 0.5
#: Wall seconds a fast agent reuses a device's snapshot (every request of one poll sees it).
FAST_SNAPSHOT_S = 1.0
#: Fastest MQTT publish interval (wall seconds) however high the speed.
MQTT_MIN_INTERVAL_S = 0.2

ModbusUnits = dict[int, tuple[str, HallView]]


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
        #: (host, port) -> {user name: SNMPv3 user}, from the v3 devices of each group
        self.snmp_users: dict[tuple[str, int], dict[str, V3User]] = {}
        #: (host, port) -> {unit id: (Modbus profile, source)}, as in the inventory
        self.modbus_groups: dict[tuple[str, int], ModbusUnits] = {}
        #: device id -> the MQTT sensor publishing it
        self.mqtt_sensors: dict[str, MqttSensor] = {}
        problems: list[str] = []
        for placed in self.topology.placed.values():
            d = placed.device
            if d.snmp is not None:
                self._add_snmp(placed, problems)
            elif d.modbus is not None:
                self._add_modbus(placed, problems)
            elif d.mqtt is not None:
                self._add_mqtt(placed, problems)
        self._check_v3_contexts(problems)
        if problems:
            raise TopologyError(problems)
        self.agents: list[SnmpAgent | FastAgent] = []
        self.modbus: list[ModbusSimServer] = []
        self.mqtt_url: str | None = None
        self.mqtt_interval_s = self._default_mqtt_interval()
        self.mqtt_stats = PublisherStats()
        self.traps: TrapSender | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._mqtt_task: asyncio.Task[None] | None = None

    def _add_snmp(self, placed: PlacedDevice, problems: list[str]) -> None:
        d = placed.device
        assert d.snmp is not None
        community = d.snmp.community.get_secret_value() if d.snmp.community else d.id
        where = (d.snmp.host, d.snmp.port)
        if d.snmp.version is SnmpVersion.V3:
            assert d.snmp.v3 is not None  # validated by SnmpConfig
            # the v3 context name picks the device, as the community does for v2c
            community = d.snmp.v3.context_name or d.id
            if not self._add_v3_user(d.id, where, d.snmp.v3, problems):
                return
        mib: MibDevice
        if d.profile in UPS_VIEWS:
            mib = UPS_VIEWS[d.profile](community, d.id, self.model, self._hall_time)
        elif d.profile in MIB_VIEWS:
            mib = MIB_VIEWS[d.profile](self.views[d.id], community)
        else:
            known = ", ".join([*UPS_PROFILES, *MIB_VIEWS])
            problems.append(
                f"device {d.id}: profile: {d.profile!r} has no simulated SNMP view (have: {known})"
            )
            return
        group = self.snmp_groups.setdefault(where, {})
        if community in group:
            problems.append(
                f"device {d.id}: snmp.community: {community!r} is used twice on {d.snmp.host}:{d.snmp.port}"
            )
        group[community] = mib

    def _add_v3_user(
        self, device_id: str, where: tuple[str, int], v3: SnmpV3Config, problems: list[str]
    ) -> bool:
        """Register the device's SNMPv3 user on its agent; False (and a problem) if it cannot."""
        where_text = f"{where[0]}:{where[1]}"
        auth = V3_AUTH.get(v3.auth_protocol)
        priv = V3_PRIV.get(v3.priv_protocol) if v3.priv_protocol != "none" else None
        if auth is None or v3.auth_key is None:
            problems.append(
                f"device {device_id}: snmp.v3.auth_protocol: {v3.auth_protocol!r} is not served "
                f"by the simulator (have: {', '.join(V3_AUTH)})"
            )
            return False
        if v3.priv_protocol != "none" and priv is None:
            problems.append(
                f"device {device_id}: snmp.v3.priv_protocol: {v3.priv_protocol!r} is not served "
                f"by the simulator (have: none, {', '.join(V3_PRIV)})"
            )
            return False
        user = V3User(
            v3.user,
            v3.auth_key.get_secret_value(),
            v3.priv_key.get_secret_value() if priv and v3.priv_key else None,
            auth_protocol=auth,
            priv_protocol=priv or "AES",
        )
        users = self.snmp_users.setdefault(where, {})
        if users.get(user.name, user) != user:
            problems.append(
                f"device {device_id}: snmp.v3.user: {user.name!r} has other keys or protocols "
                f"on another device of {where_text} (one agent, one user table)"
            )
            return False
        users[user.name] = user
        return True

    def _check_v3_contexts(self, problems: list[str]) -> None:
        """A v3 device sharing a port needs its own context name to be told apart."""
        for placed in self.topology.placed.values():
            snmp = placed.device.snmp
            if snmp is None or snmp.v3 is None or snmp.version is not SnmpVersion.V3:
                continue
            group = self.snmp_groups.get((snmp.host, snmp.port), {})
            if not snmp.v3.context_name and len(group) > 1:
                problems.append(
                    f"device {placed.device.id}: snmp.v3.context_name: empty, but "
                    f"{snmp.host}:{snmp.port} serves {len(group)} devices; set it to "
                    f"{placed.device.id!r} (the agent picks the device by context)"
                )

    def _add_modbus(self, placed: PlacedDevice, problems: list[str]) -> None:
        d = placed.device
        assert d.modbus is not None
        try:
            load_modbus_profile(d.profile)
        except ProfileError as exc:
            problems.append(f"device {d.id}: profile: {exc}")
            return
        where = (d.modbus.host, d.modbus.port)
        units = self.modbus_groups.setdefault(where, {})
        if d.modbus.unit_id in units:
            problems.append(
                f"device {d.id}: modbus.unit_id: {d.modbus.unit_id} is used twice on "
                f"{where[0]}:{where[1]} (also {units[d.modbus.unit_id][1].device_id})"
            )
        units[d.modbus.unit_id] = (d.profile, self.views[d.id])

    def _add_mqtt(self, placed: PlacedDevice, problems: list[str]) -> None:
        d = placed.device
        sensor = self.topology.sensors.get(d.id)
        # the publisher's topics are <site>/<room>/<rack>/<kind>: rack-level sensors only
        if sensor is None or not sensor.rack:
            problems.append(
                f"device {d.id}: mqtt: only rack-level sensors (tags.sensor: "
                f"{', '.join(KINDS)}) are published by the simulator"
            )
            return
        kind = next(k for k in KINDS if k == sensor.role)
        if d.profile != f"rack-{kind}-json":
            problems.append(
                f"device {d.id}: profile: {d.profile!r}, the simulated {kind} sensor "
                f"publishes rack-{kind}-json"
            )
            return
        self.mqtt_sensors[d.id] = MqttSensor(
            self.views[d.id], kind, placed.site, placed.room, placed.rack
        )

    def _default_mqtt_interval(self) -> float:
        """A sensor reports every poll interval of simulated time (wall seconds here)."""
        polls = [self.topology.placed[d].device.poll_interval_s for d in self.mqtt_sensors]
        return max(min(polls, default=30.0) / self.clock.speed, MQTT_MIN_INTERVAL_S)

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

    async def start(
        self,
        host: str | None = None,
        port: int | None = None,
        *,
        mqtt_url: str | None = None,
        mqtt_interval_s: float | None = None,
        fast_snmp: bool = False,
        snapshot_s: float = FAST_SNAPSHOT_S,
    ) -> None:
        """Serve every SNMP group and Modbus gateway; publish MQTT sensors to `mqtt_url`.

        `host`/`port` override the inventory for SNMP (port 0: every SNMP device on
        one free port); with port 0 each Modbus gateway also takes a free port.
        Publishers use the inventory's broker settings (protocol, QoS, credentials,
        TLS) with `mqtt_url`; `mqtt_interval_s` defaults to the sensors' poll
        interval in simulated time. `fast_snmp`: v1/v2c groups are served by the lean
        `FastAgent` (snapshots cached a second) instead of pysnmp's engine: a whole hall
        polled every few seconds then costs a fraction of a core (the demo); `snapshot_s`
        is how long one device's snapshot is reused.
        """
        groups: dict[tuple[str, int], dict[str, MibDevice]] = {}
        users: dict[tuple[str, int], dict[str, V3User]] = {}
        for (h, p), devices in self.snmp_groups.items():
            key = (host or h, p if port is None else port)
            groups.setdefault(key, {}).update(devices)
            users.setdefault(key, {}).update(self.snmp_users.get((h, p), {}))
        try:
            for (h, p), devices in groups.items():
                agent: SnmpAgent | FastAgent
                if fast_snmp and not users[(h, p)]:
                    agent = FastAgent(devices, cache_s=snapshot_s)
                else:
                    agent = SnmpAgent(devices, v3_users=list(users[(h, p)].values()))
                await agent.start(h, p)
                self.agents.append(agent)
            for (h, p), units in self.modbus_groups.items():
                server = ModbusSimServer(units)
                server.hook = _answer_for_silent(units)
                await server.start(host or h, 0 if port == 0 else p)
                self.modbus.append(server)
            if mqtt_url is not None and self.mqtt_sensors:
                self._start_mqtt(mqtt_url, mqtt_interval_s or self.mqtt_interval_s)
        except BaseException:
            self.stop()
            raise
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    def _start_mqtt(self, url: str, interval_s: float) -> None:
        broker = self.config.mqtt
        if not url.startswith(("mqtt://", "mqtts://")):
            raise ValueError(f"mqtt url {url!r}: expected mqtt://host:port or mqtts://host:port")
        self.mqtt_url, self.mqtt_interval_s = url, interval_s
        self._mqtt_task = asyncio.get_running_loop().create_task(
            run_publishers(
                url,
                list(self.mqtt_sensors.values()),
                interval_s,
                broker.tls if broker else None,
                username=broker.username if broker else None,
                password=broker.password if broker else None,
                protocol=broker.protocol if broker else "5",
                qos=broker.qos if broker else 1,
                client_id_prefix=f"dcim-sim-{self.topology.site}",
                stats=self.mqtt_stats,
            )
        )
        self._mqtt_task.add_done_callback(_report_publisher_end)

    async def _tick(self) -> None:
        while True:
            self.sync()
            await asyncio.sleep(TICK_WALL_S)

    def stop(self) -> None:
        """Stop at once (sync): sensors go offline by their last will, not a clean goodbye."""
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self._mqtt_task is not None:
            self._mqtt_task.cancel()
            self._mqtt_task = None
        for agent in self.agents:
            agent.close()
        self.agents.clear()
        for server in self.modbus:
            server.kill()
        self.modbus.clear()
        if self.traps is not None:
            self.traps.close()

    async def aclose(self) -> None:
        """Stop cleanly: sensors publish a retained offline, Modbus clients are let go."""
        task, self._mqtt_task = self._mqtt_task, None
        if task is not None:
            task.cancel()
            # a publisher stuck on a broker must not keep the site from stopping
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                async with asyncio.timeout(CLOSE_STEP_S):
                    await task
        for server in self.modbus:
            try:
                async with asyncio.timeout(CLOSE_STEP_S):
                    await server.close()
            except TimeoutError:
                log.warning(
                    "modbus simulator on port %s did not stop in %g s", server.port, CLOSE_STEP_S
                )
        self.modbus.clear()
        self.stop()

    def modbus_address_of(self, device_id: str) -> tuple[str, int, int]:
        """(host, port, unit id) where a started site serves a Modbus device."""
        for server in self.modbus:
            for unit_id, unit in server.units.items():
                if unit.source.device_id == device_id:
                    return server.host, server.port, unit_id
        raise KeyError(f"{device_id} is not served over Modbus")

    def address_of(self, device_id: str) -> tuple[str, int, str]:
        """(host, port, community) where a started site serves an SNMP device."""
        for agent in self.agents:
            for community, mib in agent.communities.items():
                inner = getattr(mib, "view", None)
                did = inner.device_id if inner is not None else getattr(mib, "device_id", "")
                if did == device_id:
                    return agent.address[0], agent.address[1], community
        raise KeyError(f"{device_id} is not served over SNMP")

    def describe(self) -> list[str]:
        """Human-readable lines: what is served where (bound ports once started)."""
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
            for user in agent.v3_users:
                level = f"authPriv {user.priv_protocol}" if user.priv_key else "authNoPriv"
                lines.append(
                    f"  v3 user {user.name}: {user.auth_protocol} {level}, context = device id"
                )
            for community, mib in agent.communities.items():
                lines.append(f"  {community}: {type(mib).__name__.removesuffix('Device')}")
        lines.extend(self._describe_modbus())
        lines.extend(self._describe_mqtt())
        return lines

    def _describe_modbus(self) -> list[str]:
        lines = []
        for server in self.modbus:
            lines.append(f"modbus tcp:{server.host}:{server.port}: {len(server.units)} unit(s)")
            for unit_id, unit in sorted(server.units.items()):
                lines.append(f"  unit {unit_id}: {unit.source.device_id} ({unit.profile.name})")
        if not self.modbus:  # not started: where the inventory puts them
            for (host, port), units in self.modbus_groups.items():
                lines.append(f"modbus tcp:{host}:{port}: {len(units)} unit(s), not started")
                for unit_id, (profile, view) in sorted(units.items()):
                    lines.append(f"  unit {unit_id}: {view.device_id} ({profile})")
        return lines

    def _describe_mqtt(self) -> list[str]:
        if not self.mqtt_sensors:
            return []
        n = len(self.mqtt_sensors)
        if self.mqtt_url is None:
            head = f"mqtt: {n} sensor(s) NOT published (no broker URL: --mqtt-url mqtt://HOST:PORT)"
        else:
            head = (
                f"mqtt {self.mqtt_url}: {n} sensor(s), JSON every {self.mqtt_interval_s:g} s, "
                "retained online/offline status with last will"
            )
        lines = [head]
        for device_id, sensor in self.mqtt_sensors.items():
            profile = self.topology.placed[device_id].device.profile
            lines.append(f"  {sensor.topic} (+ /status): {device_id} ({profile})")
        return lines


def _answer_for_silent(units: ModbusUnits) -> RequestHook:
    """A unit a scenario silenced answers as a gateway's dead target does (0x0B)."""
    from pymodbus.constants import ExcCodes

    def hook(unit: int, function: int, address: int, count: int) -> ExcCodes | None:
        del function, address, count
        entry = units.get(unit)
        if entry is not None and not entry[1].responding:
            return ExcCodes.GATEWAY_NO_RESPONSE
        return None

    return hook


def _report_publisher_end(task: asyncio.Task[None]) -> None:
    # the publishers run until cancelled; anything else (a bad URL) must not vanish
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("MQTT publishers stopped: %s", exc)


async def run_site(
    site_file: str | Path,
    *,
    host: str | None = None,
    port: int | None = None,
    speed: float = 1.0,
    scenario: str | None = None,
    trap_receivers: Sequence[tuple[str, int]] = (),
    mqtt_url: str | None = None,
    mqtt_interval_s: float | None = None,
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
    await site.start(host, port, mqtt_url=mqtt_url, mqtt_interval_s=mqtt_interval_s)
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
        await site.aclose()
