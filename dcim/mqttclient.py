"""MQTT connections as the monitor makes them: broker URLs, client ids, TLS and auth.

Every MQTT user (the MQTT collector, the MQTT alert channel, the shard
heartbeat) connects through `make_client`, so TLS, credentials, the protocol
version and the session settings mean the same everywhere. aiomqtt (paho-mqtt
underneath) is imported only when a client is made: the core stays importable
without it.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from dcim.errors import ConfigError
from dcim.inventory import MqttBrokerConfig

if TYPE_CHECKING:
    import aiomqtt


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool


def parse_broker_url(url: str) -> BrokerAddress:
    """`mqtt://host[:1883]` or `mqtts://host[:8883]`; ConfigError names what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError(url, ["broker url must look like mqtt://host:port or mqtts://host:port"])
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ConfigError(url, ["broker url has an invalid port"]) from None
    return BrokerAddress(unquote(parts.hostname), port, tls)


def default_client_id() -> str:
    """Stable across restarts on one host, so the broker finds our session again."""
    return f"dcim-{socket.gethostname()}"[:64]


def make_client(
    broker: MqttBrokerConfig,
    *,
    client_id: str,
    persistent: bool = True,
    will: aiomqtt.Will | None = None,
) -> aiomqtt.Client:
    """An aiomqtt client for the broker config (not yet connected)."""
    import aiomqtt
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from dcim.tls import client_context

    address = parse_broker_url(broker.url)
    v5 = broker.protocol == "5"
    properties: Properties | None = None
    if v5:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = broker.session_expiry_s if persistent else 0
    use_tls = address.tls or broker.tls is not None
    password = broker.password.get_secret_value() if broker.password else None
    return aiomqtt.Client(
        address.host,
        address.port,
        username=broker.username,
        password=password,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        # 3.1.1: clean_session; 5: clean_start plus the session expiry above
        clean_session=None if v5 else not persistent,
        clean_start=(not persistent) if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
        properties=properties,
        keepalive=broker.keepalive_s,
        will=will,
        tls_context=client_context(broker.tls) if use_tls else None,
        tls_insecure=bool(broker.tls and broker.tls.insecure_skip_verify) if use_tls else None,
        timeout=10.0,
    )
