"""What the dashboards of one site need to know about its inventory."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from dcim.inventory import Config, DeviceKind, PlacedDevice, iter_devices

#: Grafana refuses uids longer than this.
MAX_UID = 40
#: What a sensor measures, when its inventory says (tag `sensor`) or its profile name does.
SENSOR_ROLES = ("env", "smoke", "leak", "door")


@dataclass(frozen=True, slots=True)
class Site:
    """One site: its id, display name and devices in inventory order."""

    id: str
    name: str
    devices: tuple[PlacedDevice, ...]

    @property
    def title(self) -> str:
        return self.name or self.id

    @property
    def kinds(self) -> frozenset[DeviceKind]:
        return frozenset(placed.device.kind for placed in self.devices)

    def has(self, *kinds: DeviceKind) -> bool:
        """True when the site has a device of any of `kinds`: views leave out empty rows."""
        return bool(self.kinds.intersection(kinds))

    def has_sensor(self, *roles: str) -> bool:
        """True when a sensor may report any of `roles` (env, smoke, leak, door).

        A sensor's role is its `sensor` tag, else the role its profile is named
        for (`rack-leak-json`); a sensor with neither might report anything.
        """
        for placed in self.devices:
            if placed.device.kind is not DeviceKind.SENSOR:
                continue
            role = placed.tags.get("sensor") or next(
                (r for r in SENSOR_ROLES if r in placed.device.profile.split("-")), None
            )
            if role is None or role in roles:
                return True
        return False

    def uid(self, view: str) -> str:
        """`dcim-<view>-<site>`, shortened with a hash when too long for Grafana."""
        uid = f"dcim-{view}-{self.id}"
        if len(uid) <= MAX_UID:
            return uid
        digest = hashlib.sha256(self.id.encode()).hexdigest()[:8]
        return f"{uid[: MAX_UID - 9]}-{digest}"

    @property
    def folder_uid(self) -> str:
        return self.uid("folder")

    @property
    def link_tag(self) -> str:
        """Dashboards of one site share this tag; their link menu lists each other."""
        return f"site:{self.id}"


def sites_of(config: Config) -> list[Site]:
    """Every site of the config with its devices, in file order."""
    placed = list(iter_devices(config))
    return [
        Site(site.id, site.name, tuple(p for p in placed if p.site == site.id))
        for site in config.sites
    ]
