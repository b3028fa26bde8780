"""A `UpsModel` as an APC UPS behind a Network Management Card (PowerNet-MIB).

PowerNet-MIB (APC / Schneider Electric, enterprise 318), ups group
1.3.6.1.4.1.318.1.1.1 (types and units as the MIB gives them):

- upsIdent .1: upsBasicIdentModel .1.1.1, upsBasicIdentName .1.1.2,
  upsAdvIdentFirmwareRevision .1.2.1, upsAdvIdentDateOfManufacture .1.2.2 (mm/dd/yyyy),
  upsAdvIdentSerialNumber .1.2.3.
- upsBattery .2: upsBasicBatteryStatus .2.1.1 (unknown 1, batteryNormal 2, batteryLow 3,
  batteryInFaultCondition 4), upsBasicBatteryTimeOnBattery .2.1.2 (TimeTicks),
  upsAdvBatteryCapacity .2.2.1 (Gauge32 %), upsAdvBatteryTemperature .2.2.2 (Gauge32 °C,
  below zero reads 0), upsAdvBatteryRunTimeRemaining .2.2.3 (TimeTicks),
  upsAdvBatteryReplaceIndicator .2.2.4 (noBatteryNeedsReplacing 1, batteryNeedsReplacing 2),
  upsAdvBatteryActualVoltage .2.2.8 (V); upsHighPrecBatteryCapacity .2.3.1 (0.1 %),
  upsHighPrecBatteryTemperature .2.3.2 (0.1 °C), upsHighPrecBatteryActualVoltage .2.3.4 (0.1 V).
- upsInput .3: upsAdvInputLineVoltage .3.2.1 (V), upsAdvInputFrequency .3.2.4 (Hz),
  upsAdvInputLineFailCause .3.2.5 (noTransfer 1 ... blackout 4); upsHighPrecInputLineVoltage
  .3.3.1 (0.1 V), upsHighPrecInputFrequency .3.3.4 (0.1 Hz).
- upsOutput .4: upsBasicOutputStatus .4.1.1 (onLine 2, onBattery 3, onSmartBoost 4,
  off 7, switchedBypass 9, onSmartTrim 12, ...); upsAdvOutputVoltage/Frequency/Load/Current
  .4.2.1-4 (V, Hz, %, A); upsHighPrecOutputVoltage/Frequency/Load/Current .4.3.1-4
  (0.1 V, 0.1 Hz, 0.1 %, 0.1 A).

The whole-unit upsAdv objects and their upsHighPrec twins are both served, as NMC
firmware 5+ does. The types follow a real Smart-UPS capture (Gauge32 for the
high-precision values, INTEGER for voltages of the battery, TimeTicks for times).

These are single-phase objects. A three-line model (the hall's UPSes) reports the
line-1 voltage and frequency (every line of the model shares them) and the current
and load of its most loaded line (`UpsState.load_percent` is that line's load, as in
UPS-MIB). The model has no self-test, so upsAdvTest is not served (noSuchObject).
APC has no "depleted" battery status: a flat battery reads batteryLow(3).
"""

from __future__ import annotations

import zlib

from pysnmp.proto.rfc1902 import Integer, OctetString

from simulators.mib import Oid, TableBuilder
from simulators.mibs.hall_ups import HallUpsDevice
from simulators.mibs.smi import gauge32, int32, ticks
from simulators.ups import AlarmKind, BatteryStatus, OutputSource, UpsModel, UpsState
from simulators.ups_mib import UpsDevice

APC: Oid = (1, 3, 6, 1, 4, 1, 318)
UPS: Oid = (*APC, 1, 1, 1)
#: sysObjectID of a Smart-UPS with a Network Management Card 2 (the Smart-UPS X 750
#: capture in shared/peer-data/librenms, apc_smt750x-nmc2).
SMART_UPS: Oid = (*APC, 1, 3, 27)

IDENT_BASIC: Oid = (*UPS, 1, 1)
IDENT_ADV: Oid = (*UPS, 1, 2)
BATTERY_BASIC: Oid = (*UPS, 2, 1)
BATTERY_ADV: Oid = (*UPS, 2, 2)
BATTERY_HIGH: Oid = (*UPS, 2, 3)
INPUT_ADV: Oid = (*UPS, 3, 2)
INPUT_HIGH: Oid = (*UPS, 3, 3)
OUTPUT_BASIC: Oid = (*UPS, 4, 1)
OUTPUT_ADV: Oid = (*UPS, 4, 2)
OUTPUT_HIGH: Oid = (*UPS, 4, 3)

#: upsBasicOutputStatus for each RFC 1628 output source of the model.
OUTPUT_STATUS: dict[OutputSource, int] = {
    OutputSource.OTHER: 1,  # unknown
    OutputSource.NONE: 7,  # off
    OutputSource.NORMAL: 2,  # onLine
    OutputSource.BYPASS: 9,  # switchedBypass
    OutputSource.BATTERY: 3,  # onBattery
    OutputSource.BOOSTER: 4,  # onSmartBoost
    OutputSource.REDUCER: 12,  # onSmartTrim
}
#: upsBasicBatteryStatus: APC has no "depleted", a flat battery is batteryLow.
BATTERY_STATUS: dict[BatteryStatus, int] = {
    BatteryStatus.UNKNOWN: 1,
    BatteryStatus.NORMAL: 2,
    BatteryStatus.LOW: 3,
    BatteryStatus.DEPLETED: 3,
}
NO_TRANSFER, BLACKOUT = 1, 4  # upsAdvInputLineFailCause


def single_phase(s: UpsState) -> tuple[float, float, float, float, float]:
    """(input V, input Hz, output V, output A, load %) as the single-phase objects report them."""
    inp = s.input_lines[0]
    worst = max(s.output_lines, key=lambda line: line.percent_load)
    return inp.voltage_v, inp.frequency_hz, worst.voltage_v, worst.current_a, s.load_percent


class ApcUpsDevice(UpsDevice):
    """One simulated APC UPS: SNMPv2-MIB system group + PowerNet-MIB ups group."""

    default_manufacturer = "APC"
    default_sys_object_id = SMART_UPS

    def default_model_name(self, model: UpsModel) -> str:
        return f"Smart-UPS {int(model.rated_va)}"

    def description(self) -> str:
        return f"APC Web/SNMP Management Card (dcim simulator) {self.model_name}"

    def fill(self, t: TableBuilder, s: UpsState) -> None:
        self._ident(t)
        self._battery(t, s)
        in_v, in_hz, out_v, out_a, load = single_phase(s)
        t.scalar((*INPUT_ADV, 1), gauge32(in_v))
        t.scalar((*INPUT_ADV, 4), gauge32(in_hz))
        t.scalar((*INPUT_ADV, 5), Integer(BLACKOUT if s.input_line_bads else NO_TRANSFER))
        t.scalar((*INPUT_HIGH, 1), gauge32(in_v * 10))
        t.scalar((*INPUT_HIGH, 4), gauge32(in_hz * 10))

        t.scalar((*OUTPUT_BASIC, 1), Integer(OUTPUT_STATUS[s.output_source]))
        t.scalar((*OUTPUT_ADV, 1), gauge32(out_v))
        t.scalar((*OUTPUT_ADV, 2), gauge32(s.output_frequency_hz))
        t.scalar((*OUTPUT_ADV, 3), gauge32(load))
        t.scalar((*OUTPUT_ADV, 4), gauge32(out_a))
        t.scalar((*OUTPUT_HIGH, 1), gauge32(out_v * 10))
        t.scalar((*OUTPUT_HIGH, 2), gauge32(s.output_frequency_hz * 10))
        t.scalar((*OUTPUT_HIGH, 3), gauge32(load * 10))
        t.scalar((*OUTPUT_HIGH, 4), gauge32(out_a * 10))

    def _ident(self, t: TableBuilder) -> None:
        t.scalar((*IDENT_BASIC, 1), OctetString(self.model_name))
        t.scalar((*IDENT_BASIC, 2), OctetString(self.name))
        t.scalar((*IDENT_ADV, 1), OctetString("UPS 09.8 (ID20) dcim-sim"))
        t.scalar((*IDENT_ADV, 2), OctetString("01/15/2024"))
        t.scalar((*IDENT_ADV, 3), OctetString(f"SIM{zlib.crc32(self.name.encode()):010d}"))

    def _battery(self, t: TableBuilder, s: UpsState) -> None:
        runtime = 0.0 if s.battery_status is BatteryStatus.DEPLETED else s.runtime_s
        replace = any(a.kind is AlarmKind.BATTERY_BAD for a in s.alarms)
        t.scalar((*BATTERY_BASIC, 1), Integer(BATTERY_STATUS[s.battery_status]))
        t.scalar((*BATTERY_BASIC, 2), ticks(s.seconds_on_battery))
        t.scalar((*BATTERY_BASIC, 3), OctetString("01/15/2024"))
        t.scalar((*BATTERY_ADV, 1), gauge32(s.charge_percent))
        t.scalar((*BATTERY_ADV, 2), gauge32(s.battery_temperature_c))
        t.scalar((*BATTERY_ADV, 3), ticks(runtime))
        t.scalar((*BATTERY_ADV, 4), Integer(2 if replace else 1))
        t.scalar((*BATTERY_ADV, 8), int32(s.battery_voltage_v))
        t.scalar((*BATTERY_HIGH, 1), gauge32(s.charge_percent * 10))
        t.scalar((*BATTERY_HIGH, 2), gauge32(s.battery_temperature_c * 10))
        t.scalar((*BATTERY_HIGH, 4), int32(s.battery_voltage_v * 10))


class HallApcUpsDevice(HallUpsDevice):
    """PowerNet-MIB view of one hall UPS (community / v3 context = `name`)."""

    mib_view = ApcUpsDevice
