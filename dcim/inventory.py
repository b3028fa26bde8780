"""The inventory and run configuration: one YAML file, validated by pydantic.

sites -> rooms -> rows -> racks, with devices at room, row or rack level (a UPS or
CRAC serves a room; PDUs and sensors live in racks). `load_config()` returns a
`Config` or raises `ConfigError` with one message per problem, each naming the
path in the file and its line.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dcim.alerts.config import AlertsConfig
from dcim.alerts.model import AshraeClass
from dcim.configfiles import Origin, Sources, read_sources, relative_to
from dcim.configmodel import Strict
from dcim.coord.config import CoordinationConfig
from dcim.errors import ConfigError
from dcim.reading import TagSet
from dcim.secret import Secret
from dcim.tls import TlsConfig as TlsConfig  # noqa: PLC0414 - re-exported for importers
from dcim.web.config import WebConfig
from dcim.yamlsource import YamlSourceError, format_path, load_yaml_with_lines

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$"
Ident = Annotated[str, Field(pattern=ID_PATTERN)]


class DeviceKind(StrEnum):
    UPS = "ups"
    PDU = "pdu"
    CRAC = "crac"
    SENSOR = "sensor"
    METER = "meter"
    GENERATOR = "generator"
    BATTERY = "battery"


class SnmpVersion(StrEnum):
    V1 = "v1"
    V2C = "v2c"
    V3 = "v3"


class SnmpV3Config(Strict):
    user: str = Field(min_length=1)
    auth_protocol: Literal["none", "md5", "sha", "sha224", "sha256", "sha384", "sha512"] = "sha256"
    auth_key: Secret | None = None
    # aes192/aes256 use net-snmp's key extension; aes192c/aes256c the Cisco one (Blumenthal)
    priv_protocol: Literal[
        "none", "des", "3des", "aes", "aes128", "aes192", "aes256", "aes192c", "aes256c"
    ] = "aes128"
    priv_key: Secret | None = None
    context_name: str = ""

    @model_validator(mode="after")
    def _keys_match_protocols(self) -> SnmpV3Config:
        if self.auth_protocol != "none" and self.auth_key is None:
            msg = f"auth_key is required with auth_protocol {self.auth_protocol}"
            raise ValueError(msg)
        if self.priv_protocol != "none":
            if self.priv_key is None:
                msg = f"priv_key is required with priv_protocol {self.priv_protocol}"
                raise ValueError(msg)
            if self.auth_protocol == "none":
                msg = "privacy needs authentication: set auth_protocol"
                raise ValueError(msg)
        for name in ("auth_key", "priv_key"):
            key = getattr(self, name)
            if key is not None and len(key.get_secret_value()) < 8:
                msg = f"{name} must be at least 8 characters (RFC 3414)"
                raise ValueError(msg)
        return self


class SnmpConfig(Strict):
    host: str = Field(min_length=1)
    port: int = 161
    version: SnmpVersion = SnmpVersion.V2C
    community: Secret | None = None
    v3: SnmpV3Config | None = None
    timeout_s: float = Field(default=2.0, gt=0, le=60)
    retries: int = Field(default=1, ge=0, le=10)
    max_repetitions: int = Field(default=10, ge=1, le=100)

    @field_validator("port")
    @classmethod
    def _port_range(cls, port: int) -> int:
        if not 1 <= port <= 65535:
            msg = "must be 1..65535"
            raise ValueError(msg)
        return port

    @model_validator(mode="after")
    def _credentials_match_version(self) -> SnmpConfig:
        if self.version is SnmpVersion.V3:
            if self.v3 is None:
                msg = "version v3 needs a v3 section (user, auth and priv settings)"
                raise ValueError(msg)
        elif self.community is None:
            msg = f"version {self.version.value} needs a community"
            raise ValueError(msg)
        return self


Port = Annotated[int, Field(ge=1, le=65535)]


class ModbusConfig(Strict):
    """A Modbus device: directly on TCP, or behind a gateway (same host:port, own unit id)."""

    host: str = Field(min_length=1)
    port: Port = 502
    transport: Literal["tcp", "rtu-over-tcp", "tls"] = "tcp"
    unit_id: int = Field(default=1, ge=0, le=255)
    timeout_s: float = Field(default=2.0, gt=0, le=60)
    retries: int = Field(default=1, ge=0, le=10)
    #: Requests a gateway may have in flight at once (most serial gateways: 1).
    max_in_flight: int = Field(default=1, ge=1, le=16)
    #: Unused registers bridged when merging nearby reads into one request.
    max_gap: int = Field(default=8, ge=0, le=124)
    #: Pause after each request, for slow serial lines behind a gateway.
    pause_s: float = Field(default=0.0, ge=0, le=5)
    tls: TlsConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _tls_port(cls, data: Any) -> Any:
        # Modbus/TCP over TLS has its own well-known port
        if isinstance(data, dict) and data.get("transport") == "tls" and "port" not in data:
            return {**data, "port": 802}
        return data

    @model_validator(mode="after")
    def _tls_needs_tls_transport(self) -> ModbusConfig:
        if self.tls is not None and self.transport != "tls":
            msg = f"a tls section needs transport tls, not {self.transport}"
            raise ValueError(msg)
        return self


class MqttDeviceConfig(Strict):
    """An MQTT-publishing device: which topic(s) carry its data.

    `topic` may be omitted when the profile's topic map resolves devices by
    named captures (e.g. `{site}/{room}/{rack}/env` -> the rack's sensor).
    """

    topic: str | None = None
    #: The name the device publishes under, when it is not the device id: Tasmota topic,
    #: Shelly id, Zigbee2MQTT friendly name, ESPHome node name, Sparkplug
    #: `group/edge` (edge node) or `group/edge/device`. Topic maps match it as `{mqtt_name}`.
    name: str | None = Field(default=None, min_length=1)
    #: Retained online/offline (last-will) topic of the device, when the profile has none.
    availability_topic: str | None = None
    #: Seconds without a message before the device counts as silent (device.up=0).
    stale_after_s: float = Field(default=300.0, gt=0)


class MqttBrokerConfig(Strict):
    """The broker MQTT devices publish to (one per monitor; TLS by default in production)."""

    url: str = Field(pattern=r"^mqtts?://")
    protocol: Literal["3.1.1", "5"] = "5"
    client_id: str | None = None
    username: str | None = None
    password: Secret | None = None
    tls: TlsConfig | None = None
    qos: Literal[0, 1] = 1
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    #: First reconnect delay; it doubles per failed attempt up to reconnect_max_s.
    reconnect_min_s: float = Field(default=0.5, gt=0)
    #: How long the broker keeps our session (subscriptions, queued QoS 1 messages)
    #: while the monitor is away; needs a stable client_id.
    session_expiry_s: int = Field(default=86400, ge=0, le=4294967295)

    @model_validator(mode="after")
    def _password_needs_username(self) -> MqttBrokerConfig:
        if self.password is not None and self.username is None:
            msg = "password given without username"
            raise ValueError(msg)
        return self


class SnmpTrapConfig(Strict):
    """The SNMP trap receiver: where to listen, which credentials a trap must carry."""

    #: Device id of readings that belong to no inventory device (unknown senders).
    id: str = Field(default="snmp-trap-receiver", min_length=1)
    #: Address to listen on: no default, so exposing the receiver is a decision (the
    #: management interface's address; 0.0.0.0 or :: for every interface).
    host: str = Field(min_length=1)
    #: 162 is privileged (root or CAP_NET_BIND_SERVICE); 0 picks a free port (tests).
    port: int = Field(default=162, ge=0, le=65535)
    communities: list[Secret] = Field(default_factory=list)
    v3_users: list[SnmpV3Config] = Field(default_factory=list)
    #: Seconds between `device.trap_errors` readings (only counters that changed).
    stats_interval_s: float = Field(default=10.0, gt=0)
    #: Socket receive buffer asked of the kernel: a burst of traps (a power event on a
    #: whole room) arrives faster than it is decoded; the default ~200 KiB dropped a third.
    receive_buffer_kb: int = Field(default=4096, ge=64, le=262144)

    @model_validator(mode="before")
    @classmethod
    def _host_given(cls, data: Any) -> Any:
        if isinstance(data, dict) and "host" not in data:
            msg = (
                "host is required: the address to listen on for traps (the management "
                "interface's, or 0.0.0.0 for every interface)"
            )
            raise ValueError(msg)
        return data


class DeviceConfig(Strict):
    id: Ident
    kind: DeviceKind
    profile: str = Field(min_length=1)
    vendor: str = ""
    model: str = ""
    poll_interval_s: float = Field(default=30.0, ge=0.1, le=86400)
    snmp: SnmpConfig | None = None
    modbus: ModbusConfig | None = None
    mqtt: MqttDeviceConfig | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_protocol(self) -> DeviceConfig:
        given = [name for name in ("snmp", "modbus", "mqtt") if getattr(self, name) is not None]
        if len(given) != 1:
            msg = (
                "a device needs exactly one protocol section (snmp, modbus or mqtt)"
                if not given
                else f"a device takes one protocol section, not {' and '.join(given)}"
            )
            raise ValueError(msg)
        return self


class RackConfig(Strict):
    id: Ident
    devices: list[DeviceConfig] = Field(default_factory=list)


class RowConfig(Strict):
    id: Ident
    racks: list[RackConfig] = Field(default_factory=list)
    devices: list[DeviceConfig] = Field(default_factory=list)


class RoomConfig(Strict):
    id: Ident
    #: ASHRAE TC 9.9 class of the room's IT equipment: the thermal rules judge its inlets
    #: by that class's envelope, the board and dashboards colour them alike (default:
    #: `alerts.ashrae_class`, else A1).
    ashrae_class: AshraeClass | None = None
    rows: list[RowConfig] = Field(default_factory=list)
    devices: list[DeviceConfig] = Field(default_factory=list)


class SiteConfig(Strict):
    id: Ident
    name: str = ""
    #: IANA time zone the board shows this site's times in (e.g. Asia/Ho_Chi_Minh).
    timezone: str = "UTC"
    rooms: list[RoomConfig] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            msg = f"unknown time zone {name!r} (an IANA name such as Asia/Ho_Chi_Minh or UTC)"
            raise ValueError(msg) from None
        return name


class SpoolConfig(Strict):
    dir: Path | None = None
    max_mb: float = Field(default=512.0, gt=0)


class InfluxSinkConfig(Strict):
    type: Literal["influxdb"]
    name: Ident = "influxdb"
    url: str = Field(pattern=r"^https?://")
    api: Literal["v1", "v2"] = "v2"
    database: str | None = None
    retention_policy: str | None = None
    bucket: str | None = None
    org: str | None = None
    username: str | None = None
    password: Secret | None = None
    token: Secret | None = None
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    flush_interval_s: float = Field(default=1.0, gt=0, le=60)
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    spool: SpoolConfig = SpoolConfig()

    @model_validator(mode="after")
    def _api_fields(self) -> InfluxSinkConfig:
        if self.api == "v1" and not self.database:
            msg = "api v1 needs database"
            raise ValueError(msg)
        if self.api == "v2" and not (self.bucket and self.org is not None):
            msg = "api v2 needs bucket and org"
            raise ValueError(msg)
        if self.password is not None and self.username is None:
            msg = "password given without username"
            raise ValueError(msg)
        return self


class FileSinkConfig(Strict):
    type: Literal["file"]
    name: Ident = "file"
    path: Path
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    flush_interval_s: float = Field(default=1.0, gt=0, le=60)


SinkConfig = Annotated[InfluxSinkConfig | FileSinkConfig, Field(discriminator="type")]


class OpsListenerConfig(Strict):
    """The monitor's own HTTP endpoints: /metrics, /-/healthy, /-/ready (read-only, no token).

    Loopback by default: expose it to a Prometheus elsewhere through a reverse proxy
    with TLS, or bind it to a management network on purpose.
    """

    host: str = "127.0.0.1"
    #: Each shard of one file listens on port + I - 1; 0 picks a free port (tests).
    #: (The board's default is 9280, the alert API's 9180: each shard adds I - 1 to them too.)
    port: int = Field(default=9290, ge=0, le=65535)


class HeartbeatConfig(Strict):
    """Shards of one inventory watch each other through the MQTT broker (`mqtt:`).

    Each shard publishes a retained heartbeat every `interval_s` (with a last will,
    so a killed shard is known at once); a peer not heard from for `silent_after_s`
    raises the critical alert `dcim.shard_silent` on every other shard.
    """

    enabled: bool = True
    interval_s: float = Field(default=10.0, gt=0, le=300)
    silent_after_s: float = Field(default=60.0, gt=0, le=3600)
    #: Topic prefix; give each deployment sharing one broker its own.
    topic: str = Field(default="dcim/heartbeat", pattern=r"^[^+#$/][^+#]*[^+#/]$")

    @model_validator(mode="after")
    def _silence_longer_than_beat(self) -> HeartbeatConfig:
        if self.silent_after_s < 2 * self.interval_s:
            msg = "silent_after_s must be at least twice interval_s (one lost beat is no silence)"
            raise ValueError(msg)
        return self


class MonitorConfig(Strict):
    #: Spool, alert state, audit log; relative to the config file when loaded from one.
    state_dir: Path = Path("/var/lib/dcim")
    #: Audit log of operator actions (default: <state_dir>/audit.jsonl).
    audit_file: Path | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    #: /metrics, /-/healthy, /-/ready; null turns the listener off.
    ops: OpsListenerConfig | None = OpsListenerConfig()
    heartbeat: HeartbeatConfig = HeartbeatConfig()
    queue_size: int = Field(default=100_000, ge=100)
    #: Fraction of each poll interval over which device start times are spread.
    jitter: float = Field(default=1.0, ge=0, le=1)
    self_metrics_interval_s: float = Field(default=10.0, ge=1)
    max_in_flight: int = Field(default=100, ge=1, le=1000)


class ProfilesConfig(Strict):
    """Where the site's own profiles are (searched before the shipped ones).

    Each folder holds `snmp/`, `modbus/`, `mqtt/` profiles and an optional
    `vocabulary.yaml` of the site's own metrics. Relative paths are relative to
    the config file.
    """

    paths: list[Path] = Field(default_factory=list)


class Config(Strict):
    monitor: MonitorConfig = MonitorConfig()
    profiles: ProfilesConfig = ProfilesConfig()
    sites: list[SiteConfig] = Field(min_length=1)
    sinks: list[SinkConfig] = Field(default_factory=list)
    mqtt: MqttBrokerConfig | None = None
    traps: SnmpTrapConfig | None = None
    alerts: AlertsConfig | None = None
    #: The NOC board (off unless configured).
    web: WebConfig | None = None
    #: Monitors sharing the rooms through etcd, taking over from each other (dcim.coord).
    coordination: CoordinationConfig | None = None

    @model_validator(mode="after")
    def _someone_can_read_the_board(self) -> Config:
        web = self.web
        if web is None or web.users or web.anonymous_read:
            return self
        if self.alerts is None or self.alerts.api is None:
            msg = (
                "web: nobody could open the board: add users, anonymous_read: true, "
                "or alerts.api.token (its token logs in as an operator)"
            )
            raise ValueError(msg)
        return self

    #: Line of each path of the file this config was read from (empty when built in code).
    _origins: dict[tuple[str | int, ...], Origin] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _unique_ids(self, info: ValidationInfo) -> Config:
        # the file loader checks these itself, naming each line (see parse_config)
        if not (info.context or {}).get("unique_checked"):
            seen: set[str] = set()
            for placed in iter_devices(self):
                if placed.device.id in seen:
                    msg = f"device id {placed.device.id!r} is used twice"
                    raise ValueError(msg)
                seen.add(placed.device.id)
            names = [sink.name for sink in self.sinks]
            if len(names) != len(set(names)):
                msg = "sink names must be unique"
                raise ValueError(msg)
        if self.mqtt is None and any(p.device.mqtt for p in iter_devices(self)):
            msg = "MQTT devices need a top-level mqtt section (broker url)"
            raise ValueError(msg)
        return self

    def origin_of(self, path: tuple[str | int, ...]) -> str | None:
        """Where `path` (or its nearest ancestor) is in the source files: `line N` or
        `conf.d/x.yaml line N`; None for a config built in code."""
        probe = tuple(path)
        while probe:
            if probe in self._origins:
                return str(self._origins[probe])
            probe = probe[:-1]
        return None

    def device_origins(self) -> dict[str, str]:
        """Device id -> where its entry is in the source files (empty when built in code)."""
        if not self._origins:
            return {}
        return {
            device_id: where
            for device_id, path in _device_paths(self.model_dump(include={"sites"})).items()
            if (where := self.origin_of(path)) is not None
        }


@dataclass(frozen=True, slots=True)
class PlacedDevice:
    """A device with where it sits; `tags` is shared by all its readings."""

    device: DeviceConfig
    site: str
    room: str
    row: str
    rack: str
    tags: Mapping[str, str]


def _placed(device: DeviceConfig, site: str, room: str, row: str, rack: str) -> PlacedDevice:
    tags = {
        **device.tags,
        "site": site,
        "room": room,
        "row": row,
        "rack": rack,
        "device": device.id,
        "kind": device.kind.value,
        "vendor": device.vendor,
        "model": device.model,
    }
    # empty location levels (a room-level UPS has no row or rack) are not tags
    clean = {key: value for key, value in tags.items() if value}
    return PlacedDevice(device, site, room, row, rack, TagSet(clean))


def iter_devices(config: Config) -> Iterator[PlacedDevice]:
    """Every device in inventory order, with its location."""
    for site in config.sites:
        for room in site.rooms:
            for device in room.devices:
                yield _placed(device, site.id, room.id, "", "")
            for row in room.rows:
                for device in row.devices:
                    yield _placed(device, site.id, room.id, row.id, "")
                for rack in row.racks:
                    for device in rack.devices:
                        yield _placed(device, site.id, room.id, row.id, rack.id)


# --- loading -----------------------------------------------------------------

_DEVICE_LISTS = re.compile(r"devices$")
_PROTOCOL_SECTIONS = frozenset({"snmp", "modbus", "mqtt"})


def _apply_defaults(data: Any) -> Any:
    """Merge the top-level `defaults` block into every device (device values win)."""
    if not isinstance(data, dict) or "defaults" not in data:
        return data
    data = copy.deepcopy(data)
    defaults = data.pop("defaults") or {}
    if not isinstance(defaults, dict):
        return data

    def merge(device: Any) -> Any:
        if not isinstance(device, dict):
            return device
        merged = dict(device)
        for key, value in defaults.items():
            if key in _PROTOCOL_SECTIONS:
                # protocol defaults go only to devices that speak that protocol
                if isinstance(value, dict) and isinstance(merged.get(key), dict):
                    merged[key] = {**value, **merged[key]}
            elif key not in merged:
                merged[key] = copy.deepcopy(value)
            elif isinstance(value, dict) and isinstance(merged[key], dict):
                merged[key] = {**value, **merged[key]}
        return merged

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if _DEVICE_LISTS.search(str(key)) and isinstance(value, list):
                    node[key] = [merge(item) for item in value]
                else:
                    visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(data)
    return data


def _message(error: Mapping[str, Any]) -> str:
    text = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        text = text.removeprefix(prefix)
    return text


def _problem_path(loc: tuple[Any, ...], data: Any) -> tuple[str | int, ...]:
    """The error's path in the file: without the union tags pydantic inserts.

    A discriminated union member adds its tag (`influxdb`, `webhook`) to the loc,
    and validators add names like `function-after`; neither is in the file.
    """
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(part, str) and part not in (node if isinstance(node, dict) else ()):
            tagged = isinstance(node, dict) and node.get("type") == part
            if tagged or part.startswith("function-") or isinstance(node, list):
                continue  # a tag pydantic added, not a key of the file
        path.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(path)


def _device_paths(data: Any) -> dict[str, tuple[str | int, ...]]:
    """Device id -> its path in the data (first place it appears)."""
    found: dict[str, tuple[str | int, ...]] = {}
    for path, device in _device_entries(data):
        device_id = device.get("id")
        if isinstance(device_id, str):
            found.setdefault(device_id, path)
    return found


def _device_entries(data: Any) -> Iterator[tuple[tuple[str | int, ...], dict[str, Any]]]:
    """(path, mapping) of every device entry in raw config data, in file order."""

    def visit(node: Any, path: tuple[str | int, ...]) -> Iterator[tuple[Any, Any]]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "defaults" and not path:
                    continue
                if _DEVICE_LISTS.search(str(key)) and isinstance(value, list):
                    for index, item in enumerate(value):
                        if isinstance(item, dict):
                            yield (*path, key, index), item
                else:
                    yield from visit(value, (*path, key))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                yield from visit(item, (*path, index))

    yield from visit(data, ())


def _uniqueness_problems(
    data: dict[str, Any], origin_of: Callable[[tuple[str | int, ...]], Origin | None]
) -> list[str]:
    """Device ids and sink names given twice, each at its own line."""

    def at(path: tuple[str | int, ...]) -> str:
        origin = origin_of(path)
        return str(origin) if origin is not None else format_path(path)

    problems = []
    seen: dict[str, tuple[str | int, ...]] = {}
    for path, device in _device_entries(data):
        device_id = device.get("id")
        if not isinstance(device_id, str):
            continue
        if device_id in seen:
            problems.append(
                f"{format_path((*path, 'id'))}: device id {device_id!r} is used twice "
                f"(also at {at((*seen[device_id], 'id'))}) ({at((*path, 'id'))})"
            )
        else:
            seen[device_id] = path
    sinks = data.get("sinks")
    names: dict[str, int] = {}
    for index, sink in enumerate(sinks if isinstance(sinks, list) else []):
        if not isinstance(sink, dict):
            continue
        name = sink.get("name", sink.get("type"))  # the default name is the type
        if not isinstance(name, str):
            continue
        if name in names:
            path = ("sinks", index)
            problems.append(
                f"{format_path(path)}: sink name {name!r} is used twice (also at "
                f"{at(('sinks', names[name]))}) ({at(path)})"
            )
        else:
            names[name] = index
    return problems


def _from_defaults(
    path: tuple[str | int, ...], raw: Any, defaults: Any
) -> tuple[str | int, ...] | None:
    """The `defaults` path an error at `path` comes from, when the device did not set it."""
    if not isinstance(defaults, dict):
        return None
    device_end = None
    for i in range(len(path) - 1):
        if _DEVICE_LISTS.search(str(path[i])) and isinstance(path[i + 1], int):
            device_end = i + 2
    if device_end is None or device_end >= len(path):
        return None
    node: Any = raw
    for part in path:
        present = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        )
        if not present:
            break
        node = node[part]
    else:
        return None  # the device's own value: the error is the device's
    suffix = path[device_end:]
    node = defaults
    for part in suffix:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return ("defaults", *suffix)


def _located(line: int | None, text: str) -> str:
    """A YAML-level problem as the config errors read: the line first for a syntax error
    (there is no path yet), at the end for a problem with a key."""
    if line is None:
        return text
    return f"line {line}: {text}" if text.startswith("invalid YAML") else f"{text} (line {line})"


def parse_config(text: str, source: str = "<config>") -> Config:
    """Validate config text; raise ConfigError listing every problem once, with its line.

    A problem with a value from `defaults:` is reported once, at its line under
    `defaults`, not once per device that inherited it.
    """
    try:
        data, lines = load_yaml_with_lines(text, source)
    except YamlSourceError as exc:
        raise ConfigError(source, [_located(line, text) for line, text in exc.problems]) from None
    origins = {path: Origin(None, line) for path, line in lines.items()}
    return _validate(Sources(data, origins, []), source)


def _validate(sources: Sources, source: str) -> Config:
    data = sources.data
    if not isinstance(data, dict):
        raise ConfigError(source, ["the file must be a mapping with at least `sites`"])
    problems = _uniqueness_problems(data, sources.origin_of)
    merged = _apply_defaults(data)
    try:
        config = Config.model_validate(merged, context={"unique_checked": True})
    except ValidationError as exc:
        for error in exc.errors():
            path = _problem_path(tuple(error["loc"]), merged)
            path = _from_defaults(path, data, data.get("defaults")) or path
            origin = sources.origin_of(path)
            where = format_path(path) or "(top level)"
            suffix = f" ({origin})" if origin is not None else ""
            problem = f"{where}: {_message(error)}{suffix}"
            if problem not in problems:
                problems.append(problem)
        raise ConfigError(source, problems) from None
    if problems:
        raise ConfigError(source, problems)
    config._origins = sources.origins
    return config


def load_config(path: Path | str) -> Config:
    """Read and validate a config file, with the `conf.d/*.yaml` files beside it merged in.

    Relative paths in it (`monitor.state_dir`, `alerts.rule_files`, `profiles.paths`) are
    relative to the file's folder, so the monitor finds them whatever its working directory.
    """
    path = Path(path)
    config = _validate(read_sources(path), str(path))
    update: dict[str, Any] = {
        "monitor": config.monitor.model_copy(
            update={"state_dir": relative_to(path, config.monitor.state_dir)}
        )
    }
    if config.alerts is not None and config.alerts.rule_files:
        files = [relative_to(path, file) for file in config.alerts.rule_files]
        update["alerts"] = config.alerts.model_copy(update={"rule_files": files})
    if any(not p.is_absolute() for p in config.profiles.paths):
        paths = [relative_to(path, p) for p in config.profiles.paths]
        update["profiles"] = ProfilesConfig(paths=paths)
    return config.model_copy(update=update)
