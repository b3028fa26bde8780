"""The service with real peers: a local HTTP server checks webhook signatures, aiosmtpd
receives mail over STARTTLS with auth, a real Alertmanager shows the alerts in its API.
Also: a failing channel, and a restart that neither re-sends nor loses a resolve."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from dcim.alerts.config import AlertsConfig
from dcim.alerts.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from dcim.clock import ManualClock
from tests.support.alert_rig import all_delivered, service, temp
from tests.support.alertmanager_server import Alertmanager, start_alertmanager
from tests.support.certs import self_signed
from tests.support.servers import free_port
from tests.support.waiting import eventually

HMAC_KEY = "k3y-for-tests-only-0123456789"
SMTP_PASSWORD = "s3cret-pass"  # noqa: S105 - a throwaway test server's password


class WebhookReceiver:
    """A real HTTP server that keeps what it receives; `status` makes it fail on purpose."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.signatures_ok: list[bool] = []
        self.status = 200
        self.arrived = asyncio.Condition()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        if self.status != 200:
            return web.Response(status=self.status)
        body = await request.read()
        signature = request.headers.get(SIGNATURE_HEADER, "")
        stamp = request.headers.get(TIMESTAMP_HEADER, "")
        self.signatures_ok.append(verify(HMAC_KEY.encode(), stamp, body, signature))
        async with self.arrived:
            self.received.append(json.loads(body))
            self.arrived.notify_all()
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(self, count: int, within_s: float = 10.0) -> list[dict[str, Any]]:
        async with asyncio.timeout(within_s), self.arrived:
            await self.arrived.wait_for(lambda: len(self.received) >= count)
        return self.received


@pytest.fixture
async def hook() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


def webhook(name: str, url: str) -> dict[str, Any]:
    return {"type": "webhook", "name": name, "url": url, "hmac_key": HMAC_KEY}


async def test_webhook_is_signed_and_carries_the_incident(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    clock = ManualClock()
    alerts = service(tmp_path, clock, webhook("hook", hook.url))
    try:
        alerts.process([temp(33.0, clock)])
        (body,) = await hook.wait_for(1)
        assert (body["event"], body["rule"], body["severity"]) == ("firing", "inlet", "critical")
        assert body["labels"]["rack"] == "a01"
        assert hook.signatures_ok == [True]
        clock.advance(60)
        alerts.process([temp(20.0, clock)])
        received = await hook.wait_for(2)
        assert received[1]["event"] == "resolved"
        assert received[1]["id"] == body["id"]
    finally:
        await alerts.aclose()
    assert not verify(b"wrong key", "1", b"{}", "sha256=00")


async def test_failed_channel_is_retried_and_reported_on_the_working_one(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    broken = WebhookReceiver()
    await broken.start()
    broken.status = 503
    clock = ManualClock()
    alerts = service(tmp_path, clock, webhook("pager", broken.url), webhook("chat", hook.url))
    try:
        alerts.process([temp(33.0, clock)])
        received = await hook.wait_for(2)
        assert [(r["event"], r["rule"]) for r in received] == [
            ("firing", "inlet"),
            ("firing", "dcim.notification_failed"),
        ]
        assert received[1]["labels"] == {"channel": "pager"}
        broken.status = 200  # the pager comes back: its backlog goes out, the failure resolves
        assert [r["rule"] for r in await broken.wait_for(1)] == ["inlet"]
        received = await hook.wait_for(3)
        assert (received[2]["event"], received[2]["rule"]) == (
            "resolved",
            "dcim.notification_failed",
        )
        assert [r["rule"] for r in broken.received] == ["inlet"]  # never told about itself
    finally:
        await alerts.aclose()
        await broken.stop()


async def test_restart_neither_resends_nor_loses_a_resolve(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    clock = ManualClock()
    first = service(tmp_path, clock, webhook("hook", hook.url))
    first.process([temp(33.0, clock)])
    await all_delivered(first, "hook")
    await first.aclose()  # the monitor stops while the alert fires

    clock.advance(300)
    second = service(tmp_path, clock, webhook("hook", hook.url))
    try:
        assert [i.rule for i in second.incidents()] == ["inlet"]
        second.process([temp(33.5, clock)])  # still hot: nothing new to say
        assert second.store.pending("hook") == []
        hook.status = 503  # the receiver is down when the resolve happens
        clock.advance(30)
        second.process([temp(21.0, clock)])
        assert len(second.store.pending("hook")) == 1
    finally:
        await second.aclose()

    hook.status = 200
    third = service(tmp_path, clock, webhook("hook", hook.url))
    try:
        received = await hook.wait_for(2)
        assert [r["event"] for r in received] == ["firing", "resolved"]
        assert third.incidents() == []
    finally:
        await third.aclose()


# --- email: aiosmtpd as a real SMTP server with STARTTLS and AUTH --------------------


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((str(session.auth_data.login, "utf-8"), envelope.content))
        return "250 OK"


async def test_email_goes_over_starttls_with_auth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = self_signed(tmp_path, "smtp")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)

    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"dcim",
            b"s3cret-pass",
        )
        return AuthResult(success=ok, handled=False, auth_data=data)

    inbox = _Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=tls,
        require_starttls=True,
        authenticator=authenticate,
        auth_require_tls=True,
    )
    controller.start()
    monkeypatch.setenv("DCIM_TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    clock = ManualClock()
    mail = {
        "type": "email",
        "name": "mail",
        "host": "127.0.0.1",
        "port": port,
        "ca_file": str(cert),
        "username": "dcim",
        "password": {"env": "DCIM_TEST_SMTP_PASSWORD"},
        "sender": "dcim@example.org",
        "to": ["oncall@example.org"],
    }
    alerts = service(tmp_path, clock, mail)
    try:
        alerts.process([temp(33.0, clock)])
        async with asyncio.timeout(10):
            while not inbox.messages:  # noqa: ASYNC110 - aiosmtpd runs in its own thread
                await asyncio.sleep(0.02)
        login, content = inbox.messages[0]
        assert login == "dcim"
        assert b"Subject: [CRITICAL] FIRING: inlet" in content
        assert SMTP_PASSWORD.encode() not in content
    finally:
        await alerts.aclose()
        controller.stop()


# --- a real Alertmanager, alone and as a cluster ---------------------------------------------


def active(server: Alertmanager) -> list[str]:
    return [a["labels"]["alertname"] for a in server.alerts() if a["status"]["state"] == "active"]


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    server = start_alertmanager(tmp_path / "am")
    yield server
    server.stop()


async def test_alertmanager_receives_and_resolves(
    tmp_path: Path, alertmanager: Alertmanager
) -> None:
    clock = ManualClock(dt.datetime.now(dt.UTC).timestamp())
    channel = {"type": "alertmanager", "name": "am", "url": alertmanager.url}
    alerts = service(tmp_path, clock, channel)
    try:
        alerts.process([temp(33.0, clock)])
        await eventually(
            lambda: asyncio.to_thread(lambda: bool(alertmanager.alerts())),
            10.0,
            "the alert in Alertmanager",
        )
        (alert,) = alertmanager.alerts()
        assert alert["labels"]["alertname"] == "inlet"
        assert alert["labels"]["severity"] == "critical"
        assert alert["labels"]["rack"] == "a01"
        assert alert["status"]["state"] == "active"
        clock.advance(1)
        alerts.process([temp(20.0, clock)])
        await eventually(
            lambda: asyncio.to_thread(lambda: not active(alertmanager)),
            10.0,
            "the resolve in Alertmanager",
        )
    finally:
        await alerts.aclose()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[Alertmanager]]:
    first = start_alertmanager(tmp_path / "am1", clustered=True)
    members = [first]
    try:
        members.append(start_alertmanager(tmp_path / "am2", peers=(first.cluster_address,)))
        yield members
    finally:
        for member in members:
            member.stop()


async def test_every_cluster_member_hears_each_alert_and_one_member_down_loses_nothing(
    tmp_path: Path, cluster: list[Alertmanager], caplog: pytest.LogCaptureFixture
) -> None:
    first, second = cluster
    # the documented HA set-up really forms one cluster
    await eventually(
        lambda: asyncio.to_thread(lambda: first.cluster_peers() == 2 == second.cluster_peers()),
        10.0,
        "gossip",
    )
    clock = ManualClock(dt.datetime.now(dt.UTC).timestamp())
    channel = {"type": "alertmanager", "name": "am", "urls": [first.url, second.url]}
    alerts = service(tmp_path, clock, channel)
    try:
        alerts.process([temp(33.0, clock)])
        await all_delivered(alerts, "am")
        await eventually(
            lambda: asyncio.to_thread(lambda: active(first) == active(second) == ["inlet"]),
            10.0,
            "both members",
        )

        first.stop()  # one member dies; the resolve must still get through
        clock.advance(1)
        alerts.process([temp(20.0, clock)])
        await all_delivered(alerts, "am")
        await eventually(
            lambda: asyncio.to_thread(lambda: not active(second)),
            10.0,
            "the resolve on the surviving member",
        )
        assert first.url in caplog.text  # the dead member is named, as a warning
        assert "dcim.notification_failed" not in [i.rule for i in alerts.incidents()]
    finally:
        await alerts.aclose()


async def test_no_member_reachable_is_a_failed_delivery(
    tmp_path: Path, cluster: list[Alertmanager]
) -> None:
    for member in cluster:
        member.stop()
    clock = ManualClock(dt.datetime.now(dt.UTC).timestamp())
    channel = {"type": "alertmanager", "name": "am", "urls": [m.url for m in cluster]}
    alerts = service(tmp_path, clock, channel)
    try:
        alerts.process([temp(33.0, clock)])
        async with asyncio.timeout(10):
            while "am" not in alerts.dispatcher.failing:  # noqa: ASYNC110 - the retry loop's state
                await asyncio.sleep(0.05)
        error = alerts.dispatcher.failing["am"]
        assert all(member.url in error for member in cluster), error
        assert alerts.store.pending("am")  # kept for a retry, not dropped
    finally:
        await alerts.aclose()


async def test_alertmanager_over_tls_with_basic_auth(tmp_path: Path) -> None:
    password = "am-pass-for-tests"  # noqa: S105 - a throwaway test server's password
    cert, key = self_signed(tmp_path, "am")
    server = start_alertmanager(tmp_path / "am", tls=(cert, key), user=("dcim", password))
    clock = ManualClock(dt.datetime.now(dt.UTC).timestamp())
    base = {"type": "alertmanager", "url": server.url, "tls": {"ca_file": str(cert)}}
    good = {**base, "name": "good", "username": "dcim", "password": password}
    wrong = {**base, "name": "wrong", "username": "dcim", "password": "not-the-password"}
    alerts = service(tmp_path, clock, good, wrong)
    try:
        alerts.process([temp(33.0, clock)])
        await all_delivered(alerts, "good")
        assert active(server) == ["inlet"]
        async with asyncio.timeout(10):
            while "wrong" not in alerts.dispatcher.failing:  # noqa: ASYNC110 - retry loop's state
                await asyncio.sleep(0.05)
        assert "HTTP 401" in alerts.dispatcher.failing["wrong"]
        assert "not-the-password" not in repr(alerts.dispatcher.failing)
    finally:
        await alerts.aclose()
        server.stop()


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({}, "give either url"),
        ({"url": "http://a:9093", "urls": ["http://b:9093"]}, "give either url"),
        ({"urls": ["http://a:9093", "http://a:9093"]}, "the same Alertmanager twice"),
        ({"url": "http://a:9093", "username": "u", "password": "p"}, "in clear"),
        ({"url": "https://a:9093", "username": "u"}, "go together"),
    ],
)
def test_alertmanager_channel_config_mistakes(extra: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        AlertsConfig.model_validate({"channels": [{"type": "alertmanager", "name": "am", **extra}]})
