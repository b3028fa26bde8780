"""MQTT sensor publishers, checked by Mosquitto's own client (mosquitto_sub)."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest

from simulators.mqtt_publisher import (
    MqttSensor,
    PublisherStats,
    StandaloneSensor,
    dew_point_c,
    run_publishers,
    sensor_payload,
    standalone_sensors,
)
from tests.support.mosquitto_server import Mosquitto, binary_or_skip


def test_payloads_follow_the_value_source() -> None:
    source = StandaloneSensor("env-a01", seed=1)
    env = sensor_payload(MqttSensor(source, "env", "s1", "r1", "a01"), 1_700_000_000.0)
    assert env is not None
    assert env["ts"] == 1_700_000_000.0
    temps = env["temperature"]
    assert isinstance(temps, dict)
    assert 15 < temps["inlet"] < 30
    assert temps["outlet"] - temps["inlet"] == pytest.approx(10, abs=1)
    assert 0 < env["humidity"] < 100  # type: ignore[operator]
    source.set("sensor.door_open", True)
    door = sensor_payload(MqttSensor(source, "door", "s1", "r1", "a01"), 0.0)
    assert door == {"ts": 0.0, "door": "open"}
    source.set("sensor.leak_detected", None)
    assert sensor_payload(MqttSensor(source, "leak", "s1", "r1", "a01"), 0.0) is None


def test_dew_point_is_consistent() -> None:
    assert dew_point_c(20.0, 100.0) == pytest.approx(20.0, abs=0.01)
    assert dew_point_c(25.0, 50.0) == pytest.approx(13.85, abs=0.2)
    assert dew_point_c(22.0, 30.0) < dew_point_c(22.0, 60.0)


async def test_mosquitto_sub_receives_sensor_messages(mosquitto: Mosquitto) -> None:
    sub_bin = binary_or_skip("mosquitto_sub", "/usr/bin/mosquitto_sub")
    sensors = standalone_sensors("s1", "r1", ["a01", "a02"], ["env", "smoke", "leak", "door"])
    # -C: exit after this many messages; 8 status + about four rounds of 8 payloads
    sub = await asyncio.create_subprocess_exec(
        sub_bin,
        "-h",
        "127.0.0.1",
        "-p",
        str(mosquitto.port),
        "-t",
        "s1/#",
        "-v",
        "-C",
        "40",
        "-W",
        "20",
        stdout=asyncio.subprocess.PIPE,
    )
    stats = PublisherStats()
    # subscribed before publishing? mosquitto_sub gives no signal; the retained
    # status messages reach it either way, and payloads repeat every 0.1 s
    task = asyncio.create_task(run_publishers(mosquitto.url, sensors, 0.1, stats=stats))
    try:
        out, _ = await sub.communicate()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert sub.returncode == 0, out
    lines = [line.split(" ", 1) for line in out.decode().splitlines()]
    by_topic: dict[str, list[str]] = {}
    for topic, payload in lines:
        by_topic.setdefault(topic, []).append(payload)
    assert by_topic["s1/r1/a01/env/status"][0] == "online"
    env = json.loads(by_topic["s1/r1/a02/env"][0])
    assert set(env) == {"ts", "temperature", "humidity", "dew_point"}
    smoke = json.loads(by_topic.get("s1/r1/a01/smoke", by_topic.get("s1/r1/a02/smoke", ["{}"]))[0])
    assert smoke.get("level", "normal") == "normal"
    assert stats.connects == 8


async def test_clean_stop_leaves_retained_offline(mosquitto: Mosquitto) -> None:
    sub_bin = binary_or_skip("mosquitto_sub", "/usr/bin/mosquitto_sub")
    sensors = standalone_sensors("s1", "r1", ["a01"], ["door"])
    stats = PublisherStats()
    task = asyncio.create_task(run_publishers(mosquitto.url, sensors, 0.05, stats=stats))
    sub = await asyncio.create_subprocess_exec(
        sub_bin,
        "-p",
        str(mosquitto.port),
        "-t",
        "s1/r1/a01/door",
        "-C",
        "1",
        "-W",
        "10",
        stdout=asyncio.subprocess.PIPE,
    )
    await sub.communicate()  # a payload arrived: the sensor is connected and online
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    retained = await asyncio.create_subprocess_exec(
        sub_bin,
        "-p",
        str(mosquitto.port),
        "-t",
        "s1/r1/a01/door/status",
        "-C",
        "1",
        "-W",
        "5",
        "--retained-only",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await retained.communicate()
    assert out.decode().strip() == "offline"
