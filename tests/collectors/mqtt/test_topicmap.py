"""Topic patterns, topic-map validation (with line numbers) and device routing."""

from __future__ import annotations

import pytest

from collectors.mqtt.collector import MqttCollector
from collectors.mqtt.pattern import PatternError, TopicPattern
from collectors.mqtt.routing import Miss, Route, Router
from collectors.mqtt.topicmap import available_topic_maps, load_topic_map, parse_topic_map
from dcim.errors import ConfigError, ProfileError
from dcim.inventory import parse_config
from tests.support.mqtt_helpers import devices, inventory


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("{site}/{room}/{rack}/env", "s1/r1/a01/env", {"site": "s1", "room": "r1", "rack": "a01"}),
        ("{site}/{room}/{rack}/env", "s1/r1/a01/env/status", None),
        ("{site}/{room}/{rack}/env", "s1/r1/env", None),
        ("{site}/+/{rack}/#", "s1/x/a01/env/deep", {"site": "s1", "rack": "a01"}),
        ("{site}/+/{rack}/#", "s1/x/a01", {"site": "s1", "rack": "a01"}),
        ("sensors/{device}/t", "sensors//t", None),
        ("plain/topic", "plain/topic", {}),
    ],
)
def test_pattern_matching(pattern: str, topic: str, expected: dict[str, str] | None) -> None:
    assert TopicPattern.parse(pattern).match(topic) == expected


def test_pattern_filter_and_errors() -> None:
    assert TopicPattern.parse("{site}/+/{rack}/env/#").filter == "+/+/+/env/#"
    for bad in ("a/#/b", "a/b{x}/c", "{x}/{x}", "", "a/te+mp"):
        with pytest.raises(PatternError):
            TopicPattern.parse(bad)


def test_shipped_topic_maps_load() -> None:
    names = available_topic_maps()
    assert {"rack-env-json", "rack-smoke-json", "rack-leak-json", "rack-door-json"} <= set(names)
    for name in names:
        assert load_topic_map(name).topics


BAD_MAP = """\
name: broken
kind: sensor
topics:
  - pattern: "{site}/{rack}/env"
    payload:
      format: json
      fields:
        - path: t
          metric: sensor.temperature
        - path: level
          metric: sensor.smoke_level
          enum: {1: smoky}
        - path: f
          metric: sensor.temp_c
          unit: furlongs
  - pattern: "a/#/b"
    availability: {}
  - pattern: "{x}/y"
    match: {z: rack}
    availability: {}
"""


def test_topic_map_errors_name_path_and_line() -> None:
    with pytest.raises(ProfileError) as info:
        parse_topic_map(BAD_MAP, "broken.yaml")
    text = str(info.value)
    assert text.startswith("broken.yaml: ")
    assert (
        "topics[0].payload.fields[0].metric: metric 'sensor.temperature' is not in the vocabulary"
        in text
    )
    assert "(line 9)" in text
    assert "enum values ['smoky'] are not values of sensor.smoke_level" in text
    assert "(line 10)" in text
    assert "no conversion from unit 'furlongs' to 'degC'" in text
    assert "topics[1].pattern: '#' must be the last level" in text
    assert "(line 16)" in text
    assert "['z'] are not captures of '{x}/y'" in text


def test_unit_conversion_and_required_fields_validate() -> None:
    good = parse_topic_map(
        """\
name: f
kind: sensor
topics:
  - pattern: "x/{device}"
    payload:
      format: json
      fields: [{path: t, metric: sensor.temp_c, unit: degF}]
""",
        "f.yaml",
    )
    assert good.topics[0].payload is not None


def test_router_resolves_captures_explicit_topics_and_misses() -> None:
    config = inventory("mqtt://127.0.0.1:1883")
    maps = {name: load_topic_map(name) for name in available_topic_maps()}
    router = Router([d for d in devices(config) if d.device.mqtt], maps)
    assert "+/+/+/env" in router.filters
    assert "old/probe/7/temp" in router.filters
    assert "old/probe/7/lwt" in router.filters
    route = router.route("s1/r1/a02/env")
    assert isinstance(route, Route)
    assert route.device.device.id == "env-a02"
    legacy = router.route("old/probe/7/lwt")
    assert isinstance(legacy, Route)
    assert legacy.device.device.id == "legacy"
    assert legacy.handler.decoder is None
    unknown = router.route("s1/r1/a99/env")
    assert isinstance(unknown, Miss)
    assert unknown.reason == "unknown_device"
    # the legacy device has an explicit topic, so the captured one does not reach it
    assert isinstance(router.route("sensors/legacy/temperature"), Miss)
    assert isinstance(router.route("sensors/t1/temperature"), Route)


@pytest.mark.parametrize(
    ("sites", "error"),
    [
        pytest.param(
            """
  - id: s1
    rooms:
      - id: r1
        rows:
          - id: row1
            racks:
              - id: a01
                devices:
                  - {id: env-1, kind: sensor, profile: rack-env-json, mqtt: {}}
                  - {id: env-2, kind: sensor, profile: rack-env-json, mqtt: {}}
""",
            "resolves to both env-1 and env-2",
            id="two devices on one topic",
        ),
        pytest.param(
            """
  - id: s1
    rooms:
      - id: r1
        devices:
          - {id: env-room, kind: sensor, profile: rack-env-json, mqtt: {}}
""",
            r"set mqtt\.topic",
            id="a device without the captured tag needs an explicit topic",
        ),
        pytest.param(
            """
  - id: s1
    rooms:
      - id: r1
        devices:
          - {id: u1, kind: ups, profile: plain-sensor, mqtt: {topic: u/1}}
""",
            "topic map plain-sensor is for kind sensor",
            id="a topic map of another kind",
        ),
    ],
)
def test_the_collector_refuses_devices_it_cannot_route(sites: str, error: str) -> None:
    config = parse_config(f"sites:{sites}mqtt: {{url: 'mqtt://127.0.0.1:1883'}}\n")
    assert config.mqtt is not None
    with pytest.raises(ConfigError, match=error):
        MqttCollector(config.mqtt, devices(config))


GATEWAY_MISTAKES = """\
name: mistakes
kind: sensor
topics:
  - pattern: "tele/{mqtt_name}/SENSOR"
    payload:
      format: json
      fields:
        - {path: "*.Temperature", metric: sensor.temp_c}
        - {path: "*.x.*", metric: sensor.temp_c, key_tag: a}
        - {path: t, metric: sensor.temp_c, unit_path: TempUnit}
        - {path: "*.T", key_tag: s, metric: sensor.temp_c, unit_path: U, units: {C: degC, R: rankine}}
  - pattern: "spBv1.0/#"
    sparkplug: {metrics: [{name: "a/*/b/*", key_tag: p, metric: sensor.temp_c}]}
  - pattern: "sp/#"
    sparkplug: {metrics: [{name: "T", metric: sensor.temp_c}]}
  - pattern: "homeassistant/{component}/{object_id}/config"
    discovery:
      entities:
        - {component: sensor, device_class: temperature, metric: sensor.temp_c}
        - {component: sensor, device_class: temperature, metric: sensor.dew_point_c}
"""


def test_gateway_map_mistakes_are_named_with_their_line() -> None:
    with pytest.raises(ProfileError) as info:
        parse_topic_map(GATEWAY_MISTAKES, "mistakes.yaml")
    text = str(info.value)
    assert "a path with a key pattern needs key_tag" in text
    assert "(line 8)" in text
    assert "a path takes one wildcard level with one `*`" in text
    assert "unit_path and units go together" in text
    assert "no conversion from unit 'rankine' to 'degC'" in text
    assert "(line 11)" in text
    assert "a metric name takes at most one `*`" in text
    assert "a sparkplug entry's pattern is a Sparkplug B filter" in text
    assert "sensor device class temperature is listed twice" in text
