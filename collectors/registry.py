"""The protocols the monitor speaks, as data: protocol name -> its adapter.

A device names its protocol by its inventory section (`snmp:`, `modbus:`,
`mqtt:`); `PROTOCOLS` maps that name to what the monitor needs of it: how to
load the device's profile (whose `kind` must be the device's), and for a
polled protocol how to build its collector. Pushed data (MQTT messages, SNMP
traps) arrives through receivers (`RECEIVERS`), one per inventory. A new
protocol is one adapter in `PROTOCOLS` (and a receiver if it pushes).
Protocol libraries are imported only when a device needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel

from collectors.snmp.client import SnmpHost
from collectors.snmp.collector import SnmpCollector
from collectors.snmp.plan import SnmpPlan, plan_profile
from collectors.snmp.profile import load_snmp_profile
from collectors.snmp.security import WeakSecurityReporter
from dcim.collector import Collector, StreamCollector
from dcim.errors import ConfigError, ProfileError
from dcim.inventory import Config, DeviceConfig, ModbusConfig, PlacedDevice, iter_devices

if TYPE_CHECKING:
    from collectors.modbus.client import ModbusGateway
    from collectors.modbus.plan import ModbusPlan


class Profile(Protocol):
    """What every protocol's profile (SNMP profile, register map, topic map) has."""

    @property
    def kind(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ProtocolAdapter:
    """One protocol: its profile loader, and (polled protocols) its collector builder."""

    name: str
    load_profile: Callable[[str], Profile]
    #: None for a protocol whose devices push (their receiver has them).
    build: Callable[[CollectorFactory, PlacedDevice], Collector] | None = None


def _load_snmp(name: str) -> Profile:
    return load_snmp_profile(name)


def _load_modbus(name: str) -> Profile:
    from collectors.modbus.profile import load_modbus_profile

    return load_modbus_profile(name)


def _load_topic_map(name: str) -> Profile:
    from collectors.mqtt.topicmap import load_topic_map

    return load_topic_map(name)


def _build_snmp(factory: CollectorFactory, placed: PlacedDevice) -> Collector:
    snmp = placed.device.snmp
    assert snmp is not None  # the adapter is chosen by the section
    return SnmpCollector(placed, factory.snmp_plan(placed.device.profile), factory.snmp_host, snmp)


def _build_modbus(factory: CollectorFactory, placed: PlacedDevice) -> Collector:
    from collectors.modbus.collector import ModbusCollector

    modbus = placed.device.modbus
    assert modbus is not None
    plan = factory.modbus_plan(placed.device.profile, modbus.max_gap)
    return ModbusCollector(placed, plan, factory.modbus_gateway(modbus), modbus)


#: Protocol name (the device's inventory section) -> adapter.
PROTOCOLS: Mapping[str, ProtocolAdapter] = MappingProxyType(
    {
        "snmp": ProtocolAdapter("snmp", _load_snmp, _build_snmp),
        "modbus": ProtocolAdapter("modbus", _load_modbus, _build_modbus),
        "mqtt": ProtocolAdapter("mqtt", _load_topic_map),
    }
)


def protocol_of(device: DeviceConfig) -> ProtocolAdapter:
    """The adapter of the device's protocol section."""
    for name, adapter in PROTOCOLS.items():
        if getattr(device, name, None) is not None:
            return adapter
    raise ConfigError(device.id, ["no supported protocol section"])


def _trap_receiver(config: Config, devices: list[PlacedDevice]) -> StreamCollector | None:
    if config.traps is None:
        return None
    from collectors.snmp.traps import TrapReceiver

    return TrapReceiver(config.traps, devices)


def _mqtt_receiver(config: Config, devices: list[PlacedDevice]) -> StreamCollector | None:
    if config.mqtt is None or not any(p.device.mqtt for p in devices):
        return None
    from collectors.mqtt.collector import MqttCollector

    zones = {site.id: site.timezone for site in config.sites}
    return MqttCollector(config.mqtt, devices, timezones=zones)


#: Receivers of pushed data, each built when the inventory needs it.
RECEIVERS: tuple[Callable[[Config, list[PlacedDevice]], StreamCollector | None], ...] = (
    _trap_receiver,
    _mqtt_receiver,
)


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
        adapter = protocol_of(device)
        if adapter.build is None:
            raise ConfigError(device.id, [f"{adapter.name} devices push; nothing polls them"])
        if device.snmp is not None:
            self._weak_security.report(device.id, device.snmp)
        return adapter.build(self, placed)

    def streams(self, config: Config) -> list[StreamCollector]:
        """Collectors that receive pushed data (SNMP traps, MQTT) for this inventory."""
        return build_streams(config)

    @property
    def snmp_host(self) -> SnmpHost:
        """The SNMP client every SNMP device of this factory shares (made on first use)."""
        if self._snmp_host is None:
            self._snmp_host = SnmpHost(self._max_in_flight)
        return self._snmp_host

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
            kind = protocol_of(device).load_profile(device.profile).kind
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
    devices = list(iter_devices(config))
    built = (receiver(config, devices) for receiver in RECEIVERS)
    return [stream for stream in built if stream is not None]


def _profile_of(placed: PlacedDevice) -> object | None:
    """The device's loaded profile (register map, topic map, SNMP profile); None if broken."""
    device = placed.device
    try:
        return protocol_of(device).load_profile(device.profile)
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
