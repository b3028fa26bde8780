"""Each hall device seen through the metric vocabulary (`simulators.source.ValueSource`).

A view catches the model up to the clock (`sync`), then answers one metric
for the row its tags pick: `phase`/`branch`/`outlet`/`line` are 1-based,
`position` is inlet or outlet, `scope` is facility or it. Anything the device
does not have, or cannot read right now, is None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar, TypeVar

from dcim.inventory import DeviceKind
from dcim.reading import Value
from simulators.hall import power
from simulators.hall.model import HallModel
from simulators.ups import AlarmKind, BatteryStatus, OutputSource

T = TypeVar("T")

_SOURCE = {s: s.name.lower() for s in OutputSource}
_BATTERY = {s: s.name.lower() for s in BatteryStatus}
#: `alarm` tag of ups.alarm_active (the Modbus alarm word's bit names) -> model alarm.
_UPS_ALARMS = {
    "on_battery": AlarmKind.ON_BATTERY,
    "low_battery": AlarmKind.LOW_BATTERY,
    "overload": AlarmKind.OUTPUT_OVERLOAD,
    "battery_replace": AlarmKind.BATTERY_BAD,
    "over_temperature": AlarmKind.TEMP_BAD,
    "on_bypass": AlarmKind.ON_BYPASS,
    "input_bad": AlarmKind.INPUT_BAD,
    "output_off": AlarmKind.UPS_OUTPUT_OFF,
}
#: Air a CRAH moves per watt of capacity at full fan (12 K air delta-T, rho*cp 1.2 kJ/m3K).
_M3H_PER_W = 3600 / (1.2 * 1005 * 12)


def _pick(rows: Sequence[T], tags: Mapping[str, str], key: str) -> T | None:
    """Row `tags[key]` (1-based) of `rows`, or None if absent or out of range."""
    raw = tags.get(key)
    if raw is None or not raw.isdigit():
        return None
    i = int(raw) - 1
    return rows[i] if 0 <= i < len(rows) else None


def _get(metric: str, table: Mapping[str, Value | None]) -> Value | None:
    return table.get(metric)


class HallView:
    """Base: one device of the hall, by inventory id."""

    def __init__(self, model: HallModel, device_id: str, sync: Callable[[], None]) -> None:
        self.model = model
        self._device_id = device_id
        self._sync = sync

    @property
    def device_id(self) -> str:
        return self._device_id

    @property
    def responding(self) -> bool:
        """False while a scenario makes the device stop answering."""
        return self._device_id not in self.model.silent

    def value(self, metric: str, tags: Mapping[str, str]) -> Value | None:
        self._sync()
        if not self.responding:
            return None
        return self._value(metric, tags)

    def _value(self, metric: str, tags: Mapping[str, str]) -> Value | None:
        raise NotImplementedError


class UpsView(HallView):
    def _value(self, metric: str, tags: Mapping[str, str]) -> Value | None:
        s = self.model.ups_state(self.device_id)
        inp = _pick(s.input_lines, tags, "line")
        out = _pick(s.output_lines, tags, "line")
        simple: dict[str, Value] = {
            "ups.output_source": _SOURCE[s.output_source],
            "ups.battery_status": _BATTERY[s.battery_status],
            "ups.battery_runtime_s": s.runtime_s,
            "ups.on_battery_s": float(s.seconds_on_battery),
            "ups.battery_charge_pct": s.charge_percent,
            "ups.battery_voltage_v": s.battery_voltage_v,
            "ups.battery_current_a": s.battery_current_a,
            "ups.battery_temp_c": s.battery_temperature_c,
            "ups.output_frequency_hz": s.output_frequency_hz,
            "ups.alarms_present": len(s.alarms),
            "ups.input_line_bads": s.input_line_bads,
        }
        if metric in simple:
            return simple[metric]
        if metric == "ups.alarm_active":
            # one bit of an alarm word: named by the tag; conditions the model lacks stay off
            kind = _UPS_ALARMS.get(tags.get("alarm", ""))
            return kind is not None and any(a.kind is kind for a in s.alarms)
        if metric.startswith("ups.input_") and inp is not None:
            return _get(
                metric,
                {
                    "ups.input_voltage_v": inp.voltage_v,
                    "ups.input_frequency_hz": inp.frequency_hz,
                    "ups.input_current_a": inp.current_a,
                    "ups.input_power_w": inp.power_w,
                },
            )
        if out is not None:
            return _get(
                metric,
                {
                    "ups.output_voltage_v": out.voltage_v,
                    "ups.output_current_a": out.current_a,
                    "ups.output_power_w": out.power_w,
                    "ups.load_pct": out.percent_load,
                },
            )
        if metric == "ups.load_pct":
            return s.load_percent
        return None


class PduView(HallView):
    def _value(self, metric: str, tags: Mapping[str, str]) -> Value | None:
        m = self.model
        pdu = m.topology.pdus[self.device_id]
        flow = m.flows[self.device_id]
        branches = list(range(pdu.branches))
        branch = _pick(branches, tags, "branch")
        phase = _pick(list(range(pdu.phases)), tags, "phase")
        outlet = _pick(list(range(pdu.outlets)), tags, "outlet")
        live = flow.voltage_v > 0
        if metric == "pdu.power_w":
            return flow.total_w
        if metric == "pdu.apparent_power_va":
            return flow.apparent_va
        if metric == "pdu.energy_kwh":
            return m.energy_kwh[pdu.id]
        if metric == "pdu.power_factor":
            return power.POWER_FACTOR if flow.total_w else 0.0
        if metric == "pdu.frequency_hz":
            return 50.0 if live else 0.0
        if metric == "pdu.rated_current_a":
            return pdu.rated_a
        if phase is not None:
            return _get(
                metric,
                {
                    "pdu.phase_current_a": flow.phase_a[phase],
                    "pdu.phase_voltage_v": flow.voltage_v,
                    "pdu.phase_power_w": flow.phase_w[phase],
                    "pdu.phase_load_state": power.load_state(flow.phase_a[phase], pdu.rated_a),
                },
            )
        if branch is not None:
            return _get(
                metric,
                {
                    "pdu.branch_current_a": flow.branch_a[branch],
                    "pdu.branch_rating_a": pdu.breaker_a,
                    "pdu.branch_load_state": power.load_state(flow.branch_a[branch], pdu.breaker_a),
                    "pdu.branch_tripped": (pdu.id, branch) in m.tripped,
                },
            )
        if outlet is not None:
            return _get(
                metric,
                {
                    "pdu.outlet_current_a": flow.outlet_a[outlet],
                    "pdu.outlet_power_w": flow.outlet_w[outlet],
                    "pdu.outlet_energy_kwh": m.outlet_energy_kwh[pdu.id][outlet],
                    "pdu.outlet_on": True,
                },
            )
        return None


class CracView(HallView):
    def _value(self, metric: str, tags: Mapping[str, str]) -> Value | None:
        c = self.model.crac(self.device_id)
        failed = self.device_id in self.model.failed_cracs
        mode = "cooling" if c.running and c.cooling_w > 0 else ("fault" if failed else "off")
        if c.running and c.cooling_w == 0:
            mode = "idle"
        if metric == "crac.alarm":
            # the common alarm and, in a bit-per-condition word, the one bit a failure sets
            return failed and tags.get("alarm", "common") in ("common", "fan_failure")
        demand_pct = 100.0 * c.cooling_w / c.capacity_w
        return _get(
            metric,
            {
                "crac.supply_air_temp_c": c.supply_c,
                "crac.return_air_temp_c": c.return_c,
                "crac.setpoint_temp_c": c.setpoint_c,
                "crac.return_humidity_pct": c.return_rh,
                "crac.fan_speed_pct": c.fan_pct,
                "crac.cooling_output_w": c.cooling_w,
                "crac.cooling_demand_pct": demand_pct,
                "crac.chilled_water_valve_pct": demand_pct,  # the valve follows demand
                "crac.airflow_m3h": c.capacity_w * _M3H_PER_W * c.fan_pct / 100.0,
                "crac.power_w": c.power_w,
                "crac.unit_on": c.running,
                "crac.operating_mode": mode,
                "crac.alarms_active": int(failed),
            },
        )


class SensorView(HallView):
    def _value(self, metric: str, tags: Mapping[str, str]) -> Value | None:
        m = self.model
        role = m.topology.sensors[self.device_id].role
        if role == "env":
            env = m.env(self.device_id)
            outlet = tags.get("position") == "outlet"
            if metric == "sensor.status":
                # each probe on its own (no position: the inlet probe, as EnvReading.ok)
                reading = env.outlet_c if outlet else env.inlet_c
                return "normal" if reading is not None else "unplugged"
            return _get(
                metric,
                {
                    "sensor.temp_c": env.outlet_c if outlet else env.inlet_c,
                    "sensor.humidity_pct": env.outlet_rh if outlet else env.inlet_rh,
                    "sensor.dew_point_c": env.dew_point_c,
                },
            )
        if role == "smoke":
            obscuration, level = m.smoke(self.device_id)
            return _get(
                metric,
                {
                    "sensor.smoke_obscuration_pct_m": obscuration,
                    "sensor.smoke_level": level,
                    "sensor.smoke_detected": level in ("fire1", "fire2"),
                    "sensor.status": "normal" if level == "normal" else "critical",
                },
            )
        if role == "leak" and metric == "sensor.leak_detected":
            return self.device_id in m.leaks
        if role == "door" and metric == "sensor.door_open":
            return self.device_id in m.doors_open
        return None


class MeterView(HallView):
    """A two-channel meter: scope facility (incomer) and scope it (IT distribution)."""

    def _value(self, metric: str, tags: Mapping[str, str]) -> Value | None:
        m = self.model
        scope = tags.get("scope", m.topology.meters[self.device_id].scope)
        watts = m.facility_w() if scope == "facility" else m.it_w()
        volts = 230.0 if m.mains_on or scope == "it" else 0.0
        pf = 0.97 if watts else 0.0
        per_phase_a = watts / 3 / (volts * pf) if volts and pf else 0.0
        if metric in ("meter.voltage_v", "meter.current_a"):
            if _pick(["1", "2", "3"], tags, "phase") is None:
                return None
            return volts if metric == "meter.voltage_v" else per_phase_a
        return _get(
            metric,
            {
                "meter.power_w": watts,
                "meter.apparent_power_va": watts / pf if pf else 0.0,
                "meter.power_factor": pf,
                "meter.frequency_hz": 50.0 if volts else 0.0,
                "meter.energy_kwh": m.facility_energy_kwh
                if scope == "facility"
                else m.it_energy_kwh,
            },
        )


class GeneratorView(HallView):
    """A generator controller (AMF): its engine, its output, the mains it watches, its alarms.

    States are answered as a GenComm-style controller reports them: on load is
    `running` (DSE's status register has no separate on-load state).
    """

    _STATES: ClassVar[dict[str, str]] = {
        "stopped": "stopped",
        "starting": "starting",
        "warming_up": "warming_up",
        "on_load": "running",
        "cooling_down": "cooling_down",
        "fault": "stopped",
    }

    def _value(self, metric: str, tags: Mapping[str, str]) -> Value | None:
        m = self.model
        g = m.generator(self.device_id)
        if metric == "generator.alarm":
            name = tags.get("alarm", "")
            if name == "mains_failed":
                return "indication" if not m.utility_on else "inactive"
            return g.alarms.get(name, "inactive")
        running = g.running
        volts = 230.0 if running else 0.0
        phase_a = g.load_w / (3 * 230.0 * 0.9) if g.load_w else 0.0
        if metric in ("generator.voltage_v", "generator.current_a", "generator.mains_voltage_v"):
            if _pick(["1", "2", "3"], tags, "phase") is None:
                return None
            return {
                "generator.voltage_v": volts,
                "generator.current_a": phase_a,
                "generator.mains_voltage_v": 230.0 if m.utility_on else 0.0,
            }[metric]
        return _get(
            metric,
            {
                "generator.state": self._STATES[g.state.value],
                "generator.mode": "auto",
                "generator.power_w": g.load_w,
                "generator.load_pct": 100.0 * g.load_w / g.rated_w,
                "generator.frequency_hz": 50.0 if running else 0.0,
                "generator.mains_frequency_hz": 50.0 if m.utility_on else 0.0,
                "generator.fuel_level_pct": g.fuel_pct,
                "generator.engine_speed_rpm": 1500.0 if running else 0.0,
                "generator.coolant_temp_c": 82.0 if running else 40.0,  # block heater at rest
                "generator.oil_pressure_kpa": 400.0 if running else 0.0,
                "generator.battery_voltage_v": 27.2,
                "generator.run_time_s": g.run_time_s,
                "generator.energy_kwh": g.energy_kwh,
                "generator.starts": g.starts,
            },
        )


VIEWS: dict[DeviceKind, type[HallView]] = {
    DeviceKind.UPS: UpsView,
    DeviceKind.PDU: PduView,
    DeviceKind.CRAC: CracView,
    DeviceKind.SENSOR: SensorView,
    DeviceKind.METER: MeterView,
    DeviceKind.GENERATOR: GeneratorView,
}


def view_for(model: HallModel, device_id: str, sync: Callable[[], None]) -> HallView:
    """The vocabulary view of one inventory device."""
    kind = model.topology.placed[device_id].device.kind
    return VIEWS[kind](model, device_id, sync)
