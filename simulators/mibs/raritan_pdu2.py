"""A rack PDU as Raritan PDU2-MIB (PX2/PX3), enterprise 1.3.6.1.4.1.13742.6.

Values are unsigned integers to be divided by 10^decimalDigits, where the
digits come from the matching sensor configuration table; every measurement
is indexed by pduId (1), the object, then the SensorTypeEnumeration value
(rmsCurrent 1, unbalancedCurrent 3, rmsVoltage 4, activePower 5,
apparentPower 6, powerFactor 7, activeEnergy 8 (Wh), onOff 14, trip 15,
frequency 23). Served tables:

- inlet:   config .3.3.3.1.{2,7} (label, rated current as text "32A", from the
  topology's rated_a), sensor config .3.3.4.1.7 (digits), measurements .5.2.3.1.{2,3,4}
  (available, state, value)
- poles:   config .3.3.6.1.7, measurements .5.2.4.1.{2,3,4} (pduId.inlet.pole.type)
- overcurrent protectors (one per branch breaker): config .3.4.3.1.{2,5} (label "C1",
  rated current as text "20A", from the topology's breaker_a), sensor config
  .3.4.4.1.{7,23,24} (digits, upper critical, upper warning), measurements .5.3.3.1.{2,3,4}
- outlets: config .3.5.4.1.7, measurements .5.4.3.1.{2,3,4}

Sensor states (SensorStateEnumeration): open(0) closed(1) normal(4)
aboveUpperWarning(5) aboveUpperCritical(6) on(7) off(8).
"""

from __future__ import annotations

import zlib

from pysnmp.proto.rfc1902 import Gauge32, Integer32, OctetString

from simulators.hall import power
from simulators.mib import Oid, TableBuilder
from simulators.mibs.base import HallMibDevice

PDU2: Oid = (1, 3, 6, 1, 4, 1, 13742, 6)
UNIT_CONFIG: Oid = (*PDU2, 3, 2, 1, 1)  # pduModel .3, pduSerialNumber .4
UNIT_NAME: Oid = (*PDU2, 3, 2, 2, 1, 13)
INLET_CONFIG: Oid = (*PDU2, 3, 3, 3, 1)  # inletLabel .2, inletRatedCurrent .7
OCP_CONFIG: Oid = (*PDU2, 3, 4, 3, 1)  # overCurrentProtectorLabel .2, RatedCurrent .5
INLET_SENSOR_CONFIG: Oid = (*PDU2, 3, 3, 4, 1)
POLE_SENSOR_CONFIG: Oid = (*PDU2, 3, 3, 6, 1)
OCP_SENSOR_CONFIG: Oid = (*PDU2, 3, 4, 4, 1)
OUTLET_SENSOR_CONFIG: Oid = (*PDU2, 3, 5, 4, 1)
INLET_MEASUREMENTS: Oid = (*PDU2, 5, 2, 3, 1)
POLE_MEASUREMENTS: Oid = (*PDU2, 5, 2, 4, 1)
OCP_MEASUREMENTS: Oid = (*PDU2, 5, 3, 3, 1)
OUTLET_MEASUREMENTS: Oid = (*PDU2, 5, 4, 3, 1)

RMS_CURRENT, UNBALANCED, RMS_VOLTAGE, ACTIVE_POWER, APPARENT_POWER = 1, 3, 4, 5, 6
POWER_FACTOR, ACTIVE_ENERGY, ON_OFF, TRIP, FREQUENCY = 7, 8, 14, 15, 23
#: Decimal digits this simulated model reports per sensor type.
DIGITS = {
    RMS_CURRENT: 3, UNBALANCED: 0, RMS_VOLTAGE: 0, ACTIVE_POWER: 0, APPARENT_POWER: 0,
    POWER_FACTOR: 2, ACTIVE_ENERGY: 0, ON_OFF: 0, TRIP: 0, FREQUENCY: 1,
}  # fmt: skip
OPEN, CLOSED, NORMAL, ABOVE_WARNING, ABOVE_CRITICAL, ON = 0, 1, 4, 5, 6, 7


def current_state(amps: float, rating: float) -> int:
    if amps >= rating:
        return ABOVE_CRITICAL
    if amps >= 0.8 * rating:
        return ABOVE_WARNING
    return NORMAL


def _raw(sensor: int, value: float) -> Gauge32:
    return Gauge32(max(round(value * 10 ** DIGITS[sensor]), 0))


class RaritanPdu2Device(HallMibDevice):
    sys_object_id = PDU2
    description = "Raritan PDU2 simulator"

    def _sensor(
        self,
        t: TableBuilder,
        tables: tuple[Oid, Oid],
        index: tuple[int, ...],
        sensor: int,
        value: float,
        *,
        state: int = NORMAL,
    ) -> None:
        config, measurements = tables
        row = (*index, sensor)
        t.cell((*config, 7), row, Integer32(DIGITS[sensor]))
        t.cell((*measurements, 2), row, Integer32(1))  # isAvailable: true
        t.cell((*measurements, 3), row, Integer32(state))
        t.cell((*measurements, 4), row, _raw(sensor, value))

    def fill(self, t: TableBuilder) -> None:
        model = self.view.model
        pdu = model.topology.pdus[self.view.device_id]
        flow = model.flows[pdu.id]
        t.cell((*UNIT_CONFIG, 3), (1,), OctetString("PX3-5190"))
        t.cell(
            (*UNIT_CONFIG, 4), (1,), OctetString(f"SIM{zlib.crc32(pdu.id.encode()) % 10**8:08d}")
        )
        t.cell(UNIT_NAME, (1,), OctetString(pdu.id))

        inlet = (1, 1)
        t.cell((*INLET_CONFIG, 2), inlet, OctetString("I1"))
        t.cell((*INLET_CONFIG, 7), inlet, OctetString(f"{pdu.rated_a:g}A"))
        tables = INLET_SENSOR_CONFIG, INLET_MEASUREMENTS
        worst = max(flow.phase_a)
        mean = sum(flow.phase_a) / len(flow.phase_a)
        unbalance = 100.0 * max(abs(a - mean) for a in flow.phase_a) / mean if mean >= 0.5 else 0
        self._sensor(t, tables, inlet, RMS_CURRENT, worst, state=current_state(worst, pdu.rated_a))
        self._sensor(t, tables, inlet, UNBALANCED, unbalance)
        self._sensor(t, tables, inlet, RMS_VOLTAGE, flow.voltage_v)
        self._sensor(t, tables, inlet, ACTIVE_POWER, flow.total_w)
        self._sensor(t, tables, inlet, APPARENT_POWER, flow.apparent_va)
        self._sensor(t, tables, inlet, POWER_FACTOR, power.POWER_FACTOR if flow.total_w else 0)
        self._sensor(t, tables, inlet, ACTIVE_ENERGY, model.energy_kwh[pdu.id] * 1000)
        self._sensor(t, tables, inlet, FREQUENCY, 50.0 if flow.voltage_v else 0.0)

        for p, amps in enumerate(flow.phase_a):
            pole = (1, 1, p + 1)
            tables = POLE_SENSOR_CONFIG, POLE_MEASUREMENTS
            state = current_state(amps, pdu.rated_a)
            self._sensor(t, tables, pole, RMS_CURRENT, amps, state=state)
            self._sensor(t, tables, pole, RMS_VOLTAGE, flow.voltage_v)
            self._sensor(t, tables, pole, ACTIVE_POWER, flow.phase_w[p])

        for b, amps in enumerate(flow.branch_a):
            ocp = (1, b + 1)
            t.cell((*OCP_CONFIG, 2), ocp, OctetString(f"C{b + 1}"))
            t.cell((*OCP_CONFIG, 5), ocp, OctetString(f"{pdu.breaker_a:g}A"))
            tables = OCP_SENSOR_CONFIG, OCP_MEASUREMENTS
            state = current_state(amps, pdu.breaker_a)
            self._sensor(t, tables, ocp, RMS_CURRENT, amps, state=state)
            row = (*ocp, RMS_CURRENT)
            t.cell((*OCP_SENSOR_CONFIG, 23), row, _raw(RMS_CURRENT, pdu.breaker_a))
            t.cell((*OCP_SENSOR_CONFIG, 24), row, _raw(RMS_CURRENT, 0.8 * pdu.breaker_a))
            tripped = (pdu.id, b) in model.tripped
            self._sensor(t, tables, ocp, TRIP, 0.0, state=OPEN if tripped else CLOSED)

        energy = model.outlet_energy_kwh[pdu.id]
        for o, watts in enumerate(flow.outlet_w):
            outlet = (1, o + 1)
            tables = OUTLET_SENSOR_CONFIG, OUTLET_MEASUREMENTS
            self._sensor(t, tables, outlet, RMS_CURRENT, flow.outlet_a[o])
            self._sensor(t, tables, outlet, ACTIVE_POWER, watts)
            self._sensor(t, tables, outlet, ACTIVE_ENERGY, energy[o] * 1000)
            self._sensor(t, tables, outlet, ON_OFF, 0.0, state=ON)
