"""A site's physical layout, read from the monitor's own inventory.

The inventory models stay untouched: facts only a simulator needs live in
device `tags` (all strings):

- UPS:    `feed` (A or B, the feed it powers), `rated_w`, `rated_va`
- PDU:    `feed` (A or B, required), `rated_a` (per phase), `outlets`, `breaker_a`,
          `rack_load_w` (design IT load of its rack)
- CRAC:   `serves` (comma-separated row ids; default every row of its room), `capacity_w`
- sensor: `sensor` = env | smoke | leak | door; a smoke sensor's `detector` = aspirating
          (default: VESDA-style stages) | point (one alarm contact)
- meter:  `scope` = facility
- generator: `rated_w`, `fuel_capacity_l`, `fuel_pct` (level at start), `start_delay_s`

`build_topology` raises `TopologyError` listing every bad device and field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from dcim.errors import DcimError
from dcim.inventory import Config, DeviceKind, PlacedDevice, iter_devices

FEEDS = ("A", "B")
SENSOR_ROLES = ("env", "smoke", "leak", "door")


class TopologyError(DcimError):
    """The inventory cannot be simulated; `problems` names each device and field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True, slots=True)
class UpsUnit:
    id: str
    room: str
    feed: str
    rated_w: float
    rated_va: float


@dataclass(frozen=True, slots=True)
class Pdu:
    id: str
    room: str
    row: str
    rack: str
    feed: str
    mib: str  # the SNMP profile it speaks: apc-rpdu2 or raritan-pdu2
    rated_a: float
    breaker_a: float
    outlets: int
    voltage_v: float = 230.0
    phases: int = 3
    branches_per_phase: int = 2

    @property
    def branches(self) -> int:
        return self.phases * self.branches_per_phase

    def branch_of_outlet(self, outlet: int) -> int:
        """0-based branch of a 0-based outlet: outlets are wired in equal consecutive groups."""
        per = -(-self.outlets // self.branches)
        return min(outlet // per, self.branches - 1)

    def phase_of_branch(self, branch: int) -> int:
        """0-based phase of a 0-based branch (two breakers per phase, L1 L1 L2 L2 L3 L3)."""
        return branch // self.branches_per_phase


@dataclass(frozen=True, slots=True)
class Rack:
    id: str
    room: str
    row: str
    position: int  # 0-based place in its row
    row_length: int
    design_w: float
    pdus: tuple[str, ...]

    @property
    def at_row_end(self) -> bool:
        return self.position in (0, self.row_length - 1)


@dataclass(frozen=True, slots=True)
class Crac:
    id: str
    room: str
    serves: tuple[str, ...]  # row ids
    capacity_w: float
    mib: str


@dataclass(frozen=True, slots=True)
class Sensor:
    id: str
    room: str
    row: str
    rack: str
    role: str


@dataclass(frozen=True, slots=True)
class Meter:
    id: str
    room: str
    scope: str


@dataclass(frozen=True, slots=True)
class Generator:
    id: str
    room: str
    rated_w: float
    fuel_capacity_l: float
    fuel_pct: float
    start_delay_s: float


@dataclass(frozen=True, slots=True)
class Topology:
    site: str
    rooms: tuple[str, ...]
    rows: Mapping[str, tuple[str, ...]]  # room -> row ids
    racks: Mapping[str, Rack]
    ups: Mapping[str, UpsUnit]
    pdus: Mapping[str, Pdu]
    cracs: Mapping[str, Crac]
    sensors: Mapping[str, Sensor]
    meters: Mapping[str, Meter]
    placed: Mapping[str, PlacedDevice] = field(repr=False)
    generators: Mapping[str, Generator] = field(default_factory=dict)

    def racks_in_room(self, room: str) -> list[Rack]:
        return [r for r in self.racks.values() if r.room == room]

    def cracs_serving(self, row: str) -> list[Crac]:
        return [c for c in self.cracs.values() if row in c.serves]


PDU_MIBS = {"apc-rpdu2": "apc-rpdu2", "raritan-pdu2": "raritan-pdu2"}
CRAC_MIBS = ("liebert-gp",)


class _Reader:
    """Reads typed tags, collecting every problem instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def number(self, placed: PlacedDevice, key: str, default: float) -> float:
        raw = placed.device.tags.get(key)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"device {placed.device.id}: tags.{key}: not a number: {raw!r}")
            return default
        if value <= 0:
            self.problems.append(f"device {placed.device.id}: tags.{key}: must be positive")
            return default
        return value

    def choice(self, placed: PlacedDevice, key: str, allowed: tuple[str, ...]) -> str:
        raw = placed.device.tags.get(key)
        if raw not in allowed:
            got = "missing" if raw is None else repr(raw)
            self.problems.append(
                f"device {placed.device.id}: tags.{key}: {got}, expected one of {', '.join(allowed)}"
            )
            return allowed[0]
        return raw


def build_topology(config: Config, site_id: str | None = None) -> Topology:
    """The physical layout of one site (the first, unless `site_id` says which)."""
    sites = [s for s in config.sites if site_id is None or s.id == site_id]
    if not sites:
        raise TopologyError([f"site {site_id!r} is not in the inventory"])
    site = sites[0]
    read = _Reader()
    placed = {p.device.id: p for p in iter_devices(config) if p.site == site.id}

    rooms = tuple(room.id for room in site.rooms)
    rows = {room.id: tuple(row.id for row in room.rows) for room in site.rooms}
    ups: dict[str, UpsUnit] = {}
    pdus: dict[str, Pdu] = {}
    cracs: dict[str, Crac] = {}
    sensors: dict[str, Sensor] = {}
    meters: dict[str, Meter] = {}
    generators: dict[str, Generator] = {}
    for p in placed.values():
        d = p.device
        if d.kind is DeviceKind.UPS:
            rated_w = read.number(p, "rated_w", 100_000.0)
            ups[d.id] = UpsUnit(
                d.id,
                p.room,
                read.choice(p, "feed", FEEDS),
                rated_w,
                read.number(p, "rated_va", rated_w / 0.9),
            )
        elif d.kind is DeviceKind.PDU:
            if not p.rack:
                read.problems.append(f"device {d.id}: a PDU must sit in a rack")
            if d.profile not in PDU_MIBS:
                read.problems.append(
                    f"device {d.id}: profile: {d.profile!r} cannot be simulated, "
                    f"expected one of {', '.join(PDU_MIBS)}"
                )
            pdus[d.id] = Pdu(
                d.id,
                p.room,
                p.row,
                p.rack,
                read.choice(p, "feed", FEEDS),
                PDU_MIBS.get(d.profile, "apc-rpdu2"),
                read.number(p, "rated_a", 32.0),
                read.number(p, "breaker_a", 20.0),
                int(read.number(p, "outlets", 24)),
            )
        elif d.kind is DeviceKind.CRAC:
            serves_tag = d.tags.get("serves")
            serves = tuple(s.strip() for s in serves_tag.split(",")) if serves_tag else rows[p.room]
            for served in serves:
                if served not in rows[p.room]:
                    read.problems.append(
                        f"device {d.id}: tags.serves: row {served!r} is not in room {p.room}"
                    )
            cracs[d.id] = Crac(
                d.id, p.room, serves, read.number(p, "capacity_w", 150_000.0), d.profile
            )
        elif d.kind is DeviceKind.SENSOR:
            sensors[d.id] = Sensor(
                d.id, p.room, p.row, p.rack, read.choice(p, "sensor", SENSOR_ROLES)
            )
        elif d.kind is DeviceKind.METER:
            meters[d.id] = Meter(d.id, p.room, d.tags.get("scope", "facility"))
        elif d.kind is DeviceKind.GENERATOR:
            generators[d.id] = Generator(
                d.id,
                p.room,
                read.number(p, "rated_w", 500_000.0),
                read.number(p, "fuel_capacity_l", 2000.0),
                min(read.number(p, "fuel_pct", 90.0), 100.0),
                read.number(p, "start_delay_s", 10.0),
            )
        else:
            read.problems.append(f"device {d.id}: kind {d.kind.value} is not simulated")

    racks: dict[str, Rack] = {}
    for room in site.rooms:
        for row in room.rows:
            for i, rack in enumerate(row.racks):
                mine = [pd for pd in pdus.values() if pd.rack == rack.id]
                design = max(
                    (read.number(placed[pd.id], "rack_load_w", 5000.0) for pd in mine),
                    default=5000.0,
                )
                racks[rack.id] = Rack(
                    rack.id, room.id, row.id, i, len(row.racks), design, tuple(x.id for x in mine)
                )
                feeds = sorted(pd.feed for pd in mine)
                if mine and feeds != ["A", "B"]:
                    read.problems.append(
                        f"rack {rack.id}: needs one PDU on feed A and one on feed B, has {feeds}"
                    )
    for feed in {pd.feed for pd in pdus.values()}:
        if not any(u.feed == feed for u in ups.values()):
            read.problems.append(f"feed {feed}: PDUs use it but no UPS has tags.feed: {feed}")
    if read.problems:
        raise TopologyError(read.problems)
    return Topology(
        site.id, rooms, rows, racks, ups, pdus, cracs, sensors, meters, placed, generators
    )
