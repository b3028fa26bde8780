"""What the dashboards of one site need to know about its inventory."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from dcim.inventory import Config, DeviceKind, PlacedDevice, iter_devices


def inventory_tags_only(placed: PlacedDevice, metric: str, tag: str) -> frozenset[str]:
    """Without profiles: only the inventory's own tag on the device."""
    del metric
    value = placed.tags.get(tag)
    return frozenset({value}) if value else frozenset()


def metrics_unknown(placed: PlacedDevice) -> frozenset[str] | None:
    """Without profiles: a device may report any metric of its kind."""
    del placed
    return None


@dataclass(frozen=True, slots=True)
class Profiles:
    """What device profiles say, passed in by the CLI (dcim core reads no profile).

    `tag_values(device, metric, tag)`: the values of `tag` the profile gives
    `metric` (a meter's `scope` channels); `metrics(device)`: the metrics it can
    report, None when unknown.
    """

    tag_values: Callable[[PlacedDevice, str, str], frozenset[str]] = inventory_tags_only
    metrics: Callable[[PlacedDevice], frozenset[str] | None] = metrics_unknown


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
    #: Metrics the site's device profiles can report; None when profiles were not read.
    metrics: frozenset[str] | None = None

    @property
    def rooms(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.room for p in self.devices))

    @property
    def longest_poll_s(self) -> float:
        return max((p.device.poll_interval_s for p in self.devices), default=30.0)

    @property
    def shortest_poll_s(self) -> float:
        return min((p.device.poll_interval_s for p in self.devices), default=30.0)

    def reports(self, metric: str) -> bool:
        """Whether a device's profile reports `metric` (True when profiles were not read)."""
        return self.metrics is None or metric in self.metrics

    @property
    def has_point_smoke_detector(self) -> bool:
        """A smoke sensor the inventory calls a point detector (`detector: point`): stage
        contacts of an aspirating detector report its level, not `smoke_detected`."""
        return any(
            p.device.kind is DeviceKind.SENSOR and p.tags.get("detector") == "point"
            for p in self.devices
        )

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


def sites_of(config: Config, profiles: Profiles | None = None) -> list[Site]:
    """Every site of the config with its devices, in file order."""
    profiles = profiles or Profiles()
    placed = list(iter_devices(config))
    out = []
    for site in config.sites:
        devices = tuple(p for p in placed if p.site == site.id)
        scopes: set[str] = set()
        metrics: set[str] | None = set()
        for p in devices:
            if p.device.kind is DeviceKind.METER:
                scopes |= inventory_tags_only(p, "meter.power_w", "scope")
                scopes |= profiles.tag_values(p, "meter.power_w", "scope")
            reported = profiles.metrics(p)
            if reported is None or metrics is None:
                metrics = None
            else:
                metrics |= reported
        known = frozenset(metrics) if metrics is not None else None
        out.append(Site(site.id, site.name, devices, frozenset(scopes), known))
    return out
