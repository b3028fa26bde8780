"""What every hall device's SNMP view shares: the system group, syncing, going silent.

A device that a scenario made unresponsive raises pysnmp's base `PySnmpError`
from `snapshot()`: the command responder then drops the request without an
answer (only `SmiError` subclasses become error responses), so a client sees a
real timeout.
"""

from __future__ import annotations

from pysnmp.error import PySnmpError
from pysnmp.proto.rfc1902 import Integer32, ObjectIdentifier, OctetString, TimeTicks

from simulators.hall.views import HallView
from simulators.mib import Oid, OidTable, TableBuilder

SYSTEM: Oid = (1, 3, 6, 1, 2, 1, 1)
_TICKS_WRAP = 2**32


class DeviceSilentError(PySnmpError):  # type: ignore[misc]
    """Raised instead of answering while the device plays dead."""


def ticks(seconds: float) -> TimeTicks:
    return TimeTicks(int(max(seconds, 0.0) * 100) % _TICKS_WRAP)


class HallMibDevice:
    """A `MibDevice` over a hall view; subclasses add their MIB in `fill`."""

    sys_object_id: Oid = (1, 3, 6, 1, 4, 1)
    description = "dcim simulated device"

    def __init__(self, view: HallView, community: str | None = None) -> None:
        self.view = view
        self._name = community or view.device_id
        self._start_s = view.model.time_s

    @property
    def name(self) -> str:
        return self._name

    def snapshot(self) -> OidTable:
        if not self.view.responding:
            raise DeviceSilentError(f"{self.view.device_id} is not answering (scenario)")
        self.view.value("", {})  # catches the model up to the clock
        t = TableBuilder()
        placed = self.view.model.topology.placed[self.view.device_id]
        d = placed.device
        t.scalar((*SYSTEM, 1), OctetString(f"{d.vendor} {d.model} ({self.description})".strip()))
        t.scalar((*SYSTEM, 2), ObjectIdentifier(self.sys_object_id))
        t.scalar((*SYSTEM, 3), ticks(self.view.model.time_s - self._start_s))
        t.scalar((*SYSTEM, 4), OctetString("dcim simulators"))
        t.scalar((*SYSTEM, 5), OctetString(d.id))
        where = "/".join(x for x in (placed.site, placed.room, placed.row, placed.rack) if x)
        t.scalar((*SYSTEM, 6), OctetString(where))
        t.scalar((*SYSTEM, 7), Integer32(72))
        self.fill(t)
        return t.build()

    def fill(self, t: TableBuilder) -> None:
        raise NotImplementedError
