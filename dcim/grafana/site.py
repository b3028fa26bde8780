"""What the dashboards of one site need to know about its inventory."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from dcim.inventory import Config, DeviceKind, PlacedDevice, iter_devices

#: What a device's profile tags its readings with, for a metric and tag (e.g. the
#: `scope` values of a meter's `meter.power_w` channels); passed in by the CLI,
#: which may read profiles (dcim core does not).
ProfileTags = Callable[[PlacedDevice, str, str], frozenset[str]]


def inventory_tags_only(placed: PlacedDevice, metric: str, tag: str) -> frozenset[str]:
    """Without profiles: only the inventory's own tag on the device."""
    del metric
    value = placed.tags.get(tag)
    return frozenset({value}) if value else frozenset()


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
    #: `scope` values the site's meters write meter.power_w with (facility, it).
    power_scopes: frozenset[str] = frozenset()

    @property
    def rooms(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.room for p in self.devices))

    @property
    def longest_poll_s(self) -> float:
        return max((p.device.poll_interval_s for p in self.devices), default=30.0)

    @property
    def shortest_poll_s(self) -> float:
        return min((p.device.poll_interval_s for p in self.devices), default=30.0)

    @property
    def has_pue(self) -> bool:
        """Facility and IT power are both metered (by inventory tag or meter channel)."""
        return {"facility", "it"} <= self.power_scopes

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


def sites_of(config: Config, profile_tags: ProfileTags = inventory_tags_only) -> list[Site]:
    """Every site of the config with its devices, in file order."""
    placed = list(iter_devices(config))
    out = []
    for site in config.sites:
        devices = tuple(p for p in placed if p.site == site.id)
        scopes: set[str] = set()
        for p in devices:
            if p.device.kind is DeviceKind.METER:
                scopes |= inventory_tags_only(p, "meter.power_w", "scope")
                scopes |= profile_tags(p, "meter.power_w", "scope")
        out.append(Site(site.id, site.name, devices, frozenset(scopes)))
    return out
