"""A hall UPS over SNMP: the bundled UPS-MIB (RFC 1628) view, able to play dead."""

from __future__ import annotations

from dcim.clock import SimClock
from simulators.hall.model import HallModel
from simulators.mib import OidTable
from simulators.mibs.base import DeviceSilentError
from simulators.ups_mib import UpsDevice


class HallTime(SimClock):
    """A clock that first catches the hall up to `base`, then reports the hall's own time.

    The hall steps its UPS models itself; reading through this clock keeps
    `UpsDevice` from stepping them a second time.
    """

    def __init__(self, base: SimClock, model: HallModel) -> None:
        super().__init__(base.speed, base.start_s)
        self.base = base
        self.model = model

    def now(self) -> float:
        self.model.advance_to(self.base.now())
        return self.model.time_s


class HallUpsDevice:
    """UPS-MIB view of one hall UPS (community = `name`); a subclass names another `mib_view`."""

    mib_view: type[UpsDevice] = UpsDevice

    def __init__(self, name: str, device_id: str, model: HallModel, clock: HallTime) -> None:
        self._name = name
        self.device_id = device_id
        self.model = model
        placed = model.topology.placed[device_id].device
        self.inner = self.mib_view(
            name,
            model.ups_models[device_id],
            clock,
            manufacturer=placed.vendor or "DCIM Simulators",
            model_name=placed.model or None,
            location="/".join(
                x for x in (model.topology.site, model.topology.placed[device_id].room) if x
            ),
        )

    @property
    def name(self) -> str:
        return self._name

    def snapshot(self) -> OidTable:
        if self.device_id in self.model.silent:
            raise DeviceSilentError(f"{self.device_id} is not answering (scenario)")
        return self.inner.snapshot()
