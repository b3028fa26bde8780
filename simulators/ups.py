"""A UPS whose electrical state evolves plausibly with simulated time.

Time is always passed in (seconds, any origin), never read from a clock, so a
test can simulate hours in a fraction of a second. The model advances in fixed
ticks (`tick_s`) and draws its random numbers once per tick from a generator
seeded with `seed`: the same seed and the same utility events at the same
simulated times give the same values, however often the state is read.

Sign convention: `battery_current_a` is positive while charging and negative
while discharging (current into the battery).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from enum import IntEnum


class OutputSource(IntEnum):
    """upsOutputSource values (RFC 1628)."""

    OTHER = 1
    NONE = 2
    NORMAL = 3
    BYPASS = 4
    BATTERY = 5
    BOOSTER = 6
    REDUCER = 7


class BatteryStatus(IntEnum):
    """upsBatteryStatus values (RFC 1628)."""

    UNKNOWN = 1
    NORMAL = 2
    LOW = 3
    DEPLETED = 4


class AlarmKind(IntEnum):
    """Well-known alarms: the last arc of 1.3.6.1.2.1.33.1.6.3.N (RFC 1628)."""

    BATTERY_BAD = 1
    ON_BATTERY = 2
    LOW_BATTERY = 3
    DEPLETED_BATTERY = 4
    TEMP_BAD = 5
    INPUT_BAD = 6
    OUTPUT_BAD = 7
    OUTPUT_OVERLOAD = 8
    ON_BYPASS = 9
    UPS_OUTPUT_OFF = 14


@dataclass(frozen=True, slots=True)
class Alarm:
    """One present alarm; `id` stays constant while the alarm is present."""

    id: int
    kind: AlarmKind
    since_s: float


@dataclass(frozen=True, slots=True)
class InputLine:
    """One input phase (all zero while utility is absent)."""

    voltage_v: float
    frequency_hz: float
    current_a: float
    power_w: float


@dataclass(frozen=True, slots=True)
class OutputLine:
    """One output phase."""

    voltage_v: float
    current_a: float
    power_w: float
    percent_load: float


@dataclass(frozen=True, slots=True)
class UpsState:
    """Everything an agent reports about the UPS at `time_s`."""

    time_s: float
    utility_on: bool
    output_source: OutputSource
    output_frequency_hz: float
    input_lines: tuple[InputLine, ...]
    output_lines: tuple[OutputLine, ...]
    load_percent: float
    battery_status: BatteryStatus
    seconds_on_battery: int
    runtime_s: float
    charge_percent: float
    battery_voltage_v: float
    battery_current_a: float
    battery_temperature_c: float
    input_line_bads: int
    alarms: tuple[Alarm, ...]


def ou_step(x: float, mean: float, sigma: float, tau_s: float, *, dt: float, z: float) -> float:
    """One exact step of an Ornstein-Uhlenbeck process (stationary std `sigma`).

    Used for every slow drift: it wanders but always returns toward `mean`.
    """
    decay = math.exp(-dt / tau_s)
    return mean + (x - mean) * decay + sigma * math.sqrt(1.0 - decay * decay) * z


# Battery and conversion constants of a typical online double-conversion UPS.
INVERTER_EFFICIENCY = 0.92
CHARGER_EFFICIENCY = 0.90
LOAD_POWER_FACTOR = 0.92
INPUT_POWER_FACTOR = 0.99
BULK_RATE_PCT_PER_S = 80.0 / 7200.0  # constant-current phase: 0 → 80 % in two hours
TAPER_TAU_S = 1800.0  # constant-voltage phase above 80 %
STRING_RESISTANCE_OHM = 0.03


class UpsModel:
    """State of one UPS; call `advance_to(now_s)` then read `state()`."""

    def __init__(
        self,
        rated_va: float,
        rated_w: float,
        nominal_voltage: float = 230.0,
        seed: int = 0,
        *,
        nominal_frequency: float = 50.0,
        lines: int = 1,
        base_load: float = 0.45,
        battery_wh: float | None = None,
        battery_nominal_v: float = 48.0,
        low_runtime_s: float = 120.0,
        start_s: float = 0.0,
        tick_s: float = 1.0,
    ) -> None:
        if lines not in (1, 3):
            raise ValueError(f"lines must be 1 or 3, not {lines}")
        if rated_w <= 0 or rated_va < rated_w:
            raise ValueError("need 0 < rated_w <= rated_va")
        if tick_s <= 0:
            raise ValueError("tick_s must be positive")
        self.rated_va = rated_va
        self.rated_w = rated_w
        self.nominal_voltage = nominal_voltage
        self.nominal_frequency = nominal_frequency
        self.lines = lines
        self.base_load = base_load
        # Default sizing gives ~6 min at full load, ~17 min at 45 %: a common spec sheet.
        self.battery_wh = battery_wh if battery_wh is not None else rated_w * 0.15
        self.battery_nominal_v = battery_nominal_v
        self.low_runtime_s = low_runtime_s
        self.tick_s = tick_s

        self._rng = random.Random(seed)
        # Per-phase load share is a property of the installation, fixed per seed.
        shares = [1.0 + self._rng.uniform(-0.06, 0.06) for _ in range(lines)]
        total = sum(shares)
        self._shares = tuple(s / total for s in shares)

        self._time_s = start_s
        self._utility_on = True
        self._on_battery_since: float | None = None
        self._charge = 100.0
        self._output_off = False
        self._line_bads = 0
        self._runtime_est: float | None = None  # non-increasing while on battery
        self._alarms: dict[AlarmKind, Alarm] = {}
        self._next_alarm_id = 1

        # Slow drifts (OU processes) and per-tick fast noise.
        self._load_slow = base_load
        self._load = base_load
        self._v_drift = 0.0
        self._f_drift = 0.0
        self._ambient_c = 25.0
        self._batt_temp_c = 25.0
        self._noise = (0.0, 0.0, 0.0)  # input V, output V, frequency
        self._charge_rate = 0.0  # % per second, last tick
        #: Load fraction set from outside (a hall model's feed load); None = own drift.
        self.external_load: float | None = None
        self._update_alarms()

    # -- control ---------------------------------------------------------------

    @property
    def time_s(self) -> float:
        """Simulated time the state refers to."""
        return self._time_s

    @property
    def utility_on(self) -> bool:
        return self._utility_on

    def set_utility(self, on: bool) -> None:
        """Utility power returns (`True`) or fails (`False`) at the current model time."""
        if on == self._utility_on:
            return
        self._utility_on = on
        if on:
            self._on_battery_since = None
            self._output_off = False  # auto-restart when power comes back
            self._runtime_est = None
        else:
            self._line_bads += 1
            self._on_battery_since = self._time_s
            self._runtime_est = self._runtime_formula()
        self._update_alarms()

    def advance_to(self, now_s: float) -> None:
        """Advance in whole ticks up to `now_s`; earlier times are ignored."""
        ticks = math.floor((now_s - self._time_s) / self.tick_s + 1e-9)
        for _ in range(max(ticks, 0)):
            self.step(self.tick_s)

    def step(self, dt: float) -> None:
        """Advance the state by `dt` seconds (one tick's worth of random draws)."""
        g = self._rng.gauss
        # Slow drifts.
        self._load_slow = ou_step(self._load_slow, self.base_load, 0.05, 1800.0, dt=dt, z=g(0, 1))
        self._load_slow = min(max(self._load_slow, 0.02), 1.15)
        self._load = min(max(self._load_slow + g(0, 0.004), 0.01), 1.2)
        if self.external_load is not None:
            self._load_slow = self._load = min(max(self.external_load, 0.0), 1.5)
        self._v_drift = ou_step(self._v_drift, 0.0, 2.5, 600.0, dt=dt, z=g(0, 1))
        self._f_drift = ou_step(self._f_drift, 0.0, 0.015, 300.0, dt=dt, z=g(0, 1))
        self._ambient_c = ou_step(self._ambient_c, 25.0, 1.0, 3600.0, dt=dt, z=g(0, 1))
        self._noise = (g(0, 0.8), g(0, 0.3), g(0, 0.004))

        if self._utility_on:
            self._charge_rate = self._recharge_rate(dt)
        elif self._output_off:
            self._charge_rate = 0.0
        else:
            self._charge_rate = -self._battery_power_w() / self._usable_j() * 100.0
        self._charge = min(max(self._charge + self._charge_rate * dt, 0.0), 100.0)
        if not self._utility_on and self._charge <= 0.0:
            self._output_off = True  # inverter shuts down on a flat battery

        # Battery warms with current, lags ambient by ~15 minutes.
        heat = 3.0 * abs(self._battery_current()) / (self.rated_w / self.battery_nominal_v)
        self._batt_temp_c += (self._ambient_c + heat - self._batt_temp_c) * (
            1.0 - math.exp(-dt / 900.0)
        )
        self._time_s += dt

        if not self._utility_on:
            estimate = self._runtime_formula()
            prev = self._runtime_est
            # Firmware-style estimate: never rises while discharging, despite load noise.
            self._runtime_est = estimate if prev is None else min(prev, estimate)
        self._update_alarms()

    # -- physics ---------------------------------------------------------------

    def _output_w(self) -> float:
        return 0.0 if self._output_off else self._load * self.rated_w

    def _battery_power_w(self) -> float:
        return self._output_w() / INVERTER_EFFICIENCY

    def _usable_j(self) -> float:
        # Peukert-like: heavy loads get less energy out of the same battery.
        return self.battery_wh * 3600.0 * (1.0 - 0.2 * min(self._load, 1.0))

    def _recharge_rate(self, dt: float) -> float:
        if self._charge >= 100.0:
            return 0.0
        if self._charge < 80.0:
            return BULK_RATE_PCT_PER_S
        return (100.0 - self._charge) * (1.0 - math.exp(-dt / TAPER_TAU_S)) / dt

    def _runtime_formula(self) -> float:
        # Uses the slow load so the estimate does not jump with every noisy sample.
        load_w = max(self._load_slow, 0.01) * self.rated_w / INVERTER_EFFICIENCY
        usable = self.battery_wh * 3600.0 * (1.0 - 0.2 * min(self._load_slow, 1.0))
        return self._charge / 100.0 * usable / load_w

    def _runtime(self) -> float:
        if self._output_off or self._charge <= 0.0:
            return 0.0
        if self._runtime_est is not None:
            return self._runtime_est
        return self._runtime_formula()

    def _battery_voltage(self) -> float:
        cells = self.battery_nominal_v / 2.0
        if self._utility_on:
            # Bulk charge pushes toward 2.35 V/cell, float holds 2.27 V/cell.
            per_cell = 2.35 if self._charge < 80.0 else 2.27
            return cells * per_cell + self._noise[2] * 5.0
        open_circuit = cells * (2.0 + 0.17 * self._charge / 100.0)
        return max(open_circuit + self._battery_current() * STRING_RESISTANCE_OHM, cells * 1.75)

    def _battery_current(self) -> float:
        nominal = self.battery_nominal_v * 1.1
        if self._utility_on:
            if self._charge_rate <= 0.0:
                return 0.2  # float current of a full string
            watts = self._charge_rate / 100.0 * self.battery_wh * 3600.0
            return watts / nominal
        watts = self._battery_power_w()
        return -watts / nominal if watts > 0.0 else 0.0

    def _battery_status(self) -> BatteryStatus:
        if self._charge <= 0.0 or self._output_off:
            return BatteryStatus.DEPLETED
        if self._runtime() < self.low_runtime_s:
            return BatteryStatus.LOW
        return BatteryStatus.NORMAL

    def _update_alarms(self) -> None:
        status = self._battery_status()
        wanted: set[AlarmKind] = set()
        if not self._utility_on:
            wanted.add(AlarmKind.ON_BATTERY)
        if status in (BatteryStatus.LOW, BatteryStatus.DEPLETED):
            wanted.add(AlarmKind.LOW_BATTERY)
        if status is BatteryStatus.DEPLETED and not self._utility_on:
            wanted.add(AlarmKind.DEPLETED_BATTERY)
        if self._output_off:
            wanted.add(AlarmKind.UPS_OUTPUT_OFF)
        if self._load > 1.0 and not self._output_off:
            wanted.add(AlarmKind.OUTPUT_OVERLOAD)
        for kind in list(self._alarms):
            if kind not in wanted:
                del self._alarms[kind]
        for kind in sorted(wanted - self._alarms.keys()):
            self._alarms[kind] = Alarm(self._next_alarm_id, kind, self._time_s)
            self._next_alarm_id += 1

    # -- observation -----------------------------------------------------------

    def state(self) -> UpsState:
        """The reportable state at `time_s` (pure: reading does not advance anything)."""
        n = self.lines
        v_in_noise, v_out_noise, f_noise = self._noise
        freq_in = self.nominal_frequency + max(min(self._f_drift + f_noise, 0.05), -0.05)
        out_w = self._output_w()
        if self._output_off:
            source = OutputSource.NONE
            out_v = 0.0
            out_f = 0.0
        elif self._utility_on:
            source = OutputSource.NORMAL
            out_v = self.nominal_voltage + v_out_noise
            out_f = freq_in  # inverter stays synchronised to the mains
        else:
            source = OutputSource.BATTERY
            out_v = self.nominal_voltage + v_out_noise
            out_f = self.nominal_frequency + f_noise * 0.25

        outputs = []
        for share in self._shares:
            w = out_w * share
            va = w / LOAD_POWER_FACTOR
            pct = max(w / (self.rated_w / n), va / (self.rated_va / n)) * 100.0
            outputs.append(OutputLine(out_v, va / out_v if out_v else 0.0, w, pct))

        inputs = []
        if self._utility_on:
            charge_w = max(self._battery_current(), 0.0) * self.battery_nominal_v * 1.1
            in_w = out_w / INVERTER_EFFICIENCY + charge_w / CHARGER_EFFICIENCY
            in_v = self.nominal_voltage + self._v_drift + v_in_noise
            for share in self._shares:
                w = in_w * share
                inputs.append(InputLine(in_v, freq_in, w / (in_v * INPUT_POWER_FACTOR), w))
        else:
            inputs = [InputLine(0.0, 0.0, 0.0, 0.0) for _ in range(n)]

        on_batt = 0
        if self._on_battery_since is not None:
            on_batt = int(self._time_s - self._on_battery_since)
        return UpsState(
            time_s=self._time_s,
            utility_on=self._utility_on,
            output_source=source,
            output_frequency_hz=out_f,
            input_lines=tuple(inputs),
            output_lines=tuple(outputs),
            load_percent=max(o.percent_load for o in outputs),
            battery_status=self._battery_status(),
            seconds_on_battery=on_batt,
            runtime_s=self._runtime(),
            charge_percent=self._charge,
            battery_voltage_v=self._battery_voltage(),
            battery_current_a=self._battery_current(),
            battery_temperature_c=self._batt_temp_c,
            input_line_bads=self._line_bads,
            alarms=tuple(sorted(self._alarms.values(), key=lambda a: a.id)),
        )
