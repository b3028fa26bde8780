"""A `UpsModel` as a Liebert/Vertiv UPS (LIEBERT-GP-POWER-MIB and friends).

Enterprise 476, liebertGlobalProducts 1.3.6.1.4.1.476.1.42 (the sysObjectID a
Liebert GXT card answers), lgpFoundation .3, lgpPower .3.5 (LIEBERT-GP-POWER-MIB):

- lgpPwrBattery .5.1: lgpPwrBatteryChargeStatus .14 (fullycharged 1, notfullycharged 2,
  charging 3, discharging 4), lgpPwrBatteryTimeRemaining .18 (minutes),
  lgpPwrBatteryCapacity .19 (percent), lgpPwrBatteryPresentDischargeTime .25 (seconds),
  lgpPwrBatteryCapacityStatus .26 (unknown 1, batteryNormal 2, batteryLow 3,
  batteryDepleted 4).
- lgpPwrMeasurements .5.2: well-known points .2.1.{1 lgpPwrSource1Input, 5
  lgpPwrOutputToLoad, 6 lgpPwrMeasBattery}; lgpPwrMeasurementPointTable .2.2.1 (index
  point): .2 Id (a well-known point), .3 NumLines, .4 NomVolts (V), .5 NomFrequency (Hz),
  .6 Frequency (Hz), .7 ApparentPower (VA), .8 TruePower (W);
  lgpPwrLineMeasurementTable .2.3.1 (index point, line): .3 lgpPwrMeasurementPoint (the
  row's well-known point), .5 VoltsLN (V), .6 Current (A), .8 VA, .9 TruePower (W),
  .19 PercentLoad (%); lgpPwrDcMeasurementPointTable .2.4.1 (index point): .2 Id,
  .4 Volts (V), .5 Current (A).
- lgpPwrStatus .5.3: lgpPwrStateOutputSource .31 (none 1, inverter 2, bypass 3),
  lgpPwrStateInputSource .32 (none 1, utility 2), lgpPwrStateInverterState .39 (on 1,
  off 2), lgpPwrStateUpsOutputSource .55 (the RFC 1628 upsOutputSource values).
- LIEBERT-GP-CONDITIONS-MIB lgpConditionsPresent .3.2.2 (active conditions);
  LIEBERT-GP-AGENT-MIB lgpAgentIdent .2.1: .1 Manufacturer, .2 Model,
  .3 FirmwareVersion, .4 SerialNumber.

The MIB's units are whole volts, amps, hertz and percent, so this view rounds to
them. The battery's DC current is not served: the MIB does not say its sign.
"""

from __future__ import annotations

import zlib

from pysnmp.proto.rfc1902 import Gauge32, Integer32, ObjectIdentifier, OctetString

from simulators.mib import Oid, TableBuilder
from simulators.mibs.hall_ups import HallUpsDevice
from simulators.mibs.smi import int32
from simulators.ups import BatteryStatus, OutputSource, UpsModel, UpsState
from simulators.ups_mib import UpsDevice

LGP: Oid = (1, 3, 6, 1, 4, 1, 476, 1, 42)
AGENT_IDENT: Oid = (*LGP, 2, 1)
FOUNDATION: Oid = (*LGP, 3)
CONDITIONS_PRESENT: Oid = (*FOUNDATION, 2, 2)
POWER: Oid = (*FOUNDATION, 5)
BATTERY: Oid = (*POWER, 1)
WELL_KNOWN: Oid = (*POWER, 2, 1)
POINT_ENTRY: Oid = (*POWER, 2, 2, 1)
LINE_ENTRY: Oid = (*POWER, 2, 3, 1)
DC_ENTRY: Oid = (*POWER, 2, 4, 1)
STATUS: Oid = (*POWER, 3)

SOURCE1_INPUT: Oid = (*WELL_KNOWN, 1)  # lgpPwrSource1Input
OUTPUT_TO_LOAD: Oid = (*WELL_KNOWN, 5)  # lgpPwrOutputToLoad
MEAS_BATTERY: Oid = (*WELL_KNOWN, 6)  # lgpPwrMeasBattery
#: lgpPwrMeasurementPointTable rows (the index means nothing; the Id column says).
INPUT_POINT, OUTPUT_POINT = 1, 2
BATTERY_DC_POINT = 1

CHARGE_FULL, CHARGE_PARTIAL, CHARGING, DISCHARGING = 1, 2, 3, 4


class LiebertUpsDevice(UpsDevice):
    """One simulated Liebert UPS: SNMPv2-MIB system group + LIEBERT-GP power objects."""

    default_manufacturer = "Vertiv"
    default_sys_object_id = LGP

    def default_model_name(self, model: UpsModel) -> str:
        return f"Liebert APM {int(model.rated_va / 1000)}kVA"

    def description(self) -> str:
        return f"Liebert {self.model_name} (dcim simulator)"

    def fill(self, t: TableBuilder, s: UpsState) -> None:
        t.scalar((*AGENT_IDENT, 1), OctetString(self.manufacturer))
        t.scalar((*AGENT_IDENT, 2), OctetString(self.model_name))
        t.scalar((*AGENT_IDENT, 3), OctetString("4.0.0.0-dcim-sim"))
        t.scalar((*AGENT_IDENT, 4), OctetString(f"{zlib.crc32(self.name.encode()):010d}"))
        t.scalar(CONDITIONS_PRESENT, Gauge32(len(s.alarms)))
        self._battery(t, s)
        self._points(t, s)
        self._status(t, s)

    def _battery(self, t: TableBuilder, s: UpsState) -> None:
        if s.output_source is OutputSource.BATTERY:
            charge = DISCHARGING
        elif s.charge_percent >= 100.0:
            charge = CHARGE_FULL
        elif s.utility_on:
            charge = CHARGING
        else:
            charge = CHARGE_PARTIAL
        depleted = s.battery_status is BatteryStatus.DEPLETED
        t.scalar((*BATTERY, 14), Integer32(charge))
        t.scalar((*BATTERY, 18), Integer32(0 if depleted else int(s.runtime_s // 60)))
        t.scalar((*BATTERY, 19), int32(s.charge_percent))
        t.scalar((*BATTERY, 25), Integer32(s.seconds_on_battery))
        t.scalar((*BATTERY, 26), Integer32(int(s.battery_status)))  # same values as RFC 1628

    def _points(self, t: TableBuilder, s: UpsState) -> None:
        m = self.model
        points = {
            INPUT_POINT: (SOURCE1_INPUT, s.input_lines[0].frequency_hz),
            OUTPUT_POINT: (OUTPUT_TO_LOAD, s.output_frequency_hz),
        }
        for col in (2, 3, 4, 5, 6, 7, 8):
            t.column((*POINT_ENTRY, col))
        for col in (3, 5, 6, 8, 9, 19):
            t.column((*LINE_ENTRY, col))
        for index, (point, frequency) in points.items():
            t.cell((*POINT_ENTRY, 2), (index,), ObjectIdentifier(point))
            t.cell((*POINT_ENTRY, 3), (index,), Integer32(m.lines))
            t.cell((*POINT_ENTRY, 4), (index,), int32(m.nominal_voltage))
            t.cell((*POINT_ENTRY, 5), (index,), int32(m.nominal_frequency))
            t.cell((*POINT_ENTRY, 6), (index,), int32(frequency))
        out_va = sum(line.voltage_v * line.current_a for line in s.output_lines)
        in_w = sum(line.power_w for line in s.input_lines)
        t.cell((*POINT_ENTRY, 7), (OUTPUT_POINT,), int32(out_va))
        t.cell((*POINT_ENTRY, 8), (INPUT_POINT,), int32(in_w))
        t.cell((*POINT_ENTRY, 8), (OUTPUT_POINT,), int32(sum(o.power_w for o in s.output_lines)))
        for n, inp in enumerate(s.input_lines, start=1):
            row = (INPUT_POINT, n)
            t.cell((*LINE_ENTRY, 3), row, ObjectIdentifier(SOURCE1_INPUT))
            t.cell((*LINE_ENTRY, 5), row, int32(inp.voltage_v))
            t.cell((*LINE_ENTRY, 6), row, int32(inp.current_a))
            t.cell((*LINE_ENTRY, 9), row, int32(inp.power_w))
        for n, out in enumerate(s.output_lines, start=1):
            row = (OUTPUT_POINT, n)
            t.cell((*LINE_ENTRY, 3), row, ObjectIdentifier(OUTPUT_TO_LOAD))
            t.cell((*LINE_ENTRY, 5), row, int32(out.voltage_v))
            t.cell((*LINE_ENTRY, 6), row, int32(out.current_a))
            t.cell((*LINE_ENTRY, 8), row, int32(out.voltage_v * out.current_a))
            t.cell((*LINE_ENTRY, 9), row, int32(out.power_w))
            t.cell((*LINE_ENTRY, 19), row, int32(out.percent_load))
        t.column((*DC_ENTRY, 5))  # no current row: the MIB does not give its sign
        t.cell((*DC_ENTRY, 2), (BATTERY_DC_POINT,), ObjectIdentifier(MEAS_BATTERY))
        t.cell((*DC_ENTRY, 4), (BATTERY_DC_POINT,), int32(s.battery_voltage_v))

    def _status(self, t: TableBuilder, s: UpsState) -> None:
        on_inverter = s.output_source in (OutputSource.NORMAL, OutputSource.BATTERY)
        bypass = s.output_source is OutputSource.BYPASS
        output = 3 if bypass else (2 if on_inverter else 1)  # bypass / inverter / none
        t.scalar((*STATUS, 31), Integer32(output))
        t.scalar((*STATUS, 32), Integer32(2 if s.utility_on else 1))
        t.scalar((*STATUS, 39), Integer32(1 if on_inverter else 2))
        t.scalar((*STATUS, 55), Integer32(int(s.output_source)))


class HallLiebertUpsDevice(HallUpsDevice):
    """LIEBERT-GP-POWER-MIB view of one hall UPS (community / v3 context = `name`)."""

    mib_view = LiebertUpsDevice
