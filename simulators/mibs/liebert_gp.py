"""A CRAC/CRAH as Liebert (Vertiv) LIEBERT-GP-ENVIRONMENTAL-MIB and -CONDITIONS-MIB.

Enterprise 476, lgpFoundation 1.3.6.1.4.1.476.1.42.3:
- lgpEnvTemperatureTableDegC entry .4.1.3.3.1: .2 lgpEnvTemperatureDescrDegC (what
  the row measures, an OID of lgpEnvTemperatureWellKnown .4.1.1: .2 return air,
  .3 supply air), .3 lgpEnvTemperatureMeasurementDegC, .4 HighThresholdDegC,
  .5 LowThresholdDegC, .50 MeasurementTenthsDegC; row 1 is the supply (discharge)
  air, row 2 the return air. The index itself means nothing: a manager tells the
  rows apart by the Descr column, as the MIB says.
- lgpEnvHumidityTableRel entry .4.2.2.3.1: .2 lgpEnvHumidityDescrRel (an OID of
  lgpEnvHumidityWellKnown .4.2.1: .2 return air, .3 supply air),
  .3 lgpEnvHumidityMeasurementRel (% RH), same rows.
- lgpEnvState .4.3: .1.0 lgpEnvStateSystem on(1) off(2) standby(3); .8.0
  lgpEnvStateGeneralAlarmOutput on(1) off(2), the unit's common alarm relay (on
  while the unit has failed); .9.0 lgpEnvStateCoolingCapacity (Unsigned32):
  cooling capacity in use, %.
- lgpConditionsPresent .2.2.0: number of active conditions (1 while the unit has failed).
"""

from __future__ import annotations

from pysnmp.proto.rfc1902 import Gauge32, Integer32, ObjectIdentifier

from simulators.hall.thermal import relative_humidity_pct
from simulators.mib import Oid, TableBuilder
from simulators.mibs.base import HallMibDevice
from simulators.mibs.smi import int32

LGP: Oid = (1, 3, 6, 1, 4, 1, 476, 1, 42)
FOUNDATION: Oid = (*LGP, 3)
TEMPERATURE_DEG_C: Oid = (*FOUNDATION, 4, 1, 3, 3, 1)
HUMIDITY_REL: Oid = (*FOUNDATION, 4, 2, 2, 3, 1)
ENV_STATE: Oid = (*FOUNDATION, 4, 3)
SYSTEM_STATE: Oid = (*ENV_STATE, 1)
GENERAL_ALARM_OUTPUT: Oid = (*ENV_STATE, 8)
COOLING_CAPACITY: Oid = (*ENV_STATE, 9)
ON, OFF = 1, 2
CONDITIONS_PRESENT: Oid = (*FOUNDATION, 2, 2)
SUPPLY, RETURN = 1, 2
#: lgpEnvTemperatureWellKnown / lgpEnvHumidityWellKnown: what each row measures.
TEMPERATURE_KIND: dict[int, Oid] = {
    SUPPLY: (*FOUNDATION, 4, 1, 1, 3),  # lgpEnvSupplyAirTemperature
    RETURN: (*FOUNDATION, 4, 1, 1, 2),  # lgpEnvReturnAirTemperature
}
HUMIDITY_KIND: dict[int, Oid] = {
    SUPPLY: (*FOUNDATION, 4, 2, 1, 3),  # lgpEnvSupplyAirHumidity
    RETURN: (*FOUNDATION, 4, 2, 1, 2),  # lgpEnvReturnAirHumidity
}


class LiebertGpDevice(HallMibDevice):
    sys_object_id = LGP
    description = "Liebert GP simulator"

    def fill(self, t: TableBuilder) -> None:
        model = self.view.model
        crac = model.crac(self.view.device_id)
        dew = model.room_dew_c(model.topology.cracs[self.view.device_id].room)
        rows = {
            SUPPLY: (crac.supply_c, relative_humidity_pct(crac.supply_c, dew), 26, 14),
            RETURN: (crac.return_c, crac.return_rh, 35, 15),
        }
        for index, (temp, rh, high, low) in rows.items():
            t.cell((*TEMPERATURE_DEG_C, 2), (index,), ObjectIdentifier(TEMPERATURE_KIND[index]))
            t.cell((*TEMPERATURE_DEG_C, 3), (index,), int32(temp))
            t.cell((*TEMPERATURE_DEG_C, 4), (index,), Integer32(high))
            t.cell((*TEMPERATURE_DEG_C, 5), (index,), Integer32(low))
            t.cell((*TEMPERATURE_DEG_C, 50), (index,), int32(temp * 10))
            t.cell((*HUMIDITY_REL, 2), (index,), ObjectIdentifier(HUMIDITY_KIND[index]))
            t.cell((*HUMIDITY_REL, 3), (index,), int32(rh))
        t.scalar(SYSTEM_STATE, Integer32(ON if crac.running else OFF))
        failed = self.view.device_id in model.failed_cracs
        t.scalar(GENERAL_ALARM_OUTPUT, Integer32(ON if failed else OFF))
        t.scalar(COOLING_CAPACITY, Gauge32(round(100 * crac.cooling_w / crac.capacity_w)))
        t.scalar(CONDITIONS_PRESENT, Gauge32(1 if failed else 0))
