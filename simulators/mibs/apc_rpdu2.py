"""A rack PDU as APC PowerNet-MIB rPDU2 (AP8xxx "2G" metered/switched rack PDUs).

PowerNet-MIB, rPDU2 branch 1.3.6.1.4.1.318.1.1.26 (sysObjectID .318.1.3.4.5):
rPDU2DevicePropertiesTable (.4.2: .3 Name, .9 MaxCurrentRating = the topology's
rated_a), rPDU2DeviceStatusTable (.4.3), rPDU2PhaseStatusTable (.6.3),
rPDU2BankPropertiesTable (.8.2: .5 BreakerRating = the topology's breaker_a),
rPDU2BankStatusTable (.8.3, one bank per branch breaker) and
rPDU2OutletMeteredStatusTable (.9.4.3). Ratings are whole amps.
Units as the MIB defines them: power in hundredths of kW, energy in tenths of
kWh, currents in tenths of A, voltage in V, power factor in hundredths;
load states lowLoad(1) normal(2) nearOverload(3) overload(4).
"""

from __future__ import annotations

from pysnmp.proto.rfc1902 import Integer32, OctetString

from simulators.hall import power
from simulators.mib import Oid, TableBuilder
from simulators.mibs.base import HallMibDevice
from simulators.mibs.smi import int32

RPDU2: Oid = (1, 3, 6, 1, 4, 1, 318, 1, 1, 26)
DEVICE_PROPERTIES: Oid = (*RPDU2, 4, 2, 1)
DEVICE_STATUS: Oid = (*RPDU2, 4, 3, 1)
PHASE_STATUS: Oid = (*RPDU2, 6, 3, 1)
BANK_PROPERTIES: Oid = (*RPDU2, 8, 2, 1)
BANK_STATUS: Oid = (*RPDU2, 8, 3, 1)
OUTLET_METERED_STATUS: Oid = (*RPDU2, 9, 4, 3, 1)

LOAD_STATE = {"low": 1, "normal": 2, "near_overload": 3, "overload": 4}


class ApcRpdu2Device(HallMibDevice):
    sys_object_id = (1, 3, 6, 1, 4, 1, 318, 1, 3, 4, 5)
    description = "APC rPDU2 simulator"

    def fill(self, t: TableBuilder) -> None:
        model = self.view.model
        pdu = model.topology.pdus[self.view.device_id]
        flow = model.flows[pdu.id]
        row = (1,)
        device_state = max(
            (power.load_state(a, pdu.rated_a) for a in flow.phase_a),
            key=lambda s: LOAD_STATE[s] if s != "low" else 0,
        )
        t.cell((*DEVICE_PROPERTIES, 1), row, Integer32(1))
        t.cell((*DEVICE_PROPERTIES, 2), row, Integer32(1))
        t.cell((*DEVICE_PROPERTIES, 3), row, OctetString(pdu.id))
        t.cell((*DEVICE_PROPERTIES, 7), row, Integer32(pdu.phases))
        t.cell((*DEVICE_PROPERTIES, 9), row, int32(pdu.rated_a))
        t.cell((*DEVICE_STATUS, 1), row, Integer32(1))
        t.cell((*DEVICE_STATUS, 2), row, Integer32(1))
        t.cell((*DEVICE_STATUS, 3), row, OctetString(pdu.id))
        t.cell((*DEVICE_STATUS, 4), row, Integer32(LOAD_STATE[device_state]))
        t.cell((*DEVICE_STATUS, 5), row, int32(flow.total_w / 10))
        t.cell((*DEVICE_STATUS, 9), row, int32(model.energy_kwh[pdu.id] * 10))
        t.cell((*DEVICE_STATUS, 16), row, int32(flow.apparent_va / 10))
        t.cell((*DEVICE_STATUS, 17), row, int32(power.POWER_FACTOR * 100 if flow.total_w else 0))

        for p, amps in enumerate(flow.phase_a):
            idx = (p + 1,)
            t.cell((*PHASE_STATUS, 1), idx, Integer32(p + 1))
            t.cell((*PHASE_STATUS, 2), idx, Integer32(1))
            t.cell((*PHASE_STATUS, 3), idx, Integer32(p + 1))
            t.cell(
                (*PHASE_STATUS, 4), idx, Integer32(LOAD_STATE[power.load_state(amps, pdu.rated_a)])
            )
            t.cell((*PHASE_STATUS, 5), idx, int32(amps * 10))
            t.cell((*PHASE_STATUS, 6), idx, int32(flow.voltage_v))
            t.cell((*PHASE_STATUS, 7), idx, int32(flow.phase_w[p] / 10))

        for b, amps in enumerate(flow.branch_a):
            idx = (b + 1,)
            state = power.load_state(amps, pdu.breaker_a)
            t.cell((*BANK_PROPERTIES, 1), idx, Integer32(b + 1))
            t.cell((*BANK_PROPERTIES, 2), idx, Integer32(1))
            t.cell((*BANK_PROPERTIES, 3), idx, Integer32(b + 1))
            t.cell((*BANK_PROPERTIES, 5), idx, int32(pdu.breaker_a))
            t.cell((*BANK_STATUS, 1), idx, Integer32(b + 1))
            t.cell((*BANK_STATUS, 2), idx, Integer32(1))
            t.cell((*BANK_STATUS, 3), idx, Integer32(b + 1))
            t.cell((*BANK_STATUS, 4), idx, Integer32(LOAD_STATE[state]))
            t.cell((*BANK_STATUS, 5), idx, int32(amps * 10))

        energy = model.outlet_energy_kwh[pdu.id]
        for o, watts in enumerate(flow.outlet_w):
            idx = (o + 1,)
            t.cell((*OUTLET_METERED_STATUS, 1), idx, Integer32(o + 1))
            t.cell((*OUTLET_METERED_STATUS, 2), idx, Integer32(1))
            t.cell((*OUTLET_METERED_STATUS, 3), idx, OctetString(f"Outlet {o + 1}"))
            t.cell((*OUTLET_METERED_STATUS, 4), idx, Integer32(o + 1))
            t.cell((*OUTLET_METERED_STATUS, 5), idx, Integer32(2))  # on
            t.cell((*OUTLET_METERED_STATUS, 6), idx, int32(flow.outlet_a[o] * 10))
            t.cell((*OUTLET_METERED_STATUS, 7), idx, int32(watts))
            t.cell((*OUTLET_METERED_STATUS, 11), idx, int32(energy[o] * 10))
