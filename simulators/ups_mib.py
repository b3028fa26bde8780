"""A `UpsModel` exposed as SNMPv2-MIB system group + UPS-MIB (RFC 1628).

Units follow RFC 1628: voltages in V (battery 0.1 V), currents 0.1 A,
frequencies 0.1 Hz, power in W, minutes for the runtime estimate. sysUpTime
and upsAlarmTime count simulated time since the device started, so they stay
consistent with upsSecondsOnBattery when the simulation runs faster than real time.
"""

from __future__ import annotations

from pysnmp.proto.rfc1902 import (
    Counter32,
    Gauge32,
    Integer,
    Integer32,
    ObjectIdentifier,
    OctetString,
)

from dcim.clock import SimClock
from simulators.mib import Oid, OidTable, TableBuilder
from simulators.mibs.smi import WRAP_32, int32, ticks
from simulators.mibs.system import fill_system
from simulators.ups import BatteryStatus, UpsModel, UpsState

UPS_MIB: Oid = (1, 3, 6, 1, 2, 1, 33)
UPS_OBJECTS: Oid = (*UPS_MIB, 1)
IDENT: Oid = (*UPS_OBJECTS, 1)
BATTERY: Oid = (*UPS_OBJECTS, 2)
INPUT: Oid = (*UPS_OBJECTS, 3)
INPUT_ENTRY: Oid = (*INPUT, 3, 1)
OUTPUT: Oid = (*UPS_OBJECTS, 4)
OUTPUT_ENTRY: Oid = (*OUTPUT, 4, 1)
ALARM: Oid = (*UPS_OBJECTS, 6)
ALARM_ENTRY: Oid = (*ALARM, 2, 1)
WELL_KNOWN_ALARMS: Oid = (*ALARM, 3)
CONFIG: Oid = (*UPS_OBJECTS, 9)


class UpsDevice:
    """One simulated UPS agent view: advances the model to `clock.now()` per snapshot.

    This class answers UPS-MIB; a vendor view subclasses it with its own defaults
    (class attributes), `description` and `fill`.
    """

    default_manufacturer = "DCIM Simulators"
    default_sys_object_id: Oid = UPS_MIB

    def __init__(
        self,
        name: str,
        model: UpsModel,
        clock: SimClock,
        *,
        manufacturer: str | None = None,
        model_name: str | None = None,
        location: str = "simulated",
        sys_object_id: Oid | None = None,
    ) -> None:
        self._name = name
        self.model = model
        self.clock = clock
        self.manufacturer = manufacturer or self.default_manufacturer
        self.model_name = model_name or self.default_model_name(model)
        self.location = location
        self.sys_object_id = sys_object_id or self.default_sys_object_id
        self._start_s = model.time_s

    @property
    def name(self) -> str:
        return self._name

    def default_model_name(self, model: UpsModel) -> str:
        return f"SIM-UPS-{int(model.rated_va)}"

    def description(self) -> str:
        """sysDescr."""
        return f"{self.manufacturer} {self.model_name} UPS simulator"

    def set_utility(self, on: bool) -> None:
        """Flip utility power now (after catching the model up to the clock)."""
        self.model.advance_to(self.clock.now())
        self.model.set_utility(on)

    def snapshot(self) -> OidTable:
        self.model.advance_to(self.clock.now())
        s = self.model.state()
        t = TableBuilder()
        fill_system(
            t,
            descr=self.description(),
            sys_object_id=self.sys_object_id,
            uptime_s=self.clock.now() - self._start_s,
            name=self._name,
            location=self.location,
        )
        self.fill(t, s)
        return t.build()

    def fill(self, t: TableBuilder, s: UpsState) -> None:
        """The UPS MIB's objects for state `s` (the system group is already there)."""
        m = self.model
        t.scalar((*IDENT, 1), OctetString(self.manufacturer))
        t.scalar((*IDENT, 2), OctetString(self.model_name))
        t.scalar((*IDENT, 3), OctetString("1.0.0"))
        t.scalar((*IDENT, 4), OctetString("dcim-simulators 0.1"))
        t.scalar((*IDENT, 5), OctetString(self._name))
        t.scalar((*IDENT, 6), OctetString(""))

        depleted = s.battery_status is BatteryStatus.DEPLETED
        # PositiveInteger per RFC; a flat battery reports 0 like real agents do.
        minutes = 0 if depleted else max(int(s.runtime_s // 60), 1)
        t.scalar((*BATTERY, 1), Integer(int(s.battery_status)))
        t.scalar((*BATTERY, 2), Integer32(s.seconds_on_battery))
        t.scalar((*BATTERY, 3), Integer32(minutes))
        t.scalar((*BATTERY, 4), int32(s.charge_percent))
        t.scalar((*BATTERY, 5), int32(s.battery_voltage_v * 10))
        t.scalar((*BATTERY, 6), int32(s.battery_current_a * 10))
        t.scalar((*BATTERY, 7), int32(s.battery_temperature_c))

        t.scalar((*INPUT, 1), Counter32(s.input_line_bads % WRAP_32))
        t.scalar((*INPUT, 2), Integer32(len(s.input_lines)))
        for col in (2, 3, 4, 5):
            t.column((*INPUT_ENTRY, col))
        for n, line in enumerate(s.input_lines, start=1):
            t.cell((*INPUT_ENTRY, 2), (n,), int32(line.frequency_hz * 10))
            t.cell((*INPUT_ENTRY, 3), (n,), int32(line.voltage_v))
            t.cell((*INPUT_ENTRY, 4), (n,), int32(line.current_a * 10))
            t.cell((*INPUT_ENTRY, 5), (n,), int32(line.power_w))

        t.scalar((*OUTPUT, 1), Integer(int(s.output_source)))
        t.scalar((*OUTPUT, 2), int32(s.output_frequency_hz * 10))
        t.scalar((*OUTPUT, 3), Integer32(len(s.output_lines)))
        for col in (2, 3, 4, 5):
            t.column((*OUTPUT_ENTRY, col))
        for n, out in enumerate(s.output_lines, start=1):
            t.cell((*OUTPUT_ENTRY, 2), (n,), int32(out.voltage_v))
            t.cell((*OUTPUT_ENTRY, 3), (n,), int32(out.current_a * 10))
            t.cell((*OUTPUT_ENTRY, 4), (n,), int32(out.power_w))
            t.cell((*OUTPUT_ENTRY, 5), (n,), int32(out.percent_load))

        t.scalar((*ALARM, 1), Gauge32(len(s.alarms)))
        t.column((*ALARM_ENTRY, 2))
        t.column((*ALARM_ENTRY, 3))
        for alarm in s.alarms:
            row = (alarm.id,)
            t.cell((*ALARM_ENTRY, 2), row, ObjectIdentifier((*WELL_KNOWN_ALARMS, int(alarm.kind))))
            t.cell((*ALARM_ENTRY, 3), row, ticks(alarm.since_s - self._start_s))

        t.scalar((*CONFIG, 1), int32(m.nominal_voltage))
        t.scalar((*CONFIG, 2), int32(m.nominal_frequency * 10))
        t.scalar((*CONFIG, 3), int32(m.nominal_voltage))
        t.scalar((*CONFIG, 4), int32(m.nominal_frequency * 10))
        t.scalar((*CONFIG, 5), int32(m.rated_va))
        t.scalar((*CONFIG, 6), int32(m.rated_w))
        t.scalar((*CONFIG, 7), int32(m.low_runtime_s / 60))
        t.scalar((*CONFIG, 8), Integer(2))  # audible alarms enabled
        t.scalar((*CONFIG, 9), int32(m.nominal_voltage * 0.8))
        t.scalar((*CONFIG, 10), int32(m.nominal_voltage * 1.1))
