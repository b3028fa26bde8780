"""Rack probes, door and leak contacts, smoke relays as APC PowerNet-MIB universal I/O.

An APC network management card (NMC2/NMC3, NetBotz rack monitor) reports
probes in uioSensorStatusTable (1.3.6.1.4.1.318.1.1.25.1.2.1, index port.sensor:
.1 PortID, .2 SensorID, .3 SensorName, .6 TemperatureDegC (-1 when communication
with the probe is lost), .7 Humidity (% RH, -1 when absent or lost), .9 AlarmStatus
uioNormal(1) uioWarning(2) uioCritical(3), .10 CommStatus commsOK(2) commsLost(3))
and dry contacts in uioInputContactStatusTable (1.3.6.1.4.1.318.1.1.25.2.2.1,
index port.contact: .1 PortID, .2 ContactID, .3 ContactName, .5 CurrentState
closed(1) open(2)). This is how the simulated probes appear:

- env:   port 1 = inlet probe, port 2 = outlet probe (temperature and humidity)
- door:  contact 1.1, open while the door is open
- leak:  contact 1.1, closed while water is detected
- smoke: a VESDA-style detector's four relays wired to contacts 1.1-1.4
  (Alert, Action, Fire1, Fire2), each closed while its stage is reached;
  obscuration itself is only on the detector's own interface (Modbus/MQTT).
  A point detector (device tag `detector: point`) has one alarm relay instead,
  contact 1.1 "Smoke", closed while the model's smoke reaches POINT_ALARM_LEVELS.
"""

from __future__ import annotations

from pysnmp.proto.rfc1902 import Integer32, OctetString

from simulators.hall.model import SMOKE_THRESHOLDS, smoke_level
from simulators.mib import Oid, TableBuilder
from simulators.mibs.base import HallMibDevice

UIO: Oid = (1, 3, 6, 1, 4, 1, 318, 1, 1, 25)
SENSOR_STATUS: Oid = (*UIO, 1, 2, 1)
CONTACT_STATUS: Oid = (*UIO, 2, 2, 1)
CLOSED, OPEN = 1, 2
COMMS_OK, COMMS_LOST = 2, 3
NORMAL, WARNING, CRITICAL = 1, 2, 3
#: ASHRAE recommended / A1 allowable upper inlet limits [H1].
INLET_WARNING_C, INLET_CRITICAL_C = 27.0, 32.0
#: Stages at which a point smoke detector is in alarm (its relay closes): the hall
#: view's `sensor.smoke_detected`.
POINT_ALARM_LEVELS = ("fire1", "fire2")


class ApcUioDevice(HallMibDevice):
    sys_object_id = (1, 3, 6, 1, 4, 1, 318, 1, 3, 8)
    description = "APC universal I/O simulator"

    def fill(self, t: TableBuilder) -> None:
        model = self.view.model
        sid = self.view.device_id
        role = model.topology.sensors[sid].role
        if role == "env":
            env = model.env(sid)
            probes = (
                (1, "Inlet", env.inlet_c, env.inlet_rh),
                (2, "Outlet", env.outlet_c, env.outlet_rh),
            )
            for port, label, temp, rh in probes:
                idx = (port, 1)
                t.cell((*SENSOR_STATUS, 1), idx, Integer32(port))
                t.cell((*SENSOR_STATUS, 2), idx, Integer32(1))
                t.cell((*SENSOR_STATUS, 3), idx, OctetString(f"{sid} {label}"))
                t.cell((*SENSOR_STATUS, 6), idx, Integer32(-1 if temp is None else round(temp)))
                t.cell((*SENSOR_STATUS, 7), idx, Integer32(-1 if rh is None else round(rh)))
                alarm = NORMAL
                if temp is not None and port == 1:
                    alarm = (
                        CRITICAL
                        if temp > INLET_CRITICAL_C
                        else WARNING
                        if temp > INLET_WARNING_C
                        else NORMAL
                    )
                t.cell((*SENSOR_STATUS, 9), idx, Integer32(alarm))
                t.cell(
                    (*SENSOR_STATUS, 10), idx, Integer32(COMMS_LOST if temp is None else COMMS_OK)
                )
            return
        if role == "smoke" and model.topology.placed[sid].device.tags.get("detector") == "point":
            contacts = [("Smoke", smoke_level(model.smoke(sid)[0]) in POINT_ALARM_LEVELS)]
        elif role == "smoke":
            value, _ = model.smoke(sid)
            contacts = [(name.capitalize(), value >= limit) for name, limit in SMOKE_THRESHOLDS]
        elif role == "leak":
            contacts = [("Leak", sid in model.leaks)]
        else:
            # A door switch is closed while the door is shut.
            contacts = [("Door", sid not in model.doors_open)]
        for n, (name, closed) in enumerate(contacts, start=1):
            idx = (1, n)
            t.cell((*CONTACT_STATUS, 1), idx, Integer32(1))
            t.cell((*CONTACT_STATUS, 2), idx, Integer32(n))
            t.cell((*CONTACT_STATUS, 3), idx, OctetString(f"{sid} {name}"))
            t.cell((*CONTACT_STATUS, 5), idx, Integer32(CLOSED if closed else OPEN))
