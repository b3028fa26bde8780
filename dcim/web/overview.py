"""The site overview as data: floor maps, power chain, cooling, fire/leak/door, PUE.

Built from the live state and the open incidents; plain pydantic models, so a peer
can send its sites as JSON (`/api/v1/state`) and this board renders them the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel

from dcim.alerts.model import Incident, Phase, Severity
from dcim.inventory import Config, DeviceKind, PlacedDevice, SiteConfig
from dcim.web.live import DeviceLive, Latest, LiveState
from dcim.web.thermal import Band, InletBands, class_bands

#: UPS output sources that mean the load runs on the battery or is not powered.
ON_BATTERY = frozenset({"battery"})
NO_OUTPUT = frozenset({"none"})
#: Smoke stages from which the board shows a fire condition (VESDA Action and above).
SMOKE_ALARM = frozenset({"action", "fire1", "fire2"})
#: Below this a PDU counts as carrying no load (its feed is dead or it is off).
LIVE_W = 1.0


class RackCell(BaseModel):
    id: str
    room: str
    row: str
    inlet_c: float | None = None
    band: Band = Band.UNKNOWN
    #: Worst open incident on the rack: "fire", "critical", "warning" or None.
    incident: str | None = None
    #: Cooling units serving the rack's row that are failed, stopped or silent.
    cooling_lost: list[str] = []


class RowView(BaseModel):
    id: str
    racks: list[RackCell]


class InletBandsModel(BaseModel):
    low_critical: float | None
    low_warning: float | None
    high_warning: float | None
    high_critical: float | None


class RoomView(BaseModel):
    id: str
    ashrae_class: str
    bands: InletBandsModel
    rows: list[RowView]
    #: Racks per band, for a one-line summary.
    counts: dict[str, int]
    incidents: int = 0


class UpsView(BaseModel):
    id: str
    room: str
    feed: str | None
    up: bool | None
    source: str | None
    band: Band
    load_pct: float | None = None
    charge_pct: float | None = None
    runtime_s: float | None = None
    on_battery_s: float | None = None
    output_w: float | None = None
    rated_w: float | None = None


class FeedView(BaseModel):
    name: str
    ups: list[str]
    pdus: int
    pdus_live: int
    load_w: float | None
    band: Band


class MeterView(BaseModel):
    id: str
    scope: str
    power_w: float | None


class PowerView(BaseModel):
    #: "present" (every UPS on its input), "lost", "partial", "unknown"
    utility: str
    ups_on_input: int
    ups_known: int
    meters: list[MeterView]
    ups: list[UpsView]
    feeds: list[FeedView]
    #: 2N: what one side can carry (the smaller feed's UPS capacity) and what is left
    capacity_w: float | None
    load_w: float | None
    headroom_w: float | None
    headroom_band: Band


class CracView(BaseModel):
    id: str
    room: str
    up: bool | None
    supply_c: float | None
    return_c: float | None
    fan_pct: float | None
    mode: str | None
    running: bool | None
    alarm: bool | None
    band: Band


class SafetyItem(BaseModel):
    id: str
    room: str
    rack: str
    what: str  # smoke, leak, door
    state: str  # normal, alert, action, fire1, fire2, wet, dry, open, closed, unknown
    band: Band


class SafetyView(BaseModel):
    items: list[SafetyItem]
    smoke: int
    leaks: int
    doors: int
    #: Items not in the normal state (shown one by one); the rest only counted.
    attention: list[SafetyItem]


class SiteView(BaseModel):
    id: str
    name: str
    timezone: str
    rooms: list[RoomView]
    power: PowerView
    cooling: list[CracView]
    safety: SafetyView
    pue: float | None
    pue_band: Band
    #: open (firing) incidents by severity name, "fire" for fire alarms
    incident_counts: dict[str, int]
    devices: int
    devices_down: int


def _value(latest: Latest | None) -> float | None:
    return latest.number if latest is not None else None


def _bool(latest: Latest | None) -> bool | None:
    if latest is None:
        return None
    value = latest.value
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return str(value).lower() in ("true", "1", "yes", "on")


def incident_mark(incident: Incident) -> str:
    if incident.fire_alarm:
        return "fire"
    return incident.severity.value


_MARK_RANK = {"fire": 4, "critical": 3, "warning": 2, "info": 1}


def worse_mark(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if _MARK_RANK.get(a, 0) >= _MARK_RANK.get(b, 0) else b


def firing(incidents: Iterable[Incident]) -> list[Incident]:
    return [i for i in incidents if i.phase is Phase.FIRING]


class OverviewBuilder:
    """Builds a `SiteView` per site of the config from the live state and incidents."""

    def __init__(self, config: Config, engine_bands: InletBands) -> None:
        self.config = config
        self.engine_bands = engine_bands
        self._bands: dict[str, InletBands] = {}
        #: (site, room, row, rack) -> its cell of the last build (the inventory's racks)
        self._cells: dict[tuple[str, str, str, str], RackCell] = {}

    def room_bands(self, ashrae_class: str | None) -> InletBands:
        if ashrae_class is None:
            return self.engine_bands
        if ashrae_class not in self._bands:
            self._bands[ashrae_class] = class_bands(ashrae_class)
        return self._bands[ashrae_class]

    def _cell(
        self,
        where: tuple[str, str, str, str],
        inlet_c: float | None,
        band: Band,
        incident: str | None,
        cooling_lost: list[str],
    ) -> RackCell:
        """The rack's cell, the one of the last build when nothing in it changed: a floor
        map of thousands of racks built every update would otherwise hand the garbage
        collector thousands of objects a second, each walked by its full passes."""
        known = self._cells.get(where)
        if (
            known is not None
            and known.inlet_c == inlet_c
            and known.band == band
            and known.incident == incident
            and known.cooling_lost == cooling_lost
        ):
            return known
        _, room_id, row_id, rack_id = where
        cell = RackCell(
            id=rack_id,
            room=room_id,
            row=row_id,
            inlet_c=inlet_c,
            band=band,
            incident=incident,
            cooling_lost=cooling_lost,
        )
        self._cells[where] = cell
        return cell

    def sites(self, live: LiveState, incidents: Sequence[Incident]) -> list[SiteView]:
        active = firing(incidents)
        return [self.site(site, live, active) for site in self.config.sites]

    def site(self, site: SiteConfig, live: LiveState, active: Sequence[Incident]) -> SiteView:
        devices = [d for d in live.devices.values() if d.placed.site == site.id]
        rack_of = {d.placed.device.id: d.placed.rack for d in devices}
        marks: dict[str, str | None] = {}
        room_incidents: dict[str, int] = {}
        counts: dict[str, int] = {}
        for incident in active:
            if incident.labels.get("site", site.id) != site.id:
                continue
            name = incident_mark(incident)
            counts[name] = counts.get(name, 0) + 1
            rack = incident.labels.get("rack") or rack_of.get(incident.labels.get("device", ""))
            if rack:
                marks[rack] = worse_mark(marks.get(rack), name)
            room = incident.labels.get("room")
            if room:
                room_incidents[room] = room_incidents.get(room, 0) + 1
        in_room: dict[str, list[DeviceLive]] = {}
        for device in devices:
            in_room.setdefault(device.placed.room, []).append(device)
        rooms = [
            self._room(
                site,
                room_id=room.id,
                ashrae_class=room.ashrae_class,
                devices=in_room.get(room.id, []),
                marks=marks,
                room_incidents=room_incidents,
            )
            for room in site.rooms
        ]
        down = sum(1 for d in devices if _bool(live_value(d, "device.up")) is False)
        power = _power(devices)
        pue, pue_band = _pue(devices, power)
        return SiteView(
            id=site.id,
            name=site.name or site.id,
            timezone=site.timezone,
            rooms=rooms,
            power=power,
            cooling=[_crac(d) for d in devices if d.placed.device.kind is DeviceKind.CRAC],
            safety=_safety(devices),
            pue=pue,
            pue_band=pue_band,
            incident_counts=counts,
            devices=len(devices),
            devices_down=down,
        )

    def _room(
        self,
        site: SiteConfig,
        *,
        room_id: str,
        ashrae_class: str | None,
        devices: Sequence[DeviceLive],
        marks: Mapping[str, str | None],
        room_incidents: Mapping[str, int],
    ) -> RoomView:
        bands = self.room_bands(ashrae_class)
        inlets: dict[str, float] = {}
        worst: dict[str, Band] = {}
        for device in devices:
            placed = device.placed
            if placed.room != room_id or not placed.rack:
                continue
            for latest in _series(device, "sensor.temp_c"):
                if latest.tag("position") != "inlet" or latest.number is None:
                    continue
                band = bands.band(latest.number)
                where = placed.rack
                # the worst probe decides: the farther from normal, the worse
                if (
                    where not in worst
                    or band.rank > worst[where].rank
                    or (band == worst[where] and _farther(latest.number, inlets[where], bands))
                ):
                    worst[where], inlets[where] = band, latest.number
        room = next(r for r in site.rooms if r.id == room_id)
        lost = _cooling_lost(devices, room_id, [row.id for row in room.rows])
        rows = []
        counts: dict[str, int] = {}
        for row in room.rows:
            cells = []
            for rack in row.racks:
                band = worst.get(rack.id, Band.UNKNOWN)
                failed = lost.get(row.id, [])
                if failed and band.rank < Band.WARNING.rank:
                    band = Band.WARNING  # its cooling is gone: it will heat up
                counts[band.value] = counts.get(band.value, 0) + 1
                cells.append(
                    self._cell(
                        (site.id, room_id, row.id, rack.id),
                        inlets.get(rack.id),
                        band,
                        marks.get(rack.id),
                        failed,
                    )
                )
            rows.append(RowView(id=row.id, racks=cells))
        return RoomView(
            id=room_id,
            ashrae_class=bands.name,
            bands=InletBandsModel(
                low_critical=bands.low_critical,
                low_warning=bands.low_warning,
                high_warning=bands.high_warning,
                high_critical=bands.high_critical,
            ),
            rows=rows,
            counts=counts,
            incidents=room_incidents.get(room_id, 0),
        )


def served_rows(crac: PlacedDevice, rows: Sequence[str]) -> list[str]:
    """The rows a cooling unit serves: its `serves` tag (row ids), else its whole room."""
    tag = crac.tags.get("serves")
    if not tag:
        return list(rows)
    return [row.strip() for row in tag.split(",") if row.strip() in rows]


def _cooling_lost(
    devices: Sequence[DeviceLive], room: str, rows: Sequence[str]
) -> dict[str, list[str]]:
    """Row id -> cooling units serving it that failed (alarm, fault), stopped or went silent."""
    lost: dict[str, list[str]] = {}
    for device in devices:
        placed = device.placed
        if placed.device.kind is not DeviceKind.CRAC or placed.room != room:
            continue
        view = _crac(device)
        if view.up is False or view.alarm or view.mode in ("fault", "off") or view.running is False:
            for row in served_rows(placed, rows):
                lost.setdefault(row, []).append(placed.device.id)
    return lost


def _farther(value: float, other: float, bands: InletBands) -> bool:
    middle = _middle(bands)
    return abs(value - middle) > abs(other - middle)


def _middle(bands: InletBands) -> float:
    low = bands.low_warning if bands.low_warning is not None else bands.low_critical
    high = bands.high_warning if bands.high_warning is not None else bands.high_critical
    if low is not None and high is not None:
        return (low + high) / 2
    return low if low is not None else (high if high is not None else 0.0)


def _series(device: DeviceLive, metric: str) -> Sequence[Latest]:
    return device.series(metric)


def live_value(device: DeviceLive, metric: str, **want: str) -> Latest | None:
    for latest in _series(device, metric):
        if all(latest.tag(k) == v for k, v in want.items()):
            return latest
    return None


def _up(device: DeviceLive) -> bool | None:
    return _bool(live_value(device, "device.up"))


def _tag_number(placed: PlacedDevice, name: str) -> float | None:
    raw = placed.tags.get(name)
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def _sum_lines(device: DeviceLive, metric: str) -> float | None:
    """A UPS value given per output line (and/or in total): the total, else the sum."""
    values = [x for x in _series(device, metric) if x.number is not None]
    if not values:
        return None
    totals = [x.number for x in values if x.tag("line") is None]
    if totals and totals[0] is not None:
        return totals[0]
    return sum(x.number or 0.0 for x in values)


def _max_lines(device: DeviceLive, metric: str) -> float | None:
    numbers = [x.number for x in _series(device, metric) if x.number is not None]
    return max(numbers) if numbers else None


def ups_view(device: DeviceLive) -> UpsView:
    placed = device.placed
    source_reading = live_value(device, "ups.output_source")
    source = str(source_reading.value) if source_reading is not None else None
    up = _up(device)
    load = _max_lines(device, "ups.load_pct")
    output = _sum_lines(device, "ups.output_power_w")
    rated = _tag_number(placed, "rated_w")
    if rated is None and output and load:
        rated = output / (load / 100.0)
    if up is False or source in NO_OUTPUT or source in ON_BATTERY:
        band = Band.CRITICAL
    elif source is None:
        band = Band.UNKNOWN
    elif source != "normal" or (load is not None and load >= 80):
        band = Band.WARNING
    else:
        band = Band.NORMAL
    return UpsView(
        id=placed.device.id,
        room=placed.room,
        feed=placed.tags.get("feed"),
        up=up,
        source=source,
        band=band,
        load_pct=load,
        charge_pct=_value(live_value(device, "ups.battery_charge_pct")),
        runtime_s=_value(live_value(device, "ups.battery_runtime_s")),
        on_battery_s=_value(live_value(device, "ups.on_battery_s")),
        output_w=output,
        rated_w=rated,
    )


def pdu_power(device: DeviceLive) -> float | None:
    """A PDU's total load: its inlets added up, else its one device-level total."""
    totals = [x for x in _series(device, "pdu.power_w") if x.number is not None]
    if not totals:
        return None
    inlets = [x.number or 0.0 for x in totals if x.tag("inlet") is not None]
    if inlets:
        return sum(inlets)
    return max(x.number or 0.0 for x in totals)


def _power(devices: Sequence[DeviceLive]) -> PowerView:
    ups = [ups_view(d) for d in devices if d.placed.device.kind is DeviceKind.UPS]
    known = [u for u in ups if u.source is not None and u.up is not False]
    on_input = [u for u in known if u.source not in ON_BATTERY | NO_OUTPUT]
    if not known:
        utility = "unknown"
    elif len(on_input) == len(known):
        utility = "present"
    elif not on_input:
        utility = "lost"
    else:
        utility = "partial"
    feeds: dict[str, FeedView] = {}
    for u in ups:
        if u.feed:
            feed = feeds.setdefault(
                u.feed,
                FeedView(name=u.feed, ups=[], pdus=0, pdus_live=0, load_w=None, band=Band.UNKNOWN),
            )
            feed.ups.append(u.id)
    for device in devices:
        if device.placed.device.kind is not DeviceKind.PDU:
            continue
        name = device.placed.tags.get("feed")
        if not name:
            continue
        feed = feeds.setdefault(
            name, FeedView(name=name, ups=[], pdus=0, pdus_live=0, load_w=None, band=Band.UNKNOWN)
        )
        feed.pdus += 1
        watts = pdu_power(device)
        if watts is not None:
            feed.load_w = (feed.load_w or 0.0) + watts
            if watts >= LIVE_W:
                feed.pdus_live += 1
    for feed in feeds.values():
        if feed.load_w is None:
            feed.band = Band.UNKNOWN
        elif feed.pdus and feed.pdus_live == 0:
            feed.band = Band.CRITICAL  # a whole feed carries nothing: it is lost
        elif feed.pdus_live < feed.pdus:
            feed.band = Band.WARNING
        else:
            feed.band = Band.NORMAL
    by_feed: dict[str, float] = {}
    for u in ups:
        if u.feed and u.rated_w:
            by_feed[u.feed] = by_feed.get(u.feed, 0.0) + u.rated_w
    capacity = min(by_feed.values()) if len(by_feed) >= 2 else None
    loads = [f.load_w for f in feeds.values() if f.load_w is not None]
    if not loads:
        ups_out = [u.output_w for u in ups if u.output_w is not None]
        loads = ups_out
    load = sum(loads) if loads else None
    headroom = capacity - load if capacity is not None and load is not None else None
    if headroom is None or capacity is None:
        headroom_band = Band.UNKNOWN
    elif headroom < 0:
        headroom_band = Band.CRITICAL
    elif headroom < 0.2 * capacity:
        headroom_band = Band.WARNING
    else:
        headroom_band = Band.NORMAL
    meters = [
        MeterView(
            id=d.placed.device.id,
            scope=d.placed.tags.get("scope", ""),
            power_w=_meter_power(d),
        )
        for d in devices
        if d.placed.device.kind is DeviceKind.METER
    ]
    return PowerView(
        utility=utility,
        ups_on_input=len(on_input),
        ups_known=len(known),
        meters=meters,
        ups=ups,
        feeds=sorted(feeds.values(), key=lambda f: f.name),
        capacity_w=capacity,
        load_w=load,
        headroom_w=headroom,
        headroom_band=headroom_band,
    )


def _meter_power(device: DeviceLive, scope: str | None = None) -> float | None:
    for latest in _series(device, "meter.power_w"):
        if latest.tag("phase") is not None:
            continue
        if scope is None or (latest.tag("scope") or device.placed.tags.get("scope")) == scope:
            return latest.number
    return None


def _pue(devices: Sequence[DeviceLive], power: PowerView) -> tuple[float | None, Band]:
    """Facility power / IT power, as the `site.pue` rule computes it; else over the PDUs."""
    facility = it = None
    for device in devices:
        if device.placed.device.kind is not DeviceKind.METER:
            continue
        facility = facility if facility is not None else _meter_power(device, "facility")
        it = it if it is not None else _meter_power(device, "it")
    if it is None:
        it = sum(f.load_w for f in power.feeds if f.load_w is not None) or None
    if facility is None or not it:
        return None, Band.UNKNOWN
    pue = facility / it
    if pue < 1.0 or pue >= 2.0:
        return pue, Band.CRITICAL if pue < 1.0 else Band.WARNING
    return pue, Band.NORMAL


def _crac(device: DeviceLive) -> CracView:
    placed = device.placed
    up = _up(device)
    alarms = [_bool(x) for x in _series(device, "crac.alarm")]
    alarm = any(a for a in alarms if a) if alarms else None
    mode_reading = live_value(device, "crac.operating_mode")
    mode = str(mode_reading.value) if mode_reading is not None else None
    on = _bool(live_value(device, "crac.unit_on"))
    if up is False or alarm or mode == "fault":
        band = Band.CRITICAL
    elif on is False or mode == "off":
        band = Band.WARNING
    elif alarm is None and mode is None and on is None:
        band = Band.UNKNOWN
    else:
        band = Band.NORMAL
    return CracView(
        id=placed.device.id,
        room=placed.room,
        up=up,
        supply_c=_value(live_value(device, "crac.supply_air_temp_c")),
        return_c=_value(live_value(device, "crac.return_air_temp_c")),
        fan_pct=_value(live_value(device, "crac.fan_speed_pct")),
        mode=mode,
        running=on,
        alarm=alarm,
        band=band,
    )


def _safety(devices: Sequence[DeviceLive]) -> SafetyView:
    items: list[SafetyItem] = []
    for device in devices:
        placed = device.placed
        if placed.device.kind is not DeviceKind.SENSOR:
            continue
        where = {"id": placed.device.id, "room": placed.room, "rack": placed.rack}
        level = live_value(device, "sensor.smoke_level")
        detected = [_bool(x) for x in _series(device, "sensor.smoke_detected")]
        if level is not None or detected:
            stage = str(level.value) if level is not None else None
            if any(detected):
                state, band = (
                    "fire1" if stage in (None, "normal", "alert") else stage,
                    Band.CRITICAL,
                )
            elif stage is None:
                state, band = "normal", Band.NORMAL
            else:
                state = stage
                band = (
                    Band.CRITICAL
                    if stage in SMOKE_ALARM
                    else Band.WARNING
                    if stage == "alert"
                    else Band.NORMAL
                )
            items.append(SafetyItem(**where, what="smoke", state=state, band=band))
        leaks = [_bool(x) for x in _series(device, "sensor.leak_detected")]
        if leaks:
            wet = any(leaks)
            items.append(
                SafetyItem(
                    **where,
                    what="leak",
                    state="wet" if wet else "dry",
                    band=Band.CRITICAL if wet else Band.NORMAL,
                )
            )
        doors = [_bool(x) for x in _series(device, "sensor.door_open")]
        if doors:
            opened = any(doors)
            items.append(
                SafetyItem(
                    **where,
                    what="door",
                    state="open" if opened else "closed",
                    band=Band.WARNING if opened else Band.NORMAL,
                )
            )
    down = {d.placed.device.id for d in devices if _up(d) is False}
    for item in items:
        if item.id in down:
            item.state, item.band = "unknown", Band.UNKNOWN
    attention = [i for i in items if i.band is not Band.NORMAL]
    attention.sort(key=lambda i: (-i.band.rank, i.what, i.id))
    return SafetyView(
        items=[],  # only counts and what needs attention travel (a hall has hundreds)
        smoke=sum(1 for i in items if i.what == "smoke"),
        leaks=sum(1 for i in items if i.what == "leak"),
        doors=sum(1 for i in items if i.what == "door"),
        attention=attention,
    )


SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
