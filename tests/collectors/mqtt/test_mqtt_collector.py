"""MqttCollector against a real Mosquitto started per test (plain, TLS, password)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from pathlib import Path

import aiomqtt
import pytest

from collectors.mqtt.collector import MqttCollector
from dcim.inventory import MqttBrokerConfig, TlsConfig
from dcim.mqttclient import make_client
from dcim.reading import Reading
from simulators.mqtt_publisher import BrokerTarget, MqttSensor, PublisherStats, SensorPublisher
from tests.support.certs import Pki, make_pki
from tests.support.mosquitto_server import MQTT_PASSWORD, MQTT_USER, Mosquitto
from tests.support.mqtt_helpers import (
    Collected,
    client_for,
    devices,
    inventory,
    publish,
    running,
    user_props,
)

ROOT = Path(__file__).resolve().parents[3]


def _values(readings: list[Reading], device: str, metric: str) -> list[object]:
    return [r.value for r in readings if r.device_id == device and r.metric == metric]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_topic_maps_route_and_decode_every_payload_kind(
    mosquitto: Mosquitto, protocol: str
) -> None:
    config = inventory(mosquitto.url, protocol=protocol)
    assert config.mqtt is not None
    collector = MqttCollector(config.mqtt, devices(config))
    got = Collected()
    sent_at = time.time() - 120  # two minutes late: must land at the sender's time
    async with running(collector, got):
        await publish(
            mosquitto.url,
            [
                (
                    "s1/r1/a01/env",
                    {
                        "ts": int(sent_at * 1000),  # epoch milliseconds, told apart by size
                        "temperature": {"inlet": 21.5, "outlet": 33.25},
                        "humidity": 44,
                        "dew_point": 8.9,
                    },
                ),
                ("s1/r1/a02/env", {"ts": "2026-01-02T03:04:05Z", "humidity": 50.5}),
                ("s1/r1/a02/smoke", {"obscuration": 0.12, "level": 2}),
                ("s1/r1/a02/door", {"door": "open"}),
                ("s1/r1/a01/leak", {"leak": True}),
                ("sensors/t1/temperature", b" 23.5\n"),
                ("old/probe/7/temp", b"19"),
            ],
        )
        await got.wait_for(
            lambda rs: bool(_values(rs, "legacy", "sensor.temp_c")), "the last message's reading"
        )
    readings = got.readings
    inlet = [r for r in got.of("env-a01", "sensor.temp_c") if r.tags.get("position") == "inlet"]
    assert [r.value for r in inlet] == [21.5]
    assert inlet[0].unit == "degC"
    assert inlet[0].tags["rack"] == "a01"
    assert inlet[0].tags["site"] == "s1"
    assert inlet[0].ts_ns == int(sent_at * 1000) * 1_000_000
    outlet = [r for r in got.of("env-a01", "sensor.temp_c") if r.tags.get("position") == "outlet"]
    assert [r.value for r in outlet] == [33.25]
    assert _values(readings, "env-a01", "sensor.humidity_pct") == [44.0]
    assert _values(readings, "env-a01", "sensor.dew_point_c") == [8.9]
    (a02_humidity,) = got.of("env-a02", "sensor.humidity_pct")
    assert a02_humidity.value == 50.5
    assert a02_humidity.timestamp.isoformat() == "2026-01-02T03:04:05+00:00"
    assert _values(readings, "smoke-a02", "sensor.smoke_level") == ["action"]
    assert _values(readings, "smoke-a02", "sensor.smoke_obscuration_pct_m") == [0.12]
    assert _values(readings, "door-a02", "sensor.door_open") == [True]
    assert _values(readings, "leak-a01", "sensor.leak_detected") == [True]
    assert _values(readings, "t1", "sensor.temp_c") == [23.5]
    assert _values(readings, "legacy", "sensor.temp_c") == [19.0]
    for device in ("env-a01", "env-a02", "smoke-a02", "door-a02", "leak-a01", "t1", "legacy"):
        assert _values(readings, device, "device.up") == [True], device
    assert not collector.errors_by_topic


async def test_mqtt5_user_property_timestamp_is_kept(mosquitto: Mosquitto) -> None:
    config = inventory(mosquitto.url)
    assert config.mqtt is not None
    collector = MqttCollector(config.mqtt, devices(config))
    got = Collected()
    sent_at = time.time() - 3600.5
    async with running(collector, got):
        await publish(
            mosquitto.url,
            [("sensors/t1/humidity", b"41")],
            properties=user_props(ts=f"{sent_at:.3f}"),
        )
        await got.wait_for(lambda rs: bool(got.of("t1", "sensor.humidity_pct")), "humidity")
    (reading,) = got.of("t1", "sensor.humidity_pct")
    assert reading.value == 41.0
    assert abs(reading.ts_ns / 1e9 - sent_at) < 0.002


async def test_malformed_payloads_never_disturb_good_ones(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    config = inventory(mosquitto.url)
    assert config.mqtt is not None
    collector = MqttCollector(config.mqtt, devices(config), stale_check_s=0.05)
    got = Collected()
    bad: list[tuple[str, bytes | str | dict[str, object]]] = [
        ("s1/r1/a01/env", b"{not json"),
        ("s1/r1/a01/env", b"[1, 2, 3]"),
        ("s1/r1/a01/env", b"\xff\xfe\x00garbage"),
        ("s1/r1/a01/env", {"humidity": "wet"}),
        ("s1/r1/a01/env", {"humidity": 250}),
        ("s1/r1/a01/env", b'{"humidity": NaN}'),
        ("s1/r1/a01/env", {"humidity": {"nested": 1}}),
        ("s1/r1/a01/env", {"humidity": True}),
        ("s1/r1/zz/env", {"humidity": 40}),  # no such rack: unknown device
        ("sensors/t1/temperature", b""),
        ("sensors/t1/temperature", b"hot"),
        ("s1/r1/a01/leak", {"wet": True}),  # required field missing
        ("s1/r1/a01/env/status", b"maybe"),
    ]
    messages: list[tuple[str, bytes | str | dict[str, object]]] = []
    for seq in range(1, 101):
        messages.append(("s1/r1/a01/env", {"humidity": seq % 100, "temperature": {"inlet": 20}}))
        messages.append(bad[seq % len(bad)])
    # one message with a good and a bad field: the good one still counts
    messages.append(("s1/r1/a02/env", {"humidity": 33, "temperature": {"inlet": "warm"}}))
    with caplog.at_level(logging.WARNING, logger="collectors.mqtt"):
        async with running(collector, got):
            await publish(mosquitto.url, messages)
            await got.wait_for(
                lambda rs: bool(got.of("env-a02", "sensor.humidity_pct")), "the final message"
            )
            await got.wait_for(
                lambda rs: any(r.metric == "device.mqtt_errors" for r in rs), "error counters"
            )
            assert collector.subscriber.connects == 1  # never dropped the subscription
    humidity = [float(v) for v in _values(got.readings, "env-a01", "sensor.humidity_pct")]  # type: ignore[arg-type]
    inlet = _values(got.readings, "env-a01", "sensor.temp_c")
    assert sorted(humidity) == sorted(float(seq % 100) for seq in range(1, 101))
    assert inlet.count(20.0) >= 100
    assert _values(got.readings, "env-a02", "sensor.humidity_pct") == [33.0]
    reasons = {reason for (_, reason) in collector.errors_by_topic}
    assert reasons >= {
        "bad_json",
        "wrong_type",
        "out_of_range",
        "not_finite",
        "unknown_device",
        "empty",
        "missing",
        "bad_availability",
    }
    assert collector.errors_by_topic[("s1/r1/zz/env", "unknown_device")] >= 7
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    wrong_type_a01 = [m for m in warnings if "env-a01" in m and "(wrong_type)" in m]
    # once per device, reason and field, although the same problems repeat ~8 times
    assert len(wrong_type_a01) == 1, wrong_type_a01
    assert "field humidity" in wrong_type_a01[0]
    assert "s1/r1/a01/env" in wrong_type_a01[0]
    counters = {
        (r.device_id, r.tags["reason"]): r.value
        for r in got.readings
        if r.metric == "device.mqtt_errors"
    }
    assert counters[("mqtt", "unknown_device")] in range(1, 1000)


async def test_silent_device_goes_stale_and_comes_back(mosquitto: Mosquitto) -> None:
    config = inventory(mosquitto.url, stale=0.3)
    assert config.mqtt is not None
    collector = MqttCollector(config.mqtt, devices(config), stale_check_s=0.05)
    got = Collected()

    def up_values(rs: list[Reading]) -> list[object]:
        return _values(rs, "t1", "device.up")

    async with running(collector, got):
        await publish(mosquitto.url, [("sensors/t1/temperature", b"20")])
        await got.wait_for(lambda rs: up_values(rs)[:1] == [True], "t1 up")
        await got.wait_for(lambda rs: up_values(rs)[:2] == [True, False], "t1 stale")
        await publish(mosquitto.url, [("sensors/t1/temperature", b"21")])
        await got.wait_for(lambda rs: up_values(rs) == [True, False, True], "t1 back")
    # a device that never spoke is marked down too
    assert _values(got.readings, "env-a01", "device.up")[:1] == [False]


async def test_last_will_marks_the_device_down(mosquitto: Mosquitto) -> None:
    config = inventory(mosquitto.url)
    assert config.mqtt is not None
    collector = MqttCollector(config.mqtt, devices(config))
    got = Collected()
    async with running(collector, got):
        # the simulator in its own process, killed hard: only the broker can tell
        proc = await asyncio.create_subprocess_exec(
            *[
                sys.executable,
                "-m",
                "simulators.mqtt_publisher",
                "--broker",
                mosquitto.url,
                "--racks",
                "a01",
                "--kinds",
                "leak",
                "--interval",
                "0.2",
            ],
            cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await got.wait_for(
                lambda rs: bool(got.of("leak-a01", "sensor.leak_detected")), "leak readings"
            )
        finally:
            proc.kill()  # SIGKILL: no clean disconnect, the broker sends the will
            await proc.wait()
        await got.wait_for(
            lambda rs: _values(rs, "leak-a01", "device.up")[-1:] == [False], "the last will"
        )
    assert _values(got.readings, "leak-a01", "device.up") == [True, False]
    assert _values(got.readings, "leak-a01", "sensor.leak_detected")[0] is False


async def _numbered(url: str, first: int, last: int) -> None:
    await publish(
        url,
        [
            ("s1/r1/a01/env", {"humidity": n % 100, "dew_point": n - 50})
            for n in range(first, last + 1)
        ],
    )


def _dew_points(got: Collected) -> set[int]:
    return {int(v) + 50 for v in _values(got.readings, "env-a01", "sensor.dew_point_c")}  # type: ignore[call-overload]


async def test_persistent_session_delivers_what_was_sent_while_away(
    mosquitto: Mosquitto,
) -> None:
    """QoS 1 messages published while the monitor is stopped arrive when it returns."""
    config = inventory(mosquitto.url, client_id="dcim-persist")
    assert config.mqtt is not None
    first = Collected()
    async with running(MqttCollector(config.mqtt, devices(config)), first):
        await _numbered(mosquitto.url, 1, 10)
        await first.wait_for(lambda _: _dew_points(first) >= set(range(1, 11)), "1..10")
    await _numbered(mosquitto.url, 11, 40)  # nobody subscribed now
    second = Collected()
    async with running(MqttCollector(config.mqtt, devices(config)), second):
        await second.wait_for(lambda _: _dew_points(second) >= set(range(11, 41)), "11..40")
    assert _dew_points(second) == set(range(11, 41))


async def test_reconnects_after_broker_restart_and_loses_no_qos1_message(
    mosquitto: Mosquitto,
) -> None:

    config = inventory(mosquitto.url, client_id="dcim-restart")
    assert config.mqtt is not None
    collector = MqttCollector(config.mqtt, devices(config))
    got = Collected()
    counter = iter(range(1, 1000))
    source = _Sequence(counter)
    stats = PublisherStats()
    sensor = SensorPublisher(
        MqttSensor(source, "env", "s1", "r1", "a01"),
        BrokerTarget(mosquitto.url),
        interval_s=3600,
        client_id="sim-restart",
        stats=stats,
        reconnect_max_s=0.2,
    )
    async with running(collector, got):
        sender = asyncio.create_task(sensor.connect_and_send())
        try:
            for _ in range(10):
                sensor.enqueue(time.time())
            await got.wait_for(lambda _: _dew_points(got) >= set(range(1, 11)), "before")
            mosquitto.stop()
            await got.wait_broker(False)
            for _ in range(10):  # made during the outage: wait in the sensor's outbox
                sensor.enqueue(time.time())
            mosquitto.start()
            await got.wait_broker(True, count=2)
            for _ in range(10):
                sensor.enqueue(time.time())
            await got.wait_for(lambda _: _dew_points(got) >= set(range(1, 31)), "all 30", 20)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
    assert _dew_points(got) == set(range(1, 31))
    assert collector.subscriber.connects == 2
    assert stats.connects >= 2


async def test_resubscribes_when_the_broker_forgot_the_session(
    mosquitto_bin: str, tmp_path: Path
) -> None:
    """Without broker persistence the session is gone after a restart: we subscribe again."""
    broker = Mosquitto(mosquitto_bin, tmp_path, persistence=False)
    broker.start()
    try:
        config = inventory(broker.url)
        assert config.mqtt is not None
        collector = MqttCollector(config.mqtt, devices(config))
        got = Collected()
        async with running(collector, got):
            broker.stop()
            broker.start()
            await got.wait_broker(True, count=2)
            await publish(broker.url, [("sensors/t1/temperature", b"24.5")])
            await got.wait_for(lambda _: bool(got.of("t1", "sensor.temp_c")), "after restart")
    finally:
        broker.stop()
    assert _values(got.readings, "t1", "sensor.temp_c") == [24.5]


class _Sequence:
    """A ValueSource whose dew point counts up 1, 2, 3... (offset into a valid range)."""

    def __init__(self, counter: object) -> None:
        self._counter = counter

    @property
    def device_id(self) -> str:
        return "env-a01"

    def value(self, metric: str, tags: object) -> float | None:
        if metric == "sensor.dew_point_c":
            return float(next(self._counter) - 50)  # type: ignore[call-overload]
        return None


async def test_tls_with_ca_and_client_certificate(mosquitto_tls: Mosquitto, pki: Pki) -> None:
    tls = f"  tls: {{ca_file: {pki.ca}, cert_file: {pki.client_cert}, key_file: {pki.client_key}}}"
    config = inventory(mosquitto_tls.url, extra=tls)
    assert config.mqtt is not None
    collector = MqttCollector(config.mqtt, devices(config))
    got = Collected()
    async with running(collector, got):
        publisher = client_for(
            mosquitto_tls.url,
            tls_params=aiomqtt.TLSParameters(
                ca_certs=str(pki.ca), certfile=str(pki.client_cert), keyfile=str(pki.client_key)
            ),
        )
        async with publisher:
            await publisher.publish("sensors/t1/temperature", b"22.25", qos=1)
        await got.wait_for(lambda _: bool(got.of("t1", "sensor.temp_c")), "a reading over TLS")
    assert _values(got.readings, "t1", "sensor.temp_c") == [22.25]


async def test_tls_refuses_an_unknown_ca_and_a_missing_client_certificate(
    mosquitto_tls: Mosquitto, pki: Pki, tmp_path: Path
) -> None:
    other = make_pki(tmp_path / "other")
    wrong_ca = MqttBrokerConfig(
        url=mosquitto_tls.url,
        tls=TlsConfig(ca_file=other.ca, cert_file=pki.client_cert, key_file=pki.client_key),
    )
    with pytest.raises(aiomqtt.MqttError, match="CERTIFICATE_VERIFY_FAILED"):
        async with make_client(wrong_ca, client_id="t-wrong-ca"):
            pass
    no_client_cert = MqttBrokerConfig(url=mosquitto_tls.url, tls=TlsConfig(ca_file=pki.ca))
    client = make_client(no_client_cert, client_id="t-no-cert")
    # under TLS 1.3 the broker rejects the missing certificate after the handshake, so
    # the failure is a CONNACK that never comes; do not wait the default 10 s for it
    client.timeout = 1.0
    with pytest.raises(aiomqtt.MqttError):
        async with client:
            pass


async def test_password_from_environment_and_refusal_of_a_wrong_one(
    mosquitto_auth: Mosquitto, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DCIM_TEST_MQTT_PASSWORD", MQTT_PASSWORD)
    auth = f"  username: {MQTT_USER}\n  password: {{env: DCIM_TEST_MQTT_PASSWORD}}"
    config = inventory(mosquitto_auth.url, extra=auth)
    assert config.mqtt is not None
    assert MQTT_PASSWORD not in repr(config.mqtt)
    collector = MqttCollector(config.mqtt, devices(config))
    got = Collected()
    async with running(collector, got):
        async with client_for(
            mosquitto_auth.url, username=MQTT_USER, password=MQTT_PASSWORD
        ) as publisher:
            await publisher.publish("sensors/t1/temperature", b"18", qos=1)
        await got.wait_for(
            lambda _: bool(got.of("t1", "sensor.temp_c")), "an authenticated reading"
        )

    monkeypatch.setenv("DCIM_TEST_MQTT_PASSWORD", "wrong-password-123")
    wrong = inventory(mosquitto_auth.url, extra=auth)
    assert wrong.mqtt is not None
    with caplog.at_level(logging.INFO, logger="collectors.mqtt"):
        refused = asyncio.Event()

        class Watch(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if "refused the credentials" in record.getMessage():
                    refused.set()

        watch = Watch()
        logging.getLogger("collectors.mqtt").addHandler(watch)
        task = asyncio.create_task(MqttCollector(wrong.mqtt, devices(wrong)).run(Collected()))
        try:
            async with asyncio.timeout(10):
                await refused.wait()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            logging.getLogger("collectors.mqtt").removeHandler(watch)
    assert "wrong-password-123" not in caplog.text
