"""Explicit map from protocol to collector factory (no import-time registration)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from pydantic import BaseModel

from collectors.snmp.client import SnmpHost
from collectors.snmp.collector import SnmpCollector
from collectors.snmp.plan import SnmpPlan, plan_profile
from collectors.snmp.profile import load_snmp_profile
from collectors.snmp.security import WeakSecurityReporter
from dcim.collector import Collector, StreamCollector
from dcim.errors import ConfigError, ProfileError
from dcim.inventory import Config, ModbusConfig, PlacedDevice, iter_devices

if TYPE_CHECKING:
    from collectors.modbus.client import ModbusGateway
    from collectors.modbus.plan import ModbusPlan


class CollectorFactory:
    """Builds collectors and owns what they share: the SNMP sockets, compiled plans."""

    @classmethod
    def for_config(cls, config: Config) -> CollectorFactory:
        """The factory of a monitor running `config` (`dcim.collector.MakeCollectors`)."""
        return cls(max_in_flight=config.monitor.max_in_flight)

    def __init__(self, *, max_in_flight: int = 100) -> None:
        self._weak_security = WeakSecurityReporter()
        self._max_in_flight = max_in_flight
        self._snmp_host: SnmpHost | None = None
        self._snmp_plans: dict[str, SnmpPlan] = {}
        # one gateway (connections, request pacing) per host:port, shared by its unit ids
        self._modbus_gateways: dict[tuple[str, int, str], ModbusGateway] = {}
        self._modbus_plans: dict[tuple[str, int], ModbusPlan] = {}

    def build(self, placed: PlacedDevice) -> Collector:
        device = placed.device
        if device.snmp is not None:
            self._weak_security.report(device.id, device.snmp)
            if self._snmp_host is None:
                self._snmp_host = SnmpHost(self._max_in_flight)
            return SnmpCollector(
                placed, self.snmp_plan(device.profile), self._snmp_host, device.snmp
            )
        if device.modbus is not None:
            from collectors.modbus.collector import ModbusCollector

            plan = self.modbus_plan(device.profile, device.modbus.max_gap)
            gateway = self.modbus_gateway(device.modbus)
            return ModbusCollector(placed, plan, gateway, device.modbus)
        raise ConfigError(device.id, ["no supported protocol section"])

    def streams(self, config: Config) -> list[StreamCollector]:
        """Collectors that receive pushed data (SNMP traps, MQTT) for this inventory."""
        return build_streams(config)

    def modbus_plan(self, profile: str, max_gap: int) -> ModbusPlan:
        """The request plan of a register map, built once per (profile, max_gap)."""
        from collectors.modbus.plan import plan_profile as plan_modbus
        from collectors.modbus.profile import load_modbus_profile

        key = (profile, max_gap)
        if key not in self._modbus_plans:
            self._modbus_plans[key] = plan_modbus(load_modbus_profile(profile), max_gap)
        return self._modbus_plans[key]

    def modbus_gateway(self, config: ModbusConfig) -> ModbusGateway:
        """The gateway for host:port (the first device's settings apply to all its units)."""
        from collectors.modbus.client import ModbusGateway

        key = (config.host, config.port, config.transport)
        if key not in self._modbus_gateways:
            self._modbus_gateways[key] = ModbusGateway(config)
        return self._modbus_gateways[key]

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
        for gateway in self._modbus_gateways.values():
            gateway.close()
        self._modbus_gateways.clear()


def _profile_kind(placed: PlacedDevice) -> str:
    """The device kind the device's profile (register map, topic map) is written for."""
    device = placed.device
    if device.modbus is not None:
        from collectors.modbus.profile import load_modbus_profile

        return load_modbus_profile(device.profile).kind
    if device.mqtt is not None:
        from collectors.mqtt.topicmap import load_topic_map

        return load_topic_map(device.profile).kind
    return load_snmp_profile(device.profile).kind


def check_profiles(
    devices: list[PlacedDevice], origins: Mapping[str, str] | None = None
) -> list[str]:
    """Problems with the profiles the devices name (for `dcim validate`).

    `origins` (device id -> `line N` of its entry) puts where it is in each message.
    """
    problems = []
    for placed in devices:
        device = placed.device
        origin = (origins or {}).get(device.id)
        suffix = f" ({origin})" if origin is not None else ""
        try:
            kind = _profile_kind(placed)
        except ProfileError as exc:
            problems.append(f"device {device.id}: profile: {exc}{suffix}")
            continue
        if kind != device.kind.value:
            problems.append(
                f"device {device.id}: profile {device.profile} is for kind {kind}, "
                f"device is {device.kind.value}{suffix}"
            )
    return problems


def build_streams(config: Config) -> list[StreamCollector]:
    """Collectors that receive pushed data (SNMP traps, MQTT) for this inventory."""
    streams: list[StreamCollector] = []
    devices = list(iter_devices(config))
    if config.traps is not None:
        from collectors.snmp.traps import TrapReceiver

        streams.append(TrapReceiver(config.traps, devices))
    if config.mqtt is not None and any(p.device.mqtt for p in devices):
        from collectors.mqtt.collector import MqttCollector

        zones = {site.id: site.timezone for site in config.sites}
        streams.append(MqttCollector(config.mqtt, devices, timezones=zones))
    return streams


def _profile_of(placed: PlacedDevice) -> object | None:
    """The device's loaded profile (register map, topic map, SNMP profile); None if broken."""
    device = placed.device
    try:
        if device.modbus is not None:
            from collectors.modbus.profile import load_modbus_profile

            return load_modbus_profile(device.profile)
        if device.mqtt is not None:
            from collectors.mqtt.topicmap import load_topic_map

            return load_topic_map(device.profile)
        return load_snmp_profile(device.profile)
    except ProfileError:
        return None  # `dcim validate` reports it


def _metric_entries(node: object) -> Iterator[object]:
    """Every part of a profile that maps a value to a metric (fields, columns, variants...)."""
    if isinstance(node, BaseModel):
        if isinstance(getattr(node, "metric", None), str):
            yield node
        for name in type(node).model_fields:
            yield from _metric_entries(getattr(node, name))
    elif isinstance(node, list | tuple):
        for item in node:
            yield from _metric_entries(item)
    elif isinstance(node, dict):
        for item in node.values():
            yield from _metric_entries(item)


def profile_metrics(placed: PlacedDevice) -> frozenset[str]:
    """Metrics the device's profile can report."""
    return frozenset(str(getattr(e, "metric", "")) for e in _metric_entries(_profile_of(placed)))


def profile_tag_values(placed: PlacedDevice, metric: str, tag: str) -> frozenset[str]:
    """Values of `tag` the device's profile gives readings of `metric` (a meter's channels)."""
    return frozenset(
        str(tags[tag])
        for entry in _metric_entries(_profile_of(placed))
        if getattr(entry, "metric", None) == metric
        and isinstance(tags := getattr(entry, "tags", None), dict)
        and tag in tags
    )
