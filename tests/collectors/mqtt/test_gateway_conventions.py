"""The shipped topic maps of sensor gateways, each against a real Mosquitto broker.

Payloads are the ones each project documents (Tasmota sensor pages, Shelly Gen1/Gen2
API, Zigbee2MQTT device pages, Home Assistant/ESPHome discovery, the Sparkplug 3.0
payload structure), published to a broker started for the test and read by the
production MqttCollector with the shipped map. Each test also sends what a broken
or confused sender does, and checks it is refused with the device and field named
while the good values around it still count.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from collectors.mqtt.collector import MqttCollector
from collectors.mqtt.sparkplug import dcim_sparkplug_b_pb2 as pb
from collectors.mqtt.sparkplug.session import metric_value
from collectors.shipped import use_profile_paths
from dcim.cli.profile import lint_file
from dcim.inventory import Config, iter_devices, parse_config
from dcim.reading import Reading
from tests.support.mosquitto_server import Mosquitto
from tests.support.mqtt_helpers import Collected, publish, running

#: The worked example of docs/profiles.md, as a site would write it.
ACME_GATEWAY = """\
name: acme-gateway
kind: sensor
description: ACME probe gateway, one JSON message per probe
source: ACME gateway manual rev 3, "MQTT output"
topics:
  - pattern: "acme/{mqtt_name}/probe/{probe}"
    reading_tags: [probe]
    payload:
      format: json
      timestamp: {path: ts}
      fields:
        - {path: t, metric: sensor.temp_c, scale: 0.1, unit_path: unit,
           units: {C: degC, F: degF}, valid_range: [-40, 125]}
        - {path: rh, metric: sensor.humidity_pct, scale: 0.1, valid_range: [0, 100]}
  - pattern: "acme/{mqtt_name}/state"
    availability: {path: status, online: [up], offline: [down]}
"""


def hall(url: str, devices: Sequence[str], timezone: str = "UTC") -> Config:
    """A one-room site holding `devices` (inventory YAML flow mappings)."""
    lines = "\n".join(f"          - {d}" for d in devices)
    text = f"""
sites:
  - id: s1
    timezone: {timezone}
    rooms:
      - id: r1
        devices:
{lines}
mqtt: {{url: "{url}", client_id: "dcim-test-{uuid.uuid4().hex[:8]}", reconnect_min_s: 0.05}}
"""
    return parse_config(text)


def collector(config: Config) -> MqttCollector:
    assert config.mqtt is not None
    zones = {site.id: site.timezone for site in config.sites}
    return MqttCollector(
        config.mqtt, list(iter_devices(config)), stale_check_s=0.05, timezones=zones
    )


def values(got: Collected, device: str, metric: str, **tags: str) -> list[object]:
    return [
        r.value for r in got.of(device, metric) if all(r.tags.get(k) == v for k, v in tags.items())
    ]


def one(got: Collected, device: str, metric: str, **tags: str) -> Reading:
    found = [r for r in got.of(device, metric) if all(r.tags.get(k) == v for k, v in tags.items())]
    assert len(found) == 1, found
    return found[0]


def dropped(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]


async def test_tasmota_sensor_telemetry_and_lwt(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    # Asia/Ho_Chi_Minh is UTC+7 without DST: Tasmota's offset-less Time is local there
    config = hall(
        mosquitto.url,
        ["{id: th-a01, kind: sensor, profile: tasmota, mqtt: {name: tasmota_C26D46}}"],
        timezone="Asia/Ho_Chi_Minh",
    )
    mqtt = collector(config)
    got = Collected()
    with caplog.at_level(logging.WARNING, logger="collectors.mqtt"):
        async with running(mqtt, got):
            await publish(
                mosquitto.url,
                [
                    ("tele/tasmota_C26D46/LWT", b"Online"),
                    # the AM2301 page's example telemetry
                    (
                        "tele/tasmota_C26D46/SENSOR",
                        {
                            "Time": "2019-01-01T00:00:00",
                            "AM2301": {"Temperature": 24.6, "Humidity": 58.2},
                            "TempUnit": "C",
                        },
                    ),
                    # two DS18B20 on one bus, Fahrenheit (SetOption8 1), an ESP32 board
                    (
                        "tele/tasmota_C26D46/SENSOR",
                        {
                            "Time": "2019-01-01T00:05:00+01:00",  # SetOption52: with offset
                            "DS18B20-1": {"Id": "01144A0CB2AA", "Temperature": 71.6},
                            "DS18B20-2": {"Id": "0114537C6DAA", "Temperature": 73.4},
                            "ESP32": {"Temperature": 113.0},
                            "TempUnit": "F",
                        },
                    ),
                    # a probe error and an unknown unit: refused, the humidity still counts
                    (
                        "tele/tasmota_C26D46/SENSOR",
                        {"SHT3X": {"Temperature": "nan", "Humidity": 51.0}, "TempUnit": "C"},
                    ),
                    ("tele/tasmota_C26D46/SENSOR", {"SHT3X": {"Temperature": 20}, "TempUnit": "K"}),
                    ("tele/tasmota_C26D46/LWT", b"Offline"),
                ],
            )
            await got.wait_for(
                lambda rs: values(got, "th-a01", "device.up") == [True, False], "LWT offline"
            )
    am2301 = one(got, "th-a01", "sensor.temp_c", sensor="AM2301")
    assert am2301.value == 24.6
    assert am2301.unit == "degC"
    local = datetime(2019, 1, 1, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    assert am2301.ts_ns == int(local.timestamp()) * 10**9
    assert values(got, "th-a01", "sensor.humidity_pct", sensor="AM2301") == [58.2]
    probe1 = one(got, "th-a01", "sensor.temp_c", sensor="DS18B20-1")
    assert probe1.value == pytest.approx(22.0)
    assert probe1.ts_ns == int(datetime(2018, 12, 31, 23, 5, tzinfo=UTC).timestamp()) * 10**9
    assert values(got, "th-a01", "sensor.temp_c", sensor="DS18B20-2") == [pytest.approx(23.0)]
    # the board's own chip is its health, not a room temperature
    assert values(got, "th-a01", "sensor.device_temp_c") == [pytest.approx(45.0)]
    assert not values(got, "th-a01", "sensor.temp_c", sensor="ESP32")
    assert values(got, "th-a01", "sensor.humidity_pct", sensor="SHT3X") == [51.0]
    assert not values(got, "th-a01", "sensor.temp_c", sensor="SHT3X")
    reasons = {reason for _, reason in mqtt.errors_by_topic}
    assert reasons == {"not_finite", "unknown_unit"}
    messages = dropped(caplog)
    assert any(
        "th-a01" in m and "field SHT3X.Temperature" in m and "not_finite" in m for m in messages
    )
    assert any("th-a01" in m and "'k' is not one of ['c', 'f']" in m for m in messages)


async def test_shelly_gen2_rpc_notifications_gen1_topics_and_online(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    config = hall(
        mosquitto.url,
        [
            "{id: ht-a02, kind: sensor, profile: shelly-gen2, mqtt: {name: shellyplusht-08b61fcb7f3c}}",
            "{id: pdu-feed-a02, kind: meter, profile: shelly-gen2-pm, mqtt: {name: shellypro1pm-30c6f7828a1c}}",
            "{id: flood-a03, kind: sensor, profile: shelly-gen1, mqtt: {name: shellyflood-7AB4C1}}",
        ],
    )
    mqtt = collector(config)
    got = Collected()
    ht, pm = "shellyplusht-08b61fcb7f3c", "shellypro1pm-30c6f7828a1c"
    with caplog.at_level(logging.WARNING, logger="collectors.mqtt"):
        async with running(mqtt, got):
            await publish(
                mosquitto.url,
                [
                    (f"{ht}/online", b"true"),
                    # the Notifications page's NotifyStatus example
                    (
                        f"{ht}/events/rpc",
                        {
                            "src": ht,
                            "dst": f"{ht}/events",
                            "method": "NotifyStatus",
                            "params": {
                                "ts": 1631266595.44,
                                "temperature:0": {"id": 0, "tC": 21.3, "tF": 70.3},
                            },
                        },
                    ),
                    # a wake-up NotifyFullStatus of a Plus H&T (abridged)
                    (
                        f"{ht}/events/rpc",
                        {
                            "src": ht,
                            "method": "NotifyFullStatus",
                            "params": {
                                "ts": 1680962879.62,
                                "devicepower:0": {"id": 0, "battery": {"V": 5.3, "percent": 87}},
                                "humidity:0": {"id": 0, "rh": 42.2},
                                "temperature:0": {"id": 0, "tC": 19.8, "tF": 67.6},
                                "sys": {"uptime": 3},
                            },
                        },
                    ),
                    # NotifyEvent carries no status: nothing to read, nothing wrong
                    (
                        f"{ht}/events/rpc",
                        {"method": "NotifyEvent", "params": {"ts": 1680962880.0, "events": []}},
                    ),
                    # a corrupted value: refused by name
                    (
                        f"{ht}/events/rpc",
                        {"method": "NotifyStatus", "params": {"humidity:0": {"rh": "wet"}}},
                    ),
                    (
                        f"{pm}/events/rpc",
                        {
                            "method": "NotifyStatus",
                            "params": {
                                "ts": 1694013515.21,
                                "switch:0": {
                                    "id": 0,
                                    "apower": 52.3,
                                    "voltage": 231.2,
                                    "current": 0.246,
                                    "aenergy": {"total": 1523.456},
                                },
                            },
                        },
                    ),
                    ("shellies/shellyflood-7AB4C1/online", b"true"),
                    ("shellies/shellyflood-7AB4C1/sensor/temperature", b"18.50"),
                    ("shellies/shellyflood-7AB4C1/sensor/flood", b"true"),
                    ("shellies/shellyflood-7AB4C1/sensor/battery", b"97"),
                    (f"{ht}/online", b"false"),
                ],
            )
            await got.wait_for(
                lambda rs: values(got, "ht-a02", "device.up")[-1:] == [False], "ht offline"
            )
    temps = got.of("ht-a02", "sensor.temp_c")
    assert [(r.value, r.tags["channel"]) for r in temps] == [(21.3, "0"), (19.8, "0")]
    assert temps[0].ts_ns == 1631266595440000000
    assert values(got, "ht-a02", "sensor.humidity_pct", channel="0") == [42.2]
    assert values(got, "ht-a02", "sensor.battery_pct", channel="0") == [87.0]
    assert values(got, "ht-a02", "device.up") == [True, False]
    assert values(got, "pdu-feed-a02", "meter.power_w", channel="0") == [52.3]
    assert values(got, "pdu-feed-a02", "meter.voltage_v", channel="0") == [231.2]
    assert values(got, "pdu-feed-a02", "meter.current_a", channel="0") == [0.246]
    assert values(got, "pdu-feed-a02", "meter.energy_kwh", channel="0") == [pytest.approx(1.523456)]
    assert values(got, "flood-a03", "sensor.leak_detected") == [True]
    assert values(got, "flood-a03", "sensor.temp_c") == [18.5]
    assert values(got, "flood-a03", "sensor.battery_pct") == [97.0]
    assert {reason for _, reason in mqtt.errors_by_topic} == {"wrong_type"}
    assert any(
        "ht-a02" in m and "field params.humidity:0.rh" in m and "'wet'" in m
        for m in dropped(caplog)
    )


async def test_zigbee2mqtt_states_and_availability(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    config = hall(
        mosquitto.url,
        [
            "{id: leak-a04, kind: sensor, profile: zigbee2mqtt, mqtt: {name: rack-a04-leak}}",
            "{id: door-a04, kind: sensor, profile: zigbee2mqtt, mqtt: {name: rack-a04-door}}",
            "{id: th-a04, kind: sensor, profile: zigbee2mqtt, mqtt: {name: rack-a04-th}}",
        ],
    )
    mqtt = collector(config)
    got = Collected()
    seen = datetime.fromtimestamp(time.time() - 30, UTC).replace(microsecond=0)
    with caplog.at_level(logging.WARNING, logger="collectors.mqtt"):
        async with running(mqtt, got):
            await publish(
                mosquitto.url,
                [
                    ("zigbee2mqtt/rack-a04-leak/availability", {"state": "online"}),
                    (
                        "zigbee2mqtt/rack-a04-leak",
                        {"battery": 100, "linkquality": 99, "voltage": 3045, "water_leak": False},
                    ),
                    ("zigbee2mqtt/rack-a04-leak", {"battery": 100, "water_leak": True}),
                    # contact true = closed (Zigbee2MQTT's contact expose)
                    ("zigbee2mqtt/rack-a04-door", {"contact": True, "linkquality": 128}),
                    ("zigbee2mqtt/rack-a04-door", {"contact": False, "linkquality": 131}),
                    (
                        "zigbee2mqtt/rack-a04-th",
                        {
                            "temperature": 23.41,
                            "humidity": 47.9,
                            "battery": "91.00",  # older releases sent numbers as text
                            "linkquality": 132,
                            "last_seen": seen.isoformat().replace("+00:00", "Z"),
                        },
                    ),
                    # garbage: a humidity of 180 % and a link quality that is no number
                    ("zigbee2mqtt/rack-a04-th", {"humidity": 180, "linkquality": "good"}),
                    ("zigbee2mqtt/not-in-inventory", {"temperature": 20}),
                    ("zigbee2mqtt/rack-a04-leak/availability", {"state": "offline"}),
                    ("zigbee2mqtt/rack-a04-door/availability", b"offline"),  # legacy payload
                ],
            )
            await got.wait_for(
                lambda rs: values(got, "door-a04", "device.up")[-1:] == [False], "door offline"
            )
    assert values(got, "leak-a04", "sensor.leak_detected") == [False, True]
    assert values(got, "leak-a04", "sensor.link_quality") == [99]
    assert values(got, "leak-a04", "device.up") == [True, False]
    assert values(got, "door-a04", "sensor.door_open") == [False, True]
    reading = one(got, "th-a04", "sensor.temp_c")
    assert reading.value == 23.41
    assert reading.ts_ns == int(seen.timestamp()) * 10**9
    assert values(got, "th-a04", "sensor.humidity_pct") == [47.9]
    assert values(got, "th-a04", "sensor.battery_pct") == [91.0]
    errors = mqtt.errors_by_topic
    assert errors[("zigbee2mqtt/rack-a04-th", "out_of_range")] == 1
    assert errors[("zigbee2mqtt/rack-a04-th", "wrong_type")] == 1
    assert errors[("zigbee2mqtt/not-in-inventory", "unknown_device")] == 1
    messages = dropped(caplog)
    assert any("th-a04" in m and "field humidity" in m and "180" in m for m in messages)
    assert any("th-a04" in m and "field linkquality" in m for m in messages)


async def test_home_assistant_discovery_adds_state_topics_at_run_time(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    config = hall(
        mosquitto.url,
        [
            "{id: esp-a05, kind: sensor, profile: ha-discovery, mqtt: {name: rack-a05}}",
            "{id: ble-a06, kind: sensor, profile: ha-discovery, mqtt: {name: ATC_264902}}",
        ],
    )
    # ESPHome announces its entities with abbreviated keys, retained, at every connect;
    # its states are retained too, so a monitor starting later finds both
    device = {"ids": "a4cf12e3b0c4", "name": "rack-a05", "sw": "esphome v2024.6.1"}
    retained: list[tuple[str, bytes | str | dict[str, object]]] = [
        (
            "homeassistant/sensor/rack-a05/inlet_temperature/config",
            {
                "dev_cla": "temperature",
                "unit_of_meas": "°C",
                "stat_cla": "measurement",
                "name": "Inlet Temperature",
                "stat_t": "rack-a05/sensor/inlet_temperature/state",
                "avty_t": "rack-a05/status",
                "uniq_id": "ESPsensorinlet_temperature",
                "dev": device,
            },
        ),
        (
            "homeassistant/binary_sensor/rack-a05/floor_leak/config",
            {
                "dev_cla": "moisture",
                "name": "Floor Leak",
                "stat_t": "rack-a05/binary_sensor/floor_leak/state",
                "avty_t": "rack-a05/status",
                "dev": device,
            },
        ),
        (  # an entity the map does not read
            "homeassistant/sensor/rack-a05/uptime/config",
            {"name": "Uptime", "stat_t": "rack-a05/sensor/uptime/state", "unit_of_meas": "s"},
        ),
        (  # a template beyond the simple forms
            "homeassistant/sensor/rack-a05/outlet_temperature/config",
            {
                "dev_cla": "temperature",
                "unit_of_meas": "°F",
                "stat_t": "rack-a05/sensor/outlet_temperature/state",
                "val_tpl": "{{ value | float * 1.8 + 32 }}",
            },
        ),
        (  # an availability "topic" that would subscribe the monitor to the whole broker
            "homeassistant/sensor/rack-a05/sneaky/config",
            {"dev_cla": "temperature", "stat_t": "rack-a05/sneaky", "avty_t": "#"},
        ),
        # discovery without a node id: the device by its identifiers; two entities on
        # one JSON state topic
        (
            "homeassistant/sensor/ATC_264902_temp/config",
            {
                "device_class": "temperature",
                "state_topic": "tele/tasmota_ble/ATC264902",
                "unit_of_meas": "°C",
                "value_template": "{{ value_json.Temperature}}",
                "device": {"name": "ATC_264902", "identifiers": ["ATC_264902"]},
            },
        ),
        (
            "homeassistant/sensor/ATC_264902_humidity/config",
            {
                "device_class": "humidity",
                "state_topic": "tele/tasmota_ble/ATC264902",
                "unit_of_meas": "%",
                "value_template": "{{ value_json['Humidity'] | round(1) }}",
                "device": {"name": "ATC_264902", "identifiers": ["ATC_264902"]},
            },
        ),
        ("rack-a05/status", b"online"),
        ("rack-a05/sensor/inlet_temperature/state", b"23.4"),
        ("rack-a05/binary_sensor/floor_leak/state", b"OFF"),
    ]
    await publish(mosquitto.url, retained, retain=True)
    mqtt = collector(config)
    got = Collected()
    with caplog.at_level(logging.WARNING, logger="collectors.mqtt"):
        async with running(mqtt, got):
            await got.wait_for(
                lambda rs: bool(values(got, "esp-a05", "sensor.leak_detected")),
                "retained states of discovered entities",
            )
            await publish(
                mosquitto.url,
                [
                    ("tele/tasmota_ble/ATC264902", {"Temperature": 21.7, "Humidity": 48.25}),
                    ("rack-a05/binary_sensor/floor_leak/state", b"ON"),
                    ("rack-a05/sensor/inlet_temperature/state", b"unavailable"),
                    ("rack-a05/status", b"offline"),
                ],
            )
            await got.wait_for(
                lambda rs: values(got, "esp-a05", "device.up")[-1:] == [False], "offline"
            )
            # the entity is retracted: its state topic no longer reaches the device
            await publish(
                mosquitto.url,
                [("homeassistant/binary_sensor/rack-a05/floor_leak/config", b"")],
                retain=True,
            )
            await publish(
                mosquitto.url,
                [
                    ("rack-a05/binary_sensor/floor_leak/state", b"OFF"),
                    ("rack-a05/sensor/inlet_temperature/state", b"24.0"),
                ],
            )
            await got.wait_for(
                lambda rs: values(got, "esp-a05", "sensor.temp_c")[-1:] == [24.0], "after retract"
            )
    inlet = values(got, "esp-a05", "sensor.temp_c", sensor="inlet_temperature")
    assert inlet == [23.4, 24.0]
    assert values(got, "esp-a05", "sensor.leak_detected", sensor="floor_leak") == [False, True]
    assert values(got, "esp-a05", "device.up") == [True, False, True]
    assert values(got, "ble-a06", "sensor.temp_c", sensor="ATC_264902_temp") == [21.7]
    assert values(got, "ble-a06", "sensor.humidity_pct", sensor="ATC_264902_humidity") == [48.25]
    assert not got.of("esp-a05", "sensor.uptime_s")
    errors = {reason for _, reason in mqtt.errors_by_topic}
    assert errors == {"unsupported_template", "wrong_type", "bad_config"}
    assert "rack-a05/binary_sensor/floor_leak/state" in mqtt.subscriber.filters
    assert "#" not in mqtt.subscriber.filters
    assert "rack-a05/sneaky" not in mqtt.subscriber.filters
    messages = dropped(caplog)
    assert any(
        "esp-a05" in m and "field outlet_temperature" in m and "value_template" in m
        for m in messages
    )
    assert any("esp-a05" in m and "'unavailable'" in m for m in messages)
    assert any("field sneaky" in m and "'#' is a wildcard filter" in m for m in messages)


def _metric(
    name: str | None,
    datatype: int,
    *,
    alias: int | None = None,
    ts_ms: int | None = None,
    **value: object,
) -> pb.Payload.Metric:
    metric = pb.Payload.Metric(datatype=datatype, **value)  # type: ignore[arg-type]
    if name is not None:
        metric.name = name
    if alias is not None:
        metric.alias = alias
    if ts_ms is not None:
        metric.timestamp = ts_ms
    return metric


def _payload(seq: int | None, metrics: Sequence[pb.Payload.Metric], ts_ms: int) -> bytes:
    payload = pb.Payload(timestamp=ts_ms, metrics=list(metrics))
    if seq is not None:
        payload.seq = seq
    return payload.SerializeToString()


async def test_sparkplug_b_births_data_by_alias_and_deaths(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    config = hall(
        mosquitto.url,
        [
            "{id: edge-7, kind: sensor, profile: sparkplug-b, mqtt: {name: Hall-A/edge-7}}",
            "{id: th-12, kind: sensor, profile: sparkplug-b, mqtt: {name: Hall-A/edge-7/th-12}}",
        ],
    )
    mqtt = collector(config)
    got = Collected()
    now_ms = int(time.time() * 1000)
    t0 = now_ms - 60_000
    node, dev = "spBv1.0/Hall-A/{}/edge-7", "spBv1.0/Hall-A/{}/edge-7/th-12"
    # the specification's shapes: NBIRTH with bdSeq and Node Control/Rebirth, seq 0;
    # DBIRTH names each metric with its alias and type; DDATA by alias only
    nbirth = _payload(
        0,
        [
            _metric("bdSeq", pb.Int64, long_value=0, ts_ms=t0),
            _metric("Node Control/Rebirth", pb.Boolean, boolean_value=False, ts_ms=t0),
            _metric("Cabinet/Temperature", pb.Float, alias=1, float_value=27.5, ts_ms=t0),
        ],
        t0,
    )
    dbirth = _payload(
        1,
        [
            _metric("Inlet/Temperature", pb.Float, alias=10, float_value=22.5, ts_ms=t0),
            _metric("Outlet/Temperature", pb.Int16, alias=11, int_value=31, ts_ms=t0),
            _metric("Humidity", pb.Double, alias=12, double_value=45.25, ts_ms=t0),
            _metric("Leak", pb.Boolean, alias=13, boolean_value=False, ts_ms=t0),
            _metric("Sensor Status", pb.Int8, alias=14, int_value=0xFFFFFFFD, ts_ms=t0),
        ],
        t0,
    )
    ddata = _payload(
        2,
        [
            _metric(None, 0, alias=10, float_value=23.1, ts_ms=t0 + 1000),
            # Int16 -5 as two's complement in the uint32 field
            _metric(None, 0, alias=11, int_value=0xFFFFFFFB, ts_ms=t0 + 1000),
            _metric(None, 0, alias=13, boolean_value=True),  # no metric time: the payload's
            _metric(None, 0, alias=99, float_value=1.0),  # no BIRTH named it
            _metric(None, 0, alias=12, is_null=True),  # null: no value, no error
        ],
        t0 + 2000,
    )
    gap = _payload(7, [_metric(None, 0, alias=12, double_value=300.0)], t0 + 3000)
    stale_death = _payload(None, [_metric("bdSeq", pb.Int64, long_value=41)], t0 + 4000)
    death = _payload(None, [_metric("bdSeq", pb.Int64, long_value=0)], t0 + 5000)
    with caplog.at_level(logging.WARNING, logger="collectors.mqtt"):
        async with running(mqtt, got):
            await publish(
                mosquitto.url,
                [
                    (node.format("NBIRTH"), nbirth),
                    (dev.format("DBIRTH"), dbirth),
                    (dev.format("DDATA"), ddata),
                    (dev.format("DDATA"), gap),
                    (node.format("NDATA"), b"\xff\x00garbage"),
                    ("spBv1.0/Hall-A/NBIRTH/edge-99", nbirth),  # not in the inventory
                    ("spBv1.0/STATE/scada-1", b'{"online": true}'),  # a host's state: not data
                    (node.format("NDEATH"), stale_death),  # an older session's will
                    (node.format("NDEATH"), death),
                ],
            )
            await got.wait_for(
                lambda rs: values(got, "th-12", "device.up")[-1:] == [False], "NDEATH"
            )
    assert values(got, "edge-7", "sensor.temp_c", point="Cabinet") == [27.5]
    inlet = [r for r in got.of("th-12", "sensor.temp_c") if r.tags.get("point") == "Inlet"]
    assert [r.value for r in inlet] == [22.5, 23.1]
    assert [r.ts_ns for r in inlet] == [t0 * 10**6, (t0 + 1000) * 10**6]
    assert values(got, "th-12", "sensor.temp_c", point="Outlet") == [31.0, -5.0]
    assert values(got, "th-12", "sensor.humidity_pct") == [45.25]  # 300 % refused
    leak = got.of("th-12", "sensor.leak_detected")
    assert [r.value for r in leak] == [False, True]
    assert leak[1].ts_ns == (t0 + 2000) * 10**6
    assert values(got, "edge-7", "device.up") == [True, False]
    assert values(got, "th-12", "device.up") == [True, False]
    errors = mqtt.errors_by_topic
    assert errors[(dev.format("DDATA"), "unknown_alias")] == 1
    assert errors[(dev.format("DDATA"), "seq_gap")] == 1
    assert errors[(dev.format("DDATA"), "out_of_range")] == 1
    assert errors[(node.format("NDATA"), "bad_protobuf")] == 1
    assert errors[("spBv1.0/Hall-A/NBIRTH/edge-99", "unknown_device")] == 1
    assert len(errors) == 5
    messages = dropped(caplog)
    assert any("th-12" in m and "field alias 99" in m for m in messages)
    assert any("th-12" in m and "seq 7 after 2" in m for m in messages)
    assert any("th-12" in m and "field Humidity" in m and "300" in m for m in messages)


@pytest.mark.parametrize(
    ("datatype", "stored", "expected"),
    [
        (pb.Int8, 0xFFFFFFFD, -3),  # sign-extended to 32 bits, as Tahu writes it
        (pb.Int8, 0xFD, -3),  # or only the 8 bits
        (pb.Int16, 0x7FFF, 32767),
        (pb.Int32, 0x80000000, -(2**31)),
        (pb.UInt32, 0xFFFFFFFF, 4294967295),
    ],
)
def test_sparkplug_integers_read_from_twos_complement(
    datatype: int, stored: int, expected: int
) -> None:
    metric = pb.Payload.Metric(datatype=datatype, int_value=stored)
    assert metric_value(metric, datatype) == expected
    long_metric = pb.Payload.Metric(datatype=pb.Int64, long_value=2**64 - 7)
    assert metric_value(long_metric, pb.Int64) == -7


@pytest.fixture
def site_profiles(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "site-profiles"
    (root / "mqtt").mkdir(parents=True)
    (root / "mqtt" / "acme-gateway.yaml").write_text(ACME_GATEWAY)
    use_profile_paths([root])
    yield root
    use_profile_paths([])


async def test_the_worked_example_of_the_profile_guide(
    mosquitto: Mosquitto, site_profiles: Path, caplog: pytest.LogCaptureFixture
) -> None:
    report = lint_file(site_profiles / "mqtt" / "acme-gateway.yaml")
    assert not report.problems, report.problems
    config = hall(
        mosquitto.url,
        ["{id: gw-a01, kind: sensor, profile: acme-gateway, mqtt: {name: gw7}}"],
    )
    mqtt, got = collector(config), Collected()
    with caplog.at_level(logging.WARNING, logger="collectors.mqtt"):
        async with running(mqtt, got):
            await publish(
                mosquitto.url,
                [
                    ("acme/gw7/state", {"status": "up"}),
                    (
                        "acme/gw7/probe/2",
                        {"t": 229, "rh": 455, "unit": "C", "ts": "2026-03-01T10:15:00Z"},
                    ),
                    ("acme/gw7/probe/3", {"t": 716, "unit": "F"}),
                    ("acme/gw7/probe/4", {"t": "err", "unit": "C"}),
                    ("acme/gw7/state", {"status": "down"}),
                ],
            )
            await got.wait_for(
                lambda rs: values(got, "gw-a01", "device.up") == [True, False], "state down"
            )
    probe2 = one(got, "gw-a01", "sensor.temp_c", probe="2")
    assert probe2.value == pytest.approx(22.9)
    assert probe2.timestamp.isoformat() == "2026-03-01T10:15:00+00:00"
    assert values(got, "gw-a01", "sensor.humidity_pct", probe="2") == [pytest.approx(45.5)]
    assert values(got, "gw-a01", "sensor.temp_c", probe="3") == [pytest.approx(22.0)]
    assert not values(got, "gw-a01", "sensor.temp_c", probe="4")
    assert any(
        "device gw-a01: topic acme/gw7/probe/4 field t: dropped (wrong_type)" in m
        for m in dropped(caplog)
    )
