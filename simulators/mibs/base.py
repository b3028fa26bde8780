"""What every hall device's SNMP view shares: the system group, syncing, going silent.

A device that a scenario made unresponsive raises pysnmp's base `PySnmpError`
from `snapshot()`: the command responder then drops the request without an
answer (only `SmiError` subclasses become error responses), so a client sees a
real timeout.
"""

from __future__ import annotations

from pysnmp.error import PySnmpError

from simulators.hall.views import HallView
from simulators.mib import Oid, OidTable, TableBuilder
from simulators.mibs.system import fill_system


class DeviceSilentError(PySnmpError):  # type: ignore[misc]
    """Raised instead of answering while the device plays dead."""


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
        fill_system(
            t,
            descr=f"{d.vendor} {d.model} ({self.description})".strip(),
            sys_object_id=self.sys_object_id,
            uptime_s=self.view.model.time_s - self._start_s,
            name=d.id,
            location="/".join(x for x in (placed.site, placed.room, placed.row, placed.rack) if x),
        )
        self.fill(t)
        return t.build()

    def fill(self, t: TableBuilder) -> None:
        raise NotImplementedError
