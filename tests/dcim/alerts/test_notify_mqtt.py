"""The MQTT notification channel against a real Mosquitto: retained firing state that a
late subscriber sees and the resolve clears, TLS with a password, a dead broker that
fails, is reported on a working channel, and catches up once it is back."""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from pydantic import ValidationError

from dcim.alerts.config import AlertsConfig, MqttChannel
from dcim.alerts.notify.base import NotifyError
from dcim.alerts.notify.mqtt import MqttNotifier
from dcim.alerts.service import AlertEngine
from dcim.clock import ManualClock
from tests.support import alert_rig
from tests.support.alert_rig import TAGS, all_delivered, temp
from tests.support.certs import Pki
from tests.support.mosquitto_server import MQTT_PASSWORD, MQTT_USER, Mosquitto

FILTER = "dcim/alerts/#"


def service(tmp_path: Path, clock: ManualClock, *channels: dict[str, Any]) -> AlertEngine:
    # a broker connection takes longer than a webhook: retry a little slower
    return alert_rig.service(tmp_path, clock, *channels, retry_s=(0.05, 0.2))


def channel(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "mqtt", "name": name, "url": url, "timeout_s": 2.0, **extra}


# --- subscribers ----------------------------------------------------------------------


def client_for(
    broker: Mosquitto,
    *,
    tls: ssl.SSLContext | None = None,
    username: str | None = None,
    password: str | None = None,
) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        identifier=f"test-{uuid.uuid4().hex[:8]}",
        protocol=aiomqtt.ProtocolVersion.V5,
        tls_context=tls,
        username=username,
        password=password,
    )


class Watcher:
    """A subscriber connected before anything is published: sees every message live."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.messages: list[tuple[str, bytes, bool]] = []
        self.arrived = asyncio.Condition()

    async def run(self) -> None:
        async for message in self.client.messages:
            assert isinstance(message.payload, bytes)
            async with self.arrived:
                self.messages.append((message.topic.value, message.payload, message.retain))
                self.arrived.notify_all()

    async def wait_for(self, count: int) -> list[tuple[str, bytes, bool]]:
        async with asyncio.timeout(10), self.arrived:
            await self.arrived.wait_for(lambda: len(self.messages) >= count)
        return self.messages

    def documents(self) -> list[dict[str, Any]]:
        return [json.loads(payload) for _, payload, _ in self.messages if payload]


@pytest.fixture
async def watch(mosquitto: Mosquitto) -> AsyncIterator[Watcher]:
    async with client_for(mosquitto) as client:
        await client.subscribe(FILTER, qos=1)
        watcher = Watcher(client)
        task = asyncio.create_task(watcher.run())
        yield watcher
        task.cancel()


async def retained(
    broker: Mosquitto,
    *,
    tls: ssl.SSLContext | None = None,
    username: str | None = None,
    password: str | None = None,
) -> dict[str, dict[str, Any]]:
    """What a subscriber connecting now receives as retained: topic -> document.

    The broker sends retained messages on SUBSCRIBE; a marker we publish after the
    SUBACK on the same connection comes after them, so no waiting on a timer."""
    marker = f"test/marker/{uuid.uuid4().hex}"  # outside FILTER: watchers do not see it
    found: dict[str, dict[str, Any]] = {}
    auth = client_for(broker, tls=tls, username=username, password=password)
    async with auth as client, asyncio.timeout(10):
        await client.subscribe([(FILTER, 1), (marker, 1)])
        await client.publish(marker, b"end", qos=1)
        async for message in client.messages:
            if message.topic.value == marker:
                return found
            assert message.retain, f"unexpected live message on {message.topic.value}"
            assert isinstance(message.payload, bytes)
            found[message.topic.value] = json.loads(message.payload)
    raise AssertionError("the marker never came back")


# --- tests ----------------------------------------------------------------------------


async def test_firing_is_retained_for_late_subscribers_and_the_resolve_clears_it(
    tmp_path: Path, mosquitto: Mosquitto, watch: Watcher
) -> None:
    clock = ManualClock()
    alerts = service(tmp_path, clock, channel("bus", mosquitto.url))
    try:
        alerts.process([temp(33.0, clock)])
        ((topic, payload, _),) = await watch.wait_for(1)
        body = json.loads(payload)
        assert topic == f"dcim/alerts/par1/critical/inlet/{body['id']}"
        assert (body["event"], body["state"], body["rule"]) == ("firing", "firing", "inlet")
        assert (body["severity"], body["scope"], body["labels"]) == (
            "critical",
            "device=env-1",
            TAGS,
        )
        assert body["fired_at"] == clock()
        assert body["resolved_at"] is None
        await all_delivered(alerts, "bus")

        # a dashboard that connects now still learns of the open incident
        assert await retained(mosquitto) == {topic: body}

        clock.advance(60)
        alerts.process([temp(20.0, clock)])
        messages = await watch.wait_for(3)
        # first the retained copy is cleared (an empty message), then the resolve is told
        assert messages[1] == (topic, b"", False)
        assert messages[2][0] == topic
        resolved = json.loads(messages[2][1])
        assert (resolved["event"], resolved["state"], resolved["id"]) == (
            "resolved",
            "resolved",
            body["id"],
        )
        assert resolved["resolved_at"] == clock()
        await all_delivered(alerts, "bus")
        assert await retained(mosquitto) == {}  # nothing left for a closed incident
    finally:
        await alerts.aclose()


async def test_a_severity_change_moves_the_retained_message(
    tmp_path: Path, mosquitto: Mosquitto, watch: Watcher
) -> None:
    clock = ManualClock()
    alerts = service(tmp_path, clock, channel("bus", mosquitto.url, qos=2))
    try:
        alerts.process([temp(28.0, clock)])
        ((warning_topic, _, _),) = await watch.wait_for(1)
        assert "/warning/inlet/" in warning_topic
        clock.advance(30)
        alerts.process([temp(33.0, clock)])
        messages = await watch.wait_for(3)
        assert messages[1] == (warning_topic, b"", False)
        critical_topic = warning_topic.replace("/warning/", "/critical/")
        assert messages[2][0] == critical_topic
        await all_delivered(alerts, "bus")
        now = await retained(mosquitto)
        assert list(now) == [critical_topic]
        assert now[critical_topic]["severity"] == "critical"
    finally:
        await alerts.aclose()


async def test_a_restarted_monitor_still_clears_what_it_retained(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    clock = ManualClock()
    topic = "site/{site}/rack/{rack}/{incident}"
    first = service(tmp_path, clock, channel("bus", mosquitto.url, topic=topic))
    first.process([temp(33.0, clock)])
    await all_delivered(first, "bus")
    await first.aclose()
    (incident,) = first.incidents()

    marker = f"site/~marker/{uuid.uuid4().hex}"
    async with client_for(mosquitto) as client:
        await client.subscribe("site/#", qos=1)
        async with asyncio.timeout(10):
            async for message in client.messages:
                assert message.topic.value == f"site/par1/rack/a01/{incident.id}"
                assert message.retain
                break

        clock.advance(120)
        second = service(tmp_path, clock, channel("bus", mosquitto.url, topic=topic))
        try:
            second.process([temp(20.0, clock)])
            await all_delivered(second, "bus")
        finally:
            await second.aclose()
        events: list[dict[str, Any] | None] = []
        await client.publish(marker, b"end", qos=1)
        async with asyncio.timeout(10):
            async for message in client.messages:
                if message.topic.value == marker:
                    break
                assert isinstance(message.payload, bytes)
                events.append(json.loads(message.payload) if message.payload else None)
        assert [e and e["event"] for e in events] == [None, "resolved"]

    async with client_for(mosquitto) as client:  # and nothing is retained any more
        await client.subscribe("site/#", qos=1)
        await client.publish(marker, b"end", qos=1)
        async with asyncio.timeout(10):
            message = await anext(aiter(client.messages))
        assert message.topic.value == marker


async def test_tls_and_a_password_from_the_environment(
    tmp_path: Path,
    mosquitto_tls_auth: Mosquitto,
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("DCIM_TEST_MQTT_PASSWORD", MQTT_PASSWORD)
    secure = channel(
        "bus",
        mosquitto_tls_auth.url,
        username=MQTT_USER,
        password={"env": "DCIM_TEST_MQTT_PASSWORD"},
        tls={"ca_file": str(pki.ca)},
        protocol="3.1.1",
    )
    assert mosquitto_tls_auth.url.startswith("mqtts://")
    clock = ManualClock()
    caplog.set_level("DEBUG")
    alerts = service(tmp_path, clock, secure)
    try:
        alerts.process([temp(33.0, clock)])
        await all_delivered(alerts, "bus")
    finally:
        await alerts.aclose()
    context = ssl.create_default_context(cafile=str(pki.ca))
    seen = await retained(
        mosquitto_tls_auth, tls=context, username=MQTT_USER, password=MQTT_PASSWORD
    )
    assert [doc["rule"] for doc in seen.values()] == ["inlet"]

    # the wrong password and an unknown CA both fail, and neither error shows the secret
    wrong = MqttChannel.model_validate({**secure, "password": "not-the-password"})
    with pytest.raises(NotifyError) as refused:
        await MqttNotifier(wrong).send(
            alerts.engine.notification("firing", alerts.incidents()[0], 0)
        )
    untrusted = MqttChannel.model_validate({**secure, "tls": {"ca_file": str(pki.client_cert)}})
    with pytest.raises(NotifyError, match="cannot connect") as unverified:
        await MqttNotifier(untrusted).send(
            alerts.engine.notification("firing", alerts.incidents()[0], 0)
        )
    for text in (str(refused.value), str(unverified.value), caplog.text):
        assert MQTT_PASSWORD not in text
        assert "not-the-password" not in text


async def test_a_dead_broker_fails_is_reported_elsewhere_and_catches_up(
    tmp_path: Path, mosquitto: Mosquitto, watch: Watcher, mosquitto_bin: str
) -> None:
    dead_dir = tmp_path / "dead"
    dead_dir.mkdir()
    dead = Mosquitto(mosquitto_bin, dead_dir)  # its port is chosen; nothing listens yet
    clock = ManualClock()
    alerts = service(tmp_path, clock, channel("pager", dead.url), channel("bus", mosquitto.url))
    try:
        alerts.process([temp(33.0, clock)])
        await watch.wait_for(2)
        docs = watch.documents()
        assert [(d["event"], d["rule"]) for d in docs] == [
            ("firing", "inlet"),
            ("firing", "dcim.notification_failed"),
        ]
        assert docs[1]["labels"] == {"channel": "pager"}
        assert "cannot connect" in docs[1]["summary"]
        assert watch.messages[1][0].startswith("dcim/alerts/_/critical/dcim.notification_failed/")
        assert alerts.store.pending("pager")  # still owed, not dropped

        await asyncio.to_thread(dead.start)  # the pager's broker comes back
        messages = await watch.wait_for(4)  # clear + resolve of the channel failure
        assert messages[2][1] == b""
        assert json.loads(messages[3][1])["event"] == "resolved"
        await all_delivered(alerts, "pager")
        assert [d["rule"] for d in (await retained(dead)).values()] == ["inlet"]
    finally:
        await alerts.aclose()
        dead.stop()


async def test_a_silent_broker_times_out_instead_of_hanging(tmp_path: Path) -> None:
    """A peer that accepts TCP and never answers CONNECT: the send gives up in timeout_s."""
    accepted: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    notifier = MqttNotifier(
        MqttChannel.model_validate(channel("slow", f"mqtt://127.0.0.1:{port}", timeout_s=0.3))
    )
    clock = ManualClock()
    alerts = service(tmp_path, clock)
    alerts.process([temp(33.0, clock)])
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(NotifyError, match="no answer"):
            await notifier.send(alerts.engine.notification("firing", alerts.incidents()[0], 0))
        assert loop.time() - started < 2.0
        assert accepted  # it did reach the peer
    finally:
        await notifier.aclose()
        await alerts.aclose()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"topic": "dcim/alerts/{site}"}, "needs {incident}"),
        ({"topic": "dcim/{event}/{incident}"}, "cannot name {event}"),
        ({"topic": "dcim/+/{incident}"}, "wildcards"),
        ({"topic": "dcim/{site!r}/{incident}"}, "plain name"),
        ({"topic": "dcim/{labels[0]}/{incident}"}, "plain name"),
        ({"topic": "$SYS/{incident}"}, "reserved"),
        ({"username": "u", "password": "p"}, "in clear"),
        ({"password": "p", "tls": {}}, "without username"),
        ({"url": "http://broker"}, "should match pattern"),
        ({"qos": 3}, "qos"),
    ],
)
def test_bad_channel_configs_are_refused(change: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error.replace("{", r"\{").replace("$", r"\$")):
        MqttChannel.model_validate({**channel("bus", "mqtt://127.0.0.1:1883"), **change})


def test_unretained_topics_need_no_incident_and_routes_must_carry_resolves() -> None:
    plain = MqttChannel.model_validate(
        channel("bus", "mqtt://h", topic="dcim/{site}/{severity}", retain=False)
    )
    assert plain.topic == "dcim/{site}/{severity}"
    route = {"channels": ["bus"], "events": ["firing"]}
    with pytest.raises(ValidationError, match="nothing ever clears them"):
        AlertsConfig.model_validate({"channels": [channel("bus", "mqtt://h")], "routes": [route]})
    unretained = channel("bus", "mqtt://h", retain=False)
    AlertsConfig.model_validate({"channels": [unretained], "routes": [route]})


async def test_unretained_channel_publishes_each_event_plainly(
    tmp_path: Path, mosquitto: Mosquitto, watch: Watcher
) -> None:
    clock = ManualClock()
    plain = channel("bus", mosquitto.url, topic="dcim/alerts/{site}/{state}", retain=False)
    alerts = service(tmp_path, clock, plain)
    try:
        alerts.process([temp(33.0, clock)])
        clock.advance(60)
        alerts.process([temp(20.0, clock)])
        messages = await watch.wait_for(2)
        assert [(t, r) for t, _, r in messages] == [
            ("dcim/alerts/par1/firing", False),
            ("dcim/alerts/par1/resolved", False),
        ]
        await all_delivered(alerts, "bus")
        assert await retained(mosquitto) == {}
    finally:
        await alerts.aclose()


async def test_a_connection_lost_while_idle_is_replaced_within_one_send(
    tmp_path: Path, mosquitto: Mosquitto, watch: Watcher
) -> None:
    """The channel keeps its connection between alerts; a broker restart in between must not
    cost a failed attempt (which would count towards 'notification failed')."""
    clock = ManualClock()
    alerts = service(tmp_path, clock)
    notifier = MqttNotifier(MqttChannel.model_validate(channel("bus", mosquitto.url)))
    try:
        alerts.process([temp(33.0, clock)])
        (incident,) = alerts.incidents()
        await notifier.send(alerts.engine.notification("firing", incident, clock()))
        await watch.wait_for(1)
        await asyncio.to_thread(mosquitto.stop)
        await asyncio.to_thread(mosquitto.start)
        async with client_for(mosquitto) as client:
            await client.subscribe(FILTER, qos=1)
            await notifier.send(alerts.engine.notification("escalated", incident, clock()))
            async with asyncio.timeout(10):
                async for message in client.messages:
                    assert isinstance(message.payload, bytes)
                    if not message.retain:
                        assert json.loads(message.payload)["event"] == "escalated"
                        break
    finally:
        await notifier.aclose()
        await alerts.aclose()


def test_the_monitor_config_takes_an_mqtt_channel(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from dcim.inventory import parse_config

    secret_file = tmp_path / "mqtt-password"
    secret_file.write_text("from-a-file\n")
    monkeypatch.setenv("DCIM_TEST_MQTT_PASSWORD", MQTT_PASSWORD)
    config = parse_config(
        f"""
sites: [{{id: par1}}]
sinks: [{{type: file, path: {tmp_path}/out.jsonl}}]
alerts:
  channels:
    - type: mqtt
      name: noc-bus
      url: mqtts://mqtt.example:8883
      topic: "noc/{{site}}/{{room}}/{{severity}}/{{incident}}"
      qos: 1
      username: dcim
      password: {{env: DCIM_TEST_MQTT_PASSWORD}}
      tls: {{ca_file: /etc/dcim/ca.pem, cert_file: /etc/dcim/c.pem, key_file: /etc/dcim/c.key}}
    - {{type: mqtt, name: lab, url: "mqtt://127.0.0.1", retain: false, topic: lab/alerts,
       username: u, password: {{file: {secret_file}}}, tls: {{insecure_skip_verify: true}}}}
  routes:
    - {{channels: [noc-bus, lab], severities: [critical]}}
"""
    )
    assert config.alerts is not None
    bus, lab = config.alerts.channels
    assert isinstance(bus, MqttChannel)
    assert isinstance(lab, MqttChannel)
    assert bus.password is not None
    assert bus.password.get_secret_value() == MQTT_PASSWORD
    assert MQTT_PASSWORD not in repr(config)
    assert bus.tls is not None
    assert bus.tls.ca_file == Path("/etc/dcim/ca.pem")
    assert lab.password is not None
    assert lab.password.get_secret_value() == "from-a-file"
