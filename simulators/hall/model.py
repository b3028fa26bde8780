"""The state of a whole data hall, advanced in fixed ticks of simulated time.

`HallModel` owns everything that changes: IT load noise, UPS models, breaker
trips, temperatures, smoke, leaks, doors, faults. The physics lives in the pure
functions of `power` and `thermal`; this class wires them together, applies
faults (the scenario actions) and reports transitions as `HallEvent`s to its
listeners (trap sender, CLI). The same seed and the same actions at the same
simulated times give the same values.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from simulators.hall import power, thermal
from simulators.hall.generator import GeneratorSet
from simulators.hall.topology import Pdu, Topology
from simulators.ups import BatteryStatus, OutputSource, UpsModel, UpsState, ou_step

#: A branch breaker opens after this long above its rating (thermal trip, simplified).
TRIP_DELAY_S = 60.0
NOMINAL_V = 230.0
#: Fan power as a share of cooling capacity (EC fans at part load).
CRAC_FAN_SHARE = 0.02
CRAC_COP = 3.0
#: Aspirating-detector stage thresholds in %/m: FAAST factory defaults [F2].
SMOKE_THRESHOLDS = (("alert", 0.0396), ("action", 0.165), ("fire1", 0.825), ("fire2", 1.65))
SMOKE_BASELINE = 0.004
#: Rack probe measurement noise: standard deviation and correlation time (Ornstein-Uhlenbeck).
PROBE_NOISE_C = 0.05
PROBE_NOISE_TAU_S = 60.0


class SensorFault(StrEnum):
    STUCK = "stuck"
    DRIFT = "drift"
    DROPOUT = "dropout"


@dataclass(frozen=True, slots=True)
class HallEvent:
    """A state change worth telling someone about (trap, console line).

    `kind` uses the vocabulary's event.trap values where one fits.
    """

    time_s: float
    kind: str
    device: str
    detail: str
    data: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EnvReading:
    """What a rack probe reports; None for a value it cannot read (dropout)."""

    inlet_c: float | None
    outlet_c: float | None
    inlet_rh: float | None
    outlet_rh: float | None
    dew_point_c: float | None

    @property
    def ok(self) -> bool:
        return self.inlet_c is not None


@dataclass(frozen=True, slots=True)
class CracReading:
    running: bool
    supply_c: float
    return_c: float
    setpoint_c: float
    return_rh: float
    cooling_w: float
    capacity_w: float
    power_w: float
    fan_pct: float


@dataclass(slots=True)
class _Fault:
    kind: SensorFault
    since_s: float
    rate_c_per_h: float
    frozen: EnvReading | None


def smoke_level(obscuration: float) -> str:
    """VESDA-style stage for an obscuration in %/m."""
    level = "normal"
    for name, threshold in SMOKE_THRESHOLDS:
        if obscuration >= threshold:
            level = name
    return level


class HallModel:
    """All devices of one site; call `advance_to(now_s)`, then read."""

    def __init__(
        self,
        topology: Topology,
        *,
        seed: int = 0,
        start_s: float = 0.0,
        tick_s: float = 5.0,
        supply_setpoint_c: float = 20.0,
    ) -> None:
        if tick_s <= 0:
            raise ValueError("tick_s must be positive")
        self.topology = topology
        self.tick_s = tick_s
        self.setpoint_c = supply_setpoint_c
        self.time_s = start_s
        self.listeners: list[Callable[[HallEvent], None]] = []
        self._rng = random.Random(seed)

        self.utility_on = True
        self.generator_on = False
        self.failed_feeds: set[str] = set()
        self.failed_cracs: set[str] = set()
        self.silent: set[str] = set()
        self.leaks: set[str] = set()
        self.doors_open: set[str] = set()
        self.tripped: set[tuple[str, int]] = set()
        self.branch_extra_w: dict[tuple[str, int], float] = {}
        self._over_since: dict[tuple[str, int], float] = {}
        self._faults: dict[str, _Fault] = {}
        self._smoke_ramp: dict[str, tuple[float, float, float, float]] = {}

        rng = self._rng
        self._shares = {
            rack.id: power.server_shares(
                [rng.uniform(0.5, 1.5) for _ in range(self._servers(rack.id))]
            )
            for rack in topology.racks.values()
        }
        self._noise = dict.fromkeys(topology.racks, 0.0)
        # probe measurement noise (inlet, outlet): real probes jitter by a few hundredths
        # of a degree, so a healthy probe never repeats one value for long; its own
        # generator keeps the rest of the model's random sequence as it was
        self._probe_rng = random.Random(f"{seed}/probes")
        self._probe_noise = dict.fromkeys(topology.sensors, (0.0, 0.0))
        self._dew_c = dict.fromkeys(topology.rooms, 9.0)
        self._probe_offset = {s: rng.gauss(0.0, 0.15) for s in topology.sensors}
        self.obscuration = dict.fromkeys(
            (s.id for s in topology.sensors.values() if s.role == "smoke"), SMOKE_BASELINE
        )
        self.ups_models: dict[str, UpsModel] = {}
        for i, u in enumerate(sorted(topology.ups.values(), key=lambda u: u.id)):
            self.ups_models[u.id] = UpsModel(
                u.rated_va,
                u.rated_w,
                NOMINAL_V,
                seed + 1000 + i,
                lines=3,
                start_s=start_s,
                tick_s=tick_s,
                battery_wh=u.rated_w * 0.25,  # ~15 min at full load, a common data-hall sizing
            )
        self.generators = {
            g.id: GeneratorSet(
                g.rated_w,
                g.fuel_capacity_l,
                g.fuel_capacity_l * g.fuel_pct / 100.0,
                start_delay_s=g.start_delay_s,
            )
            for g in topology.generators.values()
        }
        self._gen_seen = {g: (s.state, dict(s.alarms)) for g, s in self.generators.items()}
        self.energy_kwh = dict.fromkeys(topology.pdus, 0.0)
        self.outlet_energy_kwh = {p.id: [0.0] * p.outlets for p in topology.pdus.values()}
        self.facility_energy_kwh = 0.0
        self.it_energy_kwh = 0.0
        self._ups_seen: dict[str, tuple[OutputSource, BatteryStatus]] = {}
        self._branch_state: dict[tuple[str, int], str] = {}

        self._ups_states = {k: m.state() for k, m in self.ups_models.items()}
        self._compute_power()
        for ups in self.ups_models.values():
            ups.step(0.0)  # take on the hall's load before anyone reads it
        self._ups_states = {k: m.state() for k, m in self.ups_models.items()}
        self.thermal = thermal.initial_state(self._thermal_inputs())
        self._ups_seen = {
            k: (s.output_source, s.battery_status) for k, s in self._ups_states.items()
        }

    # -- structure ---------------------------------------------------------

    def _servers(self, rack_id: str) -> int:
        pdus = [self.topology.pdus[p] for p in self.topology.racks[rack_id].pdus]
        return min((p.outlets for p in pdus), default=1)

    def emit(self, kind: str, device: str, detail: str, **data: str) -> None:
        event = HallEvent(self.time_s, kind, device, detail, data)
        for listener in list(self.listeners):
            listener(event)

    # -- time ----------------------------------------------------------------

    def advance_to(self, now_s: float) -> None:
        """Advance in whole ticks up to `now_s`; earlier times are ignored."""
        ticks = math.floor((now_s - self.time_s) / self.tick_s + 1e-9)
        for _ in range(max(ticks, 0)):
            self.step(self.tick_s)

    def step(self, dt: float) -> None:
        g = self._rng.gauss
        for rack in self._noise:
            self._noise[rack] = ou_step(self._noise[rack], 0.0, 0.03, 600.0, dt=dt, z=g(0, 1))
        pg = self._probe_rng.gauss
        for sid, (inlet_n, outlet_n) in self._probe_noise.items():
            self._probe_noise[sid] = (
                ou_step(inlet_n, 0.0, PROBE_NOISE_C, PROBE_NOISE_TAU_S, dt=dt, z=pg(0, 1)),
                ou_step(outlet_n, 0.0, PROBE_NOISE_C, PROBE_NOISE_TAU_S, dt=dt, z=pg(0, 1)),
            )
        for room in self._dew_c:
            self._dew_c[room] = ou_step(self._dew_c[room], 9.0, 0.6, 10800.0, dt=dt, z=g(0, 1))
        for sid, ramp in self._smoke_ramp.items():
            t0, v0, target, ramp_s = ramp
            frac = 1.0 if ramp_s <= 0 else min((self.time_s + dt - t0) / ramp_s, 1.0)
            self.obscuration[sid] = max(v0 + (target - v0) * frac + g(0, 0.0005), 0.0)

        self._step_generators(dt)
        mains = self.mains_on
        for model in self.ups_models.values():
            model.set_utility(mains)
            model.step(dt)
        self._ups_states = {k: m.state() for k, m in self.ups_models.items()}
        self.time_s += dt
        self._compute_power()
        self._check_breakers(dt)
        self.thermal = thermal.step(self.thermal, dt, self._thermal_inputs())
        hours = dt / 3600.0
        for pid, flow in self.flows.items():
            self.energy_kwh[pid] += flow.total_w * hours / 1000.0
            outlets = self.outlet_energy_kwh[pid]
            for i, w in enumerate(flow.outlet_w):
                outlets[i] += w * hours / 1000.0
        self.facility_energy_kwh += self.facility_w() * hours / 1000.0
        self.it_energy_kwh += self.it_w() * hours / 1000.0
        self._check_ups_events()
        self._check_smoke_levels()

    @property
    def mains_on(self) -> bool:
        """Utility or generator feeds the UPS inputs and the cooling."""
        return (
            self.utility_on or self.generator_on or any(g.on_load for g in self.generators.values())
        )

    def _step_generators(self, dt: float) -> None:
        """Each set's controller watches the utility; the sets on load share the hall's load."""
        if not self.generators:
            return
        on_load = [g for g in self.generators.values() if g.on_load]
        load = self.facility_w() / len(on_load) if on_load and not self.utility_on else 0.0
        for gid, gen in self.generators.items():
            gen.step(dt, self.utility_on, load)
            state, alarms = self._gen_seen[gid]
            if gen.state != state:
                self.emit("generator_" + gen.state.value, gid, f"generator {gen.state.value}")
            for alarm, level in gen.alarms.items():
                if alarms.get(alarm) != level:
                    self.emit("generator_alarm", gid, f"{alarm} {level}", alarm=alarm)
            self._gen_seen[gid] = (gen.state, dict(gen.alarms))

    # -- power ---------------------------------------------------------------

    def feed_live(self, feed: str) -> bool:
        if feed in self.failed_feeds:
            return False
        return any(
            self._ups_states[u.id].output_source is not OutputSource.NONE
            for u in self.topology.ups.values()
            if u.feed == feed
        )

    def _compute_power(self) -> None:
        topo = self.topology
        factor = power.daily_factor(self.time_s)
        self.rack_w: dict[str, float] = {}
        outlet_w: dict[str, list[float]] = {}
        self.unserved_w: dict[str, float] = {}
        live = {feed: self.feed_live(feed) for feed in ("A", "B")}
        for rack in topo.racks.values():
            load = rack.design_w * factor * (1.0 + self._noise[rack.id])
            self.rack_w[rack.id] = load
            pdus = {topo.pdus[p].feed: topo.pdus[p] for p in rack.pdus}
            a, b = pdus.get("A"), pdus.get("B")
            a_live = self._outlets_live(a, live) if a else []
            b_live = self._outlets_live(b, live) if b else []
            split = power.split_rack(load, self._shares[rack.id], a_live, b_live)
            self.unserved_w[rack.id] = split.unserved_w
            if a:
                outlet_w[a.id] = list(split.a_w)
            if b:
                outlet_w[b.id] = list(split.b_w)
        for (pid, branch), extra in self.branch_extra_w.items():
            pdu = topo.pdus[pid]
            if live[pdu.feed] and (pid, branch) not in self.tripped:
                first = next(i for i in range(pdu.outlets) if pdu.branch_of_outlet(i) == branch)
                outlet_w[pid][first] += extra
        self.flows: dict[str, power.PduFlow] = {}
        for pid, pdu in topo.pdus.items():
            volts = NOMINAL_V if live[pdu.feed] else 0.0
            watts = outlet_w.get(pid, [0.0] * pdu.outlets)
            self.flows[pid] = power.pdu_flow(pdu, watts, volts)
        self.feed_w = {
            feed: sum(f.total_w for pid, f in self.flows.items() if topo.pdus[pid].feed == feed)
            for feed in ("A", "B")
        }
        for u in topo.ups.values():
            sharing = [x for x in topo.ups.values() if x.feed == u.feed]
            self.ups_models[u.id].external_load = self.feed_w[u.feed] / len(sharing) / u.rated_w

    def _outlets_live(self, pdu: Pdu, live: Mapping[str, bool]) -> list[bool]:
        on = live[pdu.feed]
        return [
            on and (pdu.id, pdu.branch_of_outlet(i)) not in self.tripped for i in range(pdu.outlets)
        ]

    def _check_breakers(self, dt: float) -> None:
        for pid, flow in self.flows.items():
            pdu = self.topology.pdus[pid]
            for b, amps in enumerate(flow.branch_a):
                key = (pid, b)
                state = power.load_state(amps, pdu.breaker_a)
                before = self._branch_state.get(key, "normal")
                if state == "overload" and before != "overload":
                    self.emit(
                        "overload",
                        pid,
                        f"branch {b + 1} at {amps:.1f} A (breaker {pdu.breaker_a:g} A)",
                        branch=str(b + 1),
                        current_a=f"{amps:.1f}",
                    )
                elif before == "overload" and state != "overload":
                    self.emit(
                        "overload_cleared",
                        pid,
                        f"branch {b + 1} back to {amps:.1f} A",
                        branch=str(b + 1),
                        current_a=f"{amps:.1f}",
                    )
                self._branch_state[key] = state
                if amps > pdu.breaker_a:
                    since = self._over_since.setdefault(key, self.time_s)
                    if self.time_s - since >= TRIP_DELAY_S and key not in self.tripped:
                        self.tripped.add(key)
                        self.emit(
                            "breaker_tripped",
                            pid,
                            f"branch {b + 1} breaker tripped",
                            branch=str(b + 1),
                        )
                        self._compute_power()
                else:
                    self._over_since.pop(key, None)

    def facility_w(self) -> float:
        """Power through the facility incomer: IT + UPS losses + cooling + lighting/other."""
        if not self.mains_on:
            return 0.0
        ups_in = sum(sum(line.power_w for line in s.input_lines) for s in self._ups_states.values())
        cooling = sum(self.crac(c).power_w for c in self.topology.cracs)
        return ups_in + cooling + 0.03 * self.it_w()  # + lighting, security, offices

    def it_w(self) -> float:
        return sum(f.total_w for f in self.flows.values())

    # -- thermal ---------------------------------------------------------------

    def crac_running(self, crac_id: str) -> bool:
        return self.mains_on and crac_id not in self.failed_cracs

    def _thermal_inputs(self) -> thermal.ThermalInputs:
        topo = self.topology
        racks = [
            thermal.RackInput(
                r.id,
                r.room,
                r.row,
                r.at_row_end,
                self.rack_w[r.id] - self.unserved_w[r.id],
                r.design_w,
            )
            for r in topo.racks.values()
        ]
        cracs = [
            thermal.CracInput(c.id, c.room, c.serves, c.capacity_w, self.crac_running(c.id))
            for c in topo.cracs.values()
        ]
        return thermal.ThermalInputs(self.setpoint_c, racks, cracs)

    def room_dew_c(self, room: str) -> float:
        return self._dew_c.get(room, 9.0)

    def room_c(self, room: str) -> float:
        return self.thermal.room_c.get(room, thermal.OUTSIDE_C)

    def crac(self, crac_id: str) -> CracReading:
        c = self.topology.cracs[crac_id]
        room = self.room_c(c.room)
        inp = thermal.CracInput(c.id, c.room, c.serves, c.capacity_w, self.crac_running(c.id))
        cooling = thermal.crac_cooling_w(inp, room, self.setpoint_c)
        running = inp.running
        return CracReading(
            running=running,
            supply_c=thermal.crac_supply_c(inp, room, self.setpoint_c),
            return_c=room,
            setpoint_c=self.setpoint_c,
            return_rh=thermal.relative_humidity_pct(room, self._dew_c[c.room]),
            cooling_w=cooling,
            capacity_w=c.capacity_w,
            power_w=(CRAC_FAN_SHARE * c.capacity_w + cooling / CRAC_COP) if running else 0.0,
            fan_pct=(60.0 + 40.0 * cooling / c.capacity_w) if running else 0.0,
        )

    def env(self, sensor_id: str) -> EnvReading:
        """Rack probe values, with any injected fault applied.

        A fault is in the inlet probe (temperature, humidity and the dew point computed
        from them); the outlet probe, on its own port, keeps reading the truth.
        """
        fault = self._faults.get(sensor_id)
        reading = self.true_env(sensor_id)
        inlet_n, outlet_n = self._probe_noise.get(sensor_id, (0.0, 0.0))
        if reading.inlet_c is not None and reading.outlet_c is not None:
            # the probe measures temperature; its humidity follows from the same air
            inlet, outlet = reading.inlet_c + inlet_n, reading.outlet_c + outlet_n
            dew = reading.dew_point_c if reading.dew_point_c is not None else inlet
            reading = replace(
                reading,
                inlet_c=inlet,
                outlet_c=outlet,
                inlet_rh=thermal.relative_humidity_pct(inlet, dew),
                outlet_rh=thermal.relative_humidity_pct(outlet, dew),
            )
        if fault is None:
            return reading
        if fault.kind is SensorFault.DROPOUT:
            return replace(reading, inlet_c=None, inlet_rh=None, dew_point_c=None)
        if fault.kind is SensorFault.STUCK and fault.frozen is not None:
            frozen = fault.frozen
            return replace(
                reading,
                inlet_c=frozen.inlet_c,
                inlet_rh=frozen.inlet_rh,
                dew_point_c=frozen.dew_point_c,
            )
        if fault.kind is SensorFault.DRIFT:
            shift = fault.rate_c_per_h * (self.time_s - fault.since_s) / 3600.0
            inlet = (reading.inlet_c or 0.0) + shift
            dew = reading.dew_point_c or 0.0
            return replace(
                reading, inlet_c=inlet, inlet_rh=thermal.relative_humidity_pct(inlet, dew)
            )
        return reading

    def true_env(self, sensor_id: str) -> EnvReading:
        s = self.topology.sensors[sensor_id]
        offset = self._probe_offset[sensor_id]
        dew = self._dew_c.get(s.room, 9.0)
        if s.rack and s.rack in self.thermal.inlet_c:
            rack = self.topology.racks[s.rack]
            inlet = self.thermal.inlet_c[s.rack] + offset
            load = self.rack_w[s.rack] - self.unserved_w[s.rack]
            outlet = thermal.rack_outlet_c(inlet, load, rack.design_w)
        else:
            inlet = outlet = self.room_c(s.room) + offset
        return EnvReading(
            inlet,
            outlet,
            thermal.relative_humidity_pct(inlet, dew),
            thermal.relative_humidity_pct(outlet, dew),
            dew,
        )

    def smoke(self, sensor_id: str) -> tuple[float, str]:
        value = self.obscuration[sensor_id]
        return value, smoke_level(value)

    def ups_state(self, ups_id: str) -> UpsState:
        return self._ups_states[ups_id]

    # -- events ----------------------------------------------------------------

    def _check_ups_events(self) -> None:
        for uid, s in self._ups_states.items():
            before_source, before_batt = self._ups_seen[uid]
            if (
                s.output_source is OutputSource.BATTERY
                and before_source is not OutputSource.BATTERY
            ):
                self.emit(
                    "on_battery",
                    uid,
                    f"on battery, {s.runtime_s / 60:.0f} min runtime",
                    runtime_s=f"{s.runtime_s:.0f}",
                )
            if s.battery_status is BatteryStatus.LOW and before_batt is not BatteryStatus.LOW:
                self.emit(
                    "battery_low",
                    uid,
                    f"battery low, {s.runtime_s:.0f} s left",
                    runtime_s=f"{s.runtime_s:.0f}",
                )
            if s.output_source is OutputSource.NORMAL and before_source is not OutputSource.NORMAL:
                self.emit("power_restored", uid, "back on utility")
            self._ups_seen[uid] = (s.output_source, s.battery_status)

    def _check_smoke_levels(self) -> None:
        seen = getattr(self, "_smoke_seen", {})
        for sid, value in self.obscuration.items():
            level = smoke_level(value)
            if seen.get(sid, "normal") != level:
                kind = "env_alarm" if level != "normal" else "env_alarm_cleared"
                self.emit(kind, sid, f"smoke {level} at {value:.3f} %/m", level=level)
            seen[sid] = level
        self._smoke_seen = seen

    # -- actions (what scenarios do) -----------------------------------------

    def set_utility(self, on: bool) -> None:
        self.utility_on = on

    def set_generator(self, on: bool) -> None:
        self.generator_on = on

    def generator(self, gen_id: str) -> GeneratorSet:
        self._need(gen_id, self.generators)
        return self.generators[gen_id]

    def set_feed(self, feed: str, up: bool) -> None:
        if up:
            self.failed_feeds.discard(feed)
        else:
            self.failed_feeds.add(feed)
        self._compute_power()

    def set_crac(self, crac_id: str, running: bool) -> None:
        self._need(crac_id, self.topology.cracs)
        if running:
            self.failed_cracs.discard(crac_id)
        else:
            self.failed_cracs.add(crac_id)

    def set_smoke(self, sensor_id: str, obscuration: float, ramp_s: float) -> None:
        self._need(sensor_id, self.obscuration)
        self._smoke_ramp[sensor_id] = (
            self.time_s,
            self.obscuration[sensor_id],
            obscuration,
            ramp_s,
        )

    def set_leak(self, sensor_id: str, wet: bool) -> None:
        self._need(sensor_id, self.topology.sensors)
        (self.leaks.add if wet else self.leaks.discard)(sensor_id)
        self.emit(
            "env_alarm" if wet else "env_alarm_cleared",
            sensor_id,
            "water detected" if wet else "leak dry",
        )

    def set_door(self, sensor_id: str, open_: bool) -> None:
        self._need(sensor_id, self.topology.sensors)
        (self.doors_open.add if open_ else self.doors_open.discard)(sensor_id)
        self.emit(
            "env_alarm" if open_ else "env_alarm_cleared",
            sensor_id,
            "door open" if open_ else "door closed",
        )

    def set_sensor_fault(
        self, sensor_id: str, kind: SensorFault | None, rate_c_per_h: float = 0.0
    ) -> None:
        self._need(sensor_id, self.topology.sensors)
        if kind is None:
            self._faults.pop(sensor_id, None)
            return
        frozen = self.env(sensor_id) if kind is SensorFault.STUCK else None
        self._faults[sensor_id] = _Fault(kind, self.time_s, rate_c_per_h, frozen)

    def sensor_fault(self, sensor_id: str) -> SensorFault | None:
        fault = self._faults.get(sensor_id)
        return fault.kind if fault else None

    def set_responding(self, device_id: str, responding: bool) -> None:
        self._need(device_id, self.topology.placed)
        (self.silent.discard if responding else self.silent.add)(device_id)

    def overload_branch(self, pdu_id: str, branch: int, extra_w: float) -> None:
        """Plug `extra_w` of single-corded load into 1-based `branch` of a PDU."""
        pdu = self.topology.pdus.get(pdu_id)
        if pdu is None or not 1 <= branch <= pdu.branches:
            raise KeyError(f"{pdu_id}: no branch {branch}")
        self.branch_extra_w[(pdu_id, branch - 1)] = extra_w
        self._compute_power()

    def clear_branch(self, pdu_id: str, branch: int) -> None:
        """Remove the extra load and reset a tripped breaker."""
        self.branch_extra_w.pop((pdu_id, branch - 1), None)
        self.tripped.discard((pdu_id, branch - 1))
        self._over_since.pop((pdu_id, branch - 1), None)
        self._compute_power()

    @staticmethod
    def _need(device_id: str, known: Mapping[str, object] | set[str]) -> None:
        if device_id not in known:
            raise KeyError(f"no such device {device_id!r}")
