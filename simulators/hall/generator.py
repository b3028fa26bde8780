"""A standby generator set and its automatic-mains-failure controller, as a small state machine.

On a utility failure the controller waits its start delay (so a short dip does not
start the engine), cranks (up to three attempts), warms up, then closes its
breaker and carries the hall's load, burning fuel in proportion to it. When the
utility is back and has stayed back for the return delay it hands the load back
and runs unloaded for its cool-down before it stops. Faults a scenario injects:
the engine will not start (flat starter battery, no fuel at the injectors), a trip
(a protection stops it), an empty tank (it stops when the fuel runs out).

Fuel use follows the usual diesel figure of roughly 0.27 l per kWh at full load
with an unloaded share of about a tenth of that: l/h = rated_kW * (0.03 + 0.24 * load).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

CRANK_S = 5.0
CRANK_ATTEMPTS = 3
#: Fuel level under which the controller raises its low-fuel warning.
LOW_FUEL_PCT = 20.0


class GenState(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    WARMING_UP = "warming_up"
    ON_LOAD = "on_load"
    COOLING_DOWN = "cooling_down"
    FAULT = "fault"


@dataclass
class GeneratorSet:
    """One set: `step(dt, utility_on, load_w)`, then read `state`, `on_load`, `fuel_l`..."""

    rated_w: float
    fuel_capacity_l: float
    fuel_l: float
    start_delay_s: float = 10.0
    warmup_s: float = 10.0
    return_delay_s: float = 120.0
    cooldown_s: float = 180.0
    state: GenState = GenState.STOPPED
    will_start: bool = True
    #: Named controller alarms now active, with their class (warning, shutdown, trip).
    alarms: dict[str, str] = field(default_factory=dict)
    load_w: float = 0.0
    run_time_s: float = 0.0
    energy_kwh: float = 0.0
    starts: int = 0
    _timer: float = 0.0
    _mains_timer: float = 0.0

    @property
    def on_load(self) -> bool:
        return self.state is GenState.ON_LOAD

    @property
    def running(self) -> bool:
        return self.state in (GenState.WARMING_UP, GenState.ON_LOAD, GenState.COOLING_DOWN)

    @property
    def fuel_pct(self) -> float:
        return 100.0 * self.fuel_l / self.fuel_capacity_l if self.fuel_capacity_l else 0.0

    def fuel_rate_lph(self, load_w: float) -> float:
        if not self.running:
            return 0.0
        kw = self.rated_w / 1000.0
        return kw * (0.03 + 0.24 * min(load_w / self.rated_w, 1.2))

    def step(self, dt: float, utility_on: bool, load_w: float) -> None:
        self._timer += dt
        self._mains_timer = 0.0 if not utility_on else self._mains_timer + dt
        state = self.state
        if state is GenState.STOPPED and not utility_on and self._timer >= self.start_delay_s:
            self._go(GenState.STARTING)
        elif state is GenState.STARTING and self._timer >= CRANK_S * (
            1 if self.will_start else CRANK_ATTEMPTS
        ):
            if self.will_start:
                self.starts += 1
                self._go(GenState.WARMING_UP)
            else:
                self.alarms["fail_to_start"] = "shutdown"
                self._go(GenState.FAULT)
        elif state is GenState.WARMING_UP and self._timer >= self.warmup_s:
            self._go(GenState.ON_LOAD if not utility_on else GenState.COOLING_DOWN)
        elif state is GenState.ON_LOAD and self._mains_timer >= self.return_delay_s:
            self._go(GenState.COOLING_DOWN)
        elif state is GenState.COOLING_DOWN:
            if not utility_on:
                self._go(GenState.ON_LOAD)
            elif self._timer >= self.cooldown_s:
                self._go(GenState.STOPPED)
        if state is GenState.STOPPED and utility_on:
            self._timer = 0.0  # the start delay counts from the failure
        self.load_w = load_w if self.on_load else 0.0
        if self.running:
            self.run_time_s += dt
            self.energy_kwh += self.load_w * dt / 3_600_000
            self.fuel_l = max(self.fuel_l - self.fuel_rate_lph(self.load_w) * dt / 3600.0, 0.0)
            if self.fuel_l <= 0.0:
                self.alarms["low_fuel_level"] = "shutdown"
                self._go(GenState.FAULT)
        if self.state is not GenState.FAULT:
            if self.fuel_pct < LOW_FUEL_PCT:
                self.alarms["low_fuel_level"] = "warning"
            elif self.alarms.get("low_fuel_level") == "warning":
                del self.alarms["low_fuel_level"]

    def _go(self, state: GenState) -> None:
        self.state = state
        self._timer = 0.0

    # -- faults (scenario actions) -----------------------------------------------

    def fail_to_start(self, fails: bool = True) -> None:
        self.will_start = not fails

    def trip(self, alarm: str = "high_coolant_temp") -> None:
        """A protection stops the engine; it stays down until reset."""
        self.alarms[alarm] = "shutdown"
        self._go(GenState.FAULT)

    def reset(self) -> None:
        """The operator clears the alarms: the controller is ready to start again."""
        self.alarms.clear()
        self.will_start = True
        if self.state is GenState.FAULT:
            self._go(GenState.STOPPED)

    def set_fuel(self, pct: float) -> None:
        self.fuel_l = self.fuel_capacity_l * max(min(pct, 100.0), 0.0) / 100.0
