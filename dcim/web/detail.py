"""Rack and device pages as data: a rack's PDUs (phases, branches, outlets) and probes;
a device's latest readings with units and recent history."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel

from dcim.inventory import DeviceKind
from dcim.vocabulary import load_vocabulary
from dcim.web.live import DeviceLive, Latest, LiveState, SeriesKey
from dcim.web.overview import _bool, live_value, pdu_power
from dcim.web.thermal import Band, InletBands

#: Sparkline box (SVG user units).
SPARK_W, SPARK_H = 120.0, 28.0


class PhaseRow(BaseModel):
    name: str
    current_a: float | None = None
    voltage_v: float | None = None
    power_w: float | None = None
    state: str | None = None


class BranchRow(BaseModel):
    name: str
    current_a: float | None = None
    rating_a: float | None = None
    load_pct: float | None = None
    state: str | None = None
    tripped: bool | None = None
    band: Band = Band.UNKNOWN


class OutletRow(BaseModel):
    name: str
    label: str | None = None
    current_a: float | None = None
    power_w: float | None = None
    on: bool | None = None


class PduView(BaseModel):
    id: str
    feed: str | None
    up: bool | None
    power_w: float | None
    phases: list[PhaseRow]
    branches: list[BranchRow]
    outlets: list[OutletRow]


class ProbeRow(BaseModel):
    device: str
    label: str
    position: str | None
    temp_c: float | None
    humidity_pct: float | None
    band: Band


class StateRow(BaseModel):
    device: str
    what: str
    state: str
    band: Band


class RackView(BaseModel):
    site: str
    room: str
    row: str
    rack: str
    ashrae_class: str
    pdus: list[PduView]
    probes: list[ProbeRow]
    states: list[StateRow]
    devices: list[str]


class ReadingRow(BaseModel):
    metric: str
    extras: str
    value: str | float | int | bool
    unit: str | None
    ts: float
    description: str
    spark: str | None = None
    minimum: float | None = None
    maximum: float | None = None


class DeviceView(BaseModel):
    id: str
    kind: str
    vendor: str
    model: str
    profile: str
    place: dict[str, str]
    up: bool | None
    interval_s: float
    readings: list[ReadingRow]
    history_slots: int
    history_bytes_full: int


def _by_tag(device: DeviceLive, metric: str, tag: str) -> dict[str, Latest]:
    out: dict[str, Latest] = {}
    for (name, _), latest in device.latest.items():
        if name == metric:
            key = latest.tag(tag)
            if key is not None:
                out[key] = latest
    return out


def _num(latest: Latest | None) -> float | None:
    return latest.number if latest is not None else None


def _text(latest: Latest | None) -> str | None:
    return None if latest is None else str(latest.value)


def _natural(name: str) -> tuple[int, str]:
    digits = "".join(c for c in name if c.isdigit())
    return (int(digits) if digits else 0, name)


def pdu_view(device: DeviceLive) -> PduView:
    phases = _by_tag(device, "pdu.phase_current_a", "phase")
    volts = _by_tag(device, "pdu.phase_voltage_v", "phase")
    watts = _by_tag(device, "pdu.phase_power_w", "phase")
    states = _by_tag(device, "pdu.phase_load_state", "phase")
    phase_names = sorted(set(phases) | set(volts) | set(watts) | set(states), key=_natural)
    branch_current = _by_tag(device, "pdu.branch_current_a", "branch")
    ratings = _by_tag(device, "pdu.branch_rating_a", "branch")
    branch_states = _by_tag(device, "pdu.branch_load_state", "branch")
    tripped = _by_tag(device, "pdu.branch_tripped", "branch")
    branches = []
    for name in sorted(set(branch_current) | set(ratings) | set(branch_states), key=_natural):
        current, rating = _num(branch_current.get(name)), _num(ratings.get(name))
        pct = 100.0 * current / rating if current is not None and rating else None
        is_tripped = _bool(tripped.get(name))
        state = _text(branch_states.get(name))
        if is_tripped or (pct is not None and pct >= 100) or state in ("overload", "high_critical"):
            band = Band.CRITICAL
        elif (pct is not None and pct >= 80) or state in ("near_overload", "high_warning"):
            band = Band.WARNING
        elif pct is None and state is None:
            band = Band.UNKNOWN
        else:
            band = Band.NORMAL
        branches.append(
            BranchRow(
                name=name,
                current_a=current,
                rating_a=rating,
                load_pct=pct,
                state=state,
                tripped=is_tripped,
                band=band,
            )
        )
    outlet_current = _by_tag(device, "pdu.outlet_current_a", "outlet")
    outlet_power = _by_tag(device, "pdu.outlet_power_w", "outlet")
    outlet_on = _by_tag(device, "pdu.outlet_on", "outlet")
    outlets = []
    for name in sorted(set(outlet_current) | set(outlet_power) | set(outlet_on), key=_natural):
        any_reading = outlet_current.get(name) or outlet_power.get(name) or outlet_on.get(name)
        outlets.append(
            OutletRow(
                name=name,
                label=any_reading.tag("label") if any_reading is not None else None,
                current_a=_num(outlet_current.get(name)),
                power_w=_num(outlet_power.get(name)),
                on=_bool(outlet_on.get(name)),
            )
        )
    return PduView(
        id=device.placed.device.id,
        feed=device.placed.tags.get("feed"),
        up=_bool(live_value(device, "device.up")),
        power_w=pdu_power(device),
        phases=[
            PhaseRow(
                name=p,
                current_a=_num(phases.get(p)),
                voltage_v=_num(volts.get(p)),
                power_w=_num(watts.get(p)),
                state=_text(states.get(p)),
            )
            for p in phase_names
        ],
        branches=branches,
        outlets=outlets,
    )


def rack_view(
    live: LiveState, site: str, room: str, rack: str, bands: InletBands
) -> RackView | None:
    devices = [
        d
        for d in live.devices.values()
        if d.placed.site == site and d.placed.room == room and d.placed.rack == rack
    ]
    if not devices:
        return None
    probes: list[ProbeRow] = []
    states: list[StateRow] = []
    for device in devices:
        if device.placed.device.kind is not DeviceKind.SENSOR:
            continue
        humidity = {
            x.tag("label") or x.tag("position") or "": x
            for x in _all(device, "sensor.humidity_pct")
        }
        for temp in _all(device, "sensor.temp_c"):
            label = temp.tag("label") or temp.tag("position") or device.placed.device.id
            position = temp.tag("position")
            rh = humidity.get(temp.tag("label") or temp.tag("position") or "")
            probes.append(
                ProbeRow(
                    device=device.placed.device.id,
                    label=label,
                    position=position,
                    temp_c=temp.number,
                    humidity_pct=_num(rh),
                    band=bands.band(temp.number) if position == "inlet" else Band.NORMAL,
                )
            )
        for metric, what, bad, band in (
            ("sensor.door_open", "door", "open", Band.WARNING),
            ("sensor.leak_detected", "leak", "wet", Band.CRITICAL),
            ("sensor.smoke_detected", "smoke", "alarm", Band.CRITICAL),
        ):
            values = [_bool(x) for x in _all(device, metric)]
            if values:
                on = any(values)
                good = {"door": "closed", "leak": "dry", "smoke": "normal"}[what]
                states.append(
                    StateRow(
                        device=device.placed.device.id,
                        what=what,
                        state=bad if on else good,
                        band=band if on else Band.NORMAL,
                    )
                )
    first = devices[0].placed
    return RackView(
        site=site,
        room=room,
        row=first.row,
        rack=rack,
        ashrae_class=bands.name,
        pdus=[pdu_view(d) for d in devices if d.placed.device.kind is DeviceKind.PDU],
        probes=probes,
        states=states,
        devices=[d.placed.device.id for d in devices],
    )


def _all(device: DeviceLive, metric: str) -> Sequence[Latest]:
    return device.series(metric)


def spark_path(
    points: Sequence[tuple[float, float]],
) -> tuple[str | None, float | None, float | None]:
    """An SVG path through `points` in a SPARK_W x SPARK_H box, with the min and max."""
    finite = [(t, v) for t, v in points if math.isfinite(v)]
    if len(finite) < 2:
        return None, None, None
    t0, t1 = finite[0][0], finite[-1][0]
    lo = min(v for _, v in finite)
    hi = max(v for _, v in finite)
    span_t = (t1 - t0) or 1.0
    span_v = (hi - lo) or 1.0
    pad = 2.0
    parts = []
    for i, (t, v) in enumerate(finite):
        x = (t - t0) / span_t * SPARK_W
        y = pad + (1 - (v - lo) / span_v) * (SPARK_H - 2 * pad)
        parts.append(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}")
    return " ".join(parts), lo, hi


def device_view(
    live: LiveState,
    device_id: str,
    history: dict[SeriesKey, list[tuple[float, float]]] | None = None,
) -> DeviceView | None:
    """`history`: longer ranges read elsewhere (InfluxDB); default the in-memory rings."""
    device = live.devices.get(device_id)
    if device is None:
        return None
    vocabulary = load_vocabulary()
    rows = []
    for key, latest in sorted(
        device.latest.items(), key=lambda item: (item[0][0], _extras_order(item[0][1]))
    ):
        metric, extras = key
        points = (history or {}).get(key) if history is not None else live.history(device_id, key)
        spark, lo, hi = (
            spark_path(points or []) if latest.number is not None else (None, None, None)
        )
        spec = vocabulary.metrics.get(metric)
        rows.append(
            ReadingRow(
                metric=metric,
                extras=", ".join(f"{k}={v}" for k, v in extras),
                value=latest.value,
                unit=latest.unit or (spec.unit if spec is not None else None),
                ts=latest.ts_ns / 1e9,
                description=spec.description if spec is not None else "",
                spark=spark,
                minimum=lo,
                maximum=hi,
            )
        )
    placed = device.placed
    return DeviceView(
        id=placed.device.id,
        kind=placed.device.kind.value,
        vendor=placed.device.vendor,
        model=placed.device.model,
        profile=placed.device.profile,
        place={
            k: v
            for k, v in (
                ("site", placed.site),
                ("room", placed.room),
                ("row", placed.row),
                ("rack", placed.rack),
            )
            if v
        },
        up=_bool(live_value(device, "device.up")),
        interval_s=placed.device.poll_interval_s,
        readings=rows,
        history_slots=device.history.capacity,
        history_bytes_full=device.history.bytes_when_full,
    )


def _extras_order(extras: tuple[tuple[str, str], ...]) -> tuple[tuple[str, int, str], ...]:
    return tuple((k, *_natural(v)) for k, v in extras)
