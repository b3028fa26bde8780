"""Explicit map from protocol to collector factory (no import-time registration)."""

from __future__ import annotations

from collectors.profile import load_snmp_profile
from collectors.snmp.client import SnmpEngineHost
from collectors.snmp.collector import SnmpCollector
from collectors.snmp.plan import SnmpPlan, plan_profile
from dcim.collector import Collector
from dcim.errors import ConfigError, ProfileError
from dcim.inventory import PlacedDevice


class CollectorFactory:
    """Builds collectors and owns what they share: one SNMP engine, compiled plans."""

    def __init__(self, *, max_in_flight: int = 100) -> None:
        self._max_in_flight = max_in_flight
        self._snmp_host: SnmpEngineHost | None = None
        self._snmp_plans: dict[str, SnmpPlan] = {}

    def build(self, placed: PlacedDevice) -> Collector:
        device = placed.device
        if device.snmp is not None:
            if self._snmp_host is None:
                self._snmp_host = SnmpEngineHost(self._max_in_flight)
            return SnmpCollector(
                placed, self.snmp_plan(device.profile), self._snmp_host, device.snmp
            )
        raise ConfigError(device.id, ["no supported protocol section"])

    def snmp_plan(self, profile: str) -> SnmpPlan:
        """The compiled plan of a profile, built once and shared by its devices."""
        plan = self._snmp_plans.get(profile)
        if plan is None:
            plan = self._snmp_plans[profile] = plan_profile(load_snmp_profile(profile))
        return plan

    def close(self) -> None:
        if self._snmp_host is not None:
            self._snmp_host.close()
            self._snmp_host = None


def check_profiles(devices: list[PlacedDevice]) -> list[str]:
    """Problems with the profiles the devices name (for `dcim validate`)."""
    problems = []
    for placed in devices:
        device = placed.device
        if device.snmp is None:
            continue
        try:
            profile = load_snmp_profile(device.profile)
        except ProfileError as exc:
            problems.append(f"device {device.id}: profile: {exc}")
            continue
        if profile.kind != device.kind.value:
            problems.append(
                f"device {device.id}: profile {device.profile} is for kind {profile.kind}, "
                f"device is {device.kind.value}"
            )
    return problems
