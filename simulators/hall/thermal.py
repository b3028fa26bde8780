"""Room and rack-inlet temperatures, and humidity, as a pure step function.

Each room is one well-mixed air volume with thermal mass (air, raised floor,
equipment): IT heat warms it, running CRACs remove heat in proportion to how
far the room is above their supply temperature, up to their capacity. A rack
inlet sees supply air mixed with recirculated room air; the mix gets worse at
row ends and when the CRACs serving its row stop, and the inlet follows that
target with a first-order lag, so a CRAC failure shows over minutes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: Room air, floor and equipment heat capacity, J/K per W of design IT load: a
#: room sized for its load then has a ~10 min time constant against its CRACs.
ROOM_J_K_PER_DESIGN_W = 150.0
#: Rack inlet lag behind the air it draws.
INLET_TAU_S = 120.0
#: Heat leaking through the building envelope to the outside.
ENVELOPE_W_K = 300.0
OUTSIDE_C = 22.0
#: A CRAC moves its full capacity at this supply/return difference.
CRAC_DESIGN_DELTA_K = 12.0
#: Rack air heats by this much at design load.
RACK_DESIGN_DELTA_K = 12.0
SUBSTEP_S = 10.0

# Magnus formula coefficients over water (Sonntag 1990), valid -45..60 °C.
MAGNUS_A = 17.62
MAGNUS_B = 243.12


def dew_point_c(temp_c: float, rh_pct: float) -> float:
    """Dew point from temperature and relative humidity (Magnus)."""
    gamma = math.log(max(rh_pct, 0.01) / 100.0) + MAGNUS_A * temp_c / (MAGNUS_B + temp_c)
    return MAGNUS_B * gamma / (MAGNUS_A - gamma)


def relative_humidity_pct(temp_c: float, dew_c: float) -> float:
    """Relative humidity of air at `temp_c` holding the moisture of dew point `dew_c`."""
    rh = 100.0 * math.exp(
        MAGNUS_A * dew_c / (MAGNUS_B + dew_c) - MAGNUS_A * temp_c / (MAGNUS_B + temp_c)
    )
    return min(rh, 100.0)


@dataclass(frozen=True, slots=True)
class CracInput:
    id: str
    room: str
    serves: tuple[str, ...]
    capacity_w: float
    running: bool

    @property
    def conductance_w_k(self) -> float:
        return self.capacity_w / CRAC_DESIGN_DELTA_K


@dataclass(frozen=True, slots=True)
class RackInput:
    id: str
    room: str
    row: str
    at_row_end: bool
    load_w: float
    design_w: float


@dataclass(frozen=True, slots=True)
class ThermalInputs:
    supply_setpoint_c: float
    racks: Sequence[RackInput]
    cracs: Sequence[CracInput]


@dataclass(frozen=True, slots=True)
class ThermalState:
    room_c: Mapping[str, float]
    inlet_c: Mapping[str, float]


def crac_cooling_w(crac: CracInput, room_c: float, setpoint_c: float) -> float:
    """Heat a CRAC removes from a room at `room_c`."""
    if not crac.running or room_c <= setpoint_c:
        return 0.0
    return min(crac.capacity_w, crac.conductance_w_k * (room_c - setpoint_c))


def crac_supply_c(crac: CracInput, room_c: float, setpoint_c: float) -> float:
    """Supply air: the setpoint while capacity lasts, warmer beyond; return air when stopped."""
    if not crac.running:
        return room_c
    return max(setpoint_c, room_c - CRAC_DESIGN_DELTA_K) if room_c > setpoint_c else room_c


def row_cooling_fraction(row: str, cracs: Sequence[CracInput]) -> float:
    """Share of the capacity serving `row` that is running (1.0 when nothing is assigned)."""
    serving = [c for c in cracs if row in c.serves]
    total = sum(c.capacity_w for c in serving)
    if total <= 0:
        return 1.0
    return sum(c.capacity_w for c in serving if c.running) / total


def inlet_target_c(rack: RackInput, room_c: float, setpoint_c: float, fraction: float) -> float:
    """Where a rack's inlet settles: supply air plus recirculated room air."""
    recirculation = 0.10 + (0.06 if rack.at_row_end else 0.0) + 0.75 * (1.0 - fraction)
    load = rack.load_w / rack.design_w if rack.design_w else 0.0
    supply = min(setpoint_c, room_c)
    return supply + recirculation * max(room_c - supply, 0.0) + 0.6 * load


def rack_outlet_c(inlet_c: float, load_w: float, design_w: float) -> float:
    """Exhaust temperature: inlet plus the heat of the load in the rack's own airflow."""
    return inlet_c + RACK_DESIGN_DELTA_K * (load_w / design_w if design_w else 0.0)


def initial_state(inputs: ThermalInputs) -> ThermalState:
    """Steady state for the given inputs (start of a simulation)."""
    state = ThermalState(
        {r.room: inputs.supply_setpoint_c + 4.0 for r in inputs.racks},
        {r.id: inputs.supply_setpoint_c for r in inputs.racks},
    )
    # Relax toward equilibrium: long simulated settling, no wall time involved.
    for _ in range(60):
        state = step(state, 300.0, inputs)
    return state


def step(state: ThermalState, dt: float, inputs: ThermalInputs) -> ThermalState:
    """Advance temperatures by `dt` seconds under constant `inputs`."""
    sp = inputs.supply_setpoint_c
    heat: dict[str, float] = {}
    capacity: dict[str, float] = {}
    for rack in inputs.racks:
        heat[rack.room] = heat.get(rack.room, 0.0) + rack.load_w
        capacity[rack.room] = capacity.get(rack.room, 0.0) + ROOM_J_K_PER_DESIGN_W * rack.design_w
    rooms = dict(state.room_c)
    remaining = dt
    while remaining > 1e-9:
        h = min(SUBSTEP_S, remaining)
        for room, temp in rooms.items():
            cooling = sum(crac_cooling_w(c, temp, sp) for c in inputs.cracs if c.room == room)
            envelope = ENVELOPE_W_K * (temp - OUTSIDE_C)
            rooms[room] = temp + (heat.get(room, 0.0) - cooling - envelope) * h / capacity[room]
        remaining -= h
    lag = 1.0 - math.exp(-dt / INLET_TAU_S)
    inlets = {}
    for rack in inputs.racks:
        fraction = row_cooling_fraction(rack.row, inputs.cracs)
        target = inlet_target_c(rack, rooms[rack.room], sp, fraction)
        current = state.inlet_c.get(rack.id, target)
        inlets[rack.id] = current + (target - current) * lag
    return ThermalState(rooms, inlets)
