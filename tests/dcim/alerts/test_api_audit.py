"""Every operator action through the alert API is audited under the token's identity."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dcim.alerts.config import AlertsConfig
from dcim.alerts.kinds.base import DeviceInfo
from dcim.alerts.service import AlertEngine
from dcim.audit import AuditEntry, read_audit
from dcim.cli.alerts import cmd_alerts
from dcim.reading import Reading, now_ns
from tests.support import alert_rig
from tests.support.servers import http

ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-0123456789abcdefgh"
TAGS = {"site": "par1", "room": "hall-a", "rack": "r1", "device": "env-1", "kind": "sensor"}


@pytest.fixture
async def api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[AlertEngine, asyncio.Queue[Reading], str]]:
    monkeypatch.setenv("TEST_ALICE_TOKEN", ALICE)
    # refused calls from one address: one audit line per minute here (1 s in production),
    # so the test does not depend on how fast the machine runs it
    monkeypatch.setattr("dcim.alerts.api.AUTH_FAILURE_AUDIT_S", 60.0)
    settings = AlertsConfig.model_validate(
        {
            "packs": [],
            "startup_grace_s": 0,
            "api": {
                "port": 0,
                "tokens": [
                    {"name": "alice", "token": {"env": "TEST_ALICE_TOKEN"}},
                    {"name": "bob", "token": BOB},
                ],
            },
        }
    )
    devices = {"env-1": DeviceInfo(TAGS, 30.0)}
    alerts = AlertEngine(settings, alert_rig.RULES, devices, tmp_path)
    queue: asyncio.Queue[Reading] = asyncio.Queue()
    task = asyncio.create_task(alerts.run(queue, lambda _: None))
    async with asyncio.timeout(10):
        while alerts.api_port is None:  # noqa: ASYNC110 - the server binds inside run()
            await asyncio.sleep(0.01)
    yield alerts, queue, f"http://127.0.0.1:{alerts.api_port}"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await alerts.aclose()


async def call(url: str, token: str | None, method: str, path: str, body: object = None) -> int:
    def run() -> int:
        import urllib.error
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url + path, data=data, method=method)  # noqa: S310
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    return await asyncio.to_thread(run)


def trail(alerts: AlertEngine) -> list[AuditEntry]:
    return list(read_audit(alerts.audit.path))


async def test_author_is_the_token_identity_and_every_action_is_audited(
    api: tuple[AlertEngine, asyncio.Queue[Reading], str],
) -> None:
    alerts, queue, url = api
    queue.put_nowait(Reading("env-1", "sensor.temp_c", 33.0, "degC", now_ns(), TAGS))
    async with asyncio.timeout(10):
        while not alerts.incidents():  # noqa: ASYNC110 - the engine task works the queue
            await asyncio.sleep(0.01)
    (incident,) = alerts.incidents()

    # the body's "by" is ignored: the author is whoever the token says
    assert (
        await call(url, ALICE, "POST", f"/api/v1/alerts/{incident.id}/ack", {"by": "mallory"})
        == 200
    )
    assert incident.ack_by == "alice"
    assert await call(url, BOB, "POST", "/api/v1/alerts/nope/ack", {}) == 404
    body = {"scope": "room=hall-a", "duration": "2h", "by": "mallory", "comment": "works"}
    assert await call(url, BOB, "POST", "/api/v1/silences", body) == 201
    (silence,) = alerts.silences()
    assert silence.created_by == "bob"
    window = {"scope": "rack=r1", "duration": "1h", "starts_in": "1d"}
    assert await call(url, ALICE, "POST", "/api/v1/silences", window) == 201
    assert (
        await call(url, ALICE, "POST", "/api/v1/silences", {"scope": "color=red", "duration": "1h"})
        == 400
    )
    assert await call(url, ALICE, "DELETE", f"/api/v1/silences/{silence.id}") == 200
    assert await call(url, "wrong-token-0123456789", "GET", "/api/v1/alerts") == 401
    assert await call(url, None, "POST", "/api/v1/silences", body) == 401

    got = [(e.actor, e.action, e.target, e.result) for e in trail(alerts)]
    assert got == [
        ("alice", "acknowledge", incident.id, "ok"),
        ("bob", "acknowledge", "nope", "refused"),
        ("bob", "silence", "room=hall-a", "ok"),
        ("alice", "maintenance", "rack=r1", "ok"),
        ("alice", "silence", "color=red", "refused"),
        ("alice", "unsilence", silence.id, "ok"),
        ("(unauthenticated)", "auth_failure", "GET /api/v1/alerts", "denied"),
    ]
    entries = trail(alerts)
    assert all(e.source == "127.0.0.1" for e in entries)
    assert entries[2].detail["ends_at"] - entries[2].detail["starts_at"] == 7200
    assert entries[3].detail["starts_at"] > entries[0].at + 86000  # a window, a day ahead
    # a second wrong call within the interval is counted, not written again
    assert sum(e.action == "auth_failure" for e in entries) == 1


def run_cli(*argv: str) -> int:
    from dcim.cli import build_parser

    args = build_parser().parse_args(["alerts", *argv])
    assert args.func is cmd_alerts
    code: int = args.func(args)
    return code


async def test_dcim_alerts_audit_prints_the_trail(
    api: tuple[AlertEngine, asyncio.Queue[Reading], str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    alerts, _, url = api
    token_file = tmp_path / "token"
    token_file.write_text(BOB + "\n")
    assert (
        await asyncio.to_thread(
            run_cli,
            "--url",
            url,
            "--token-file",
            str(token_file),
            "silence",
            "room=hall-a",
            "--for",
            "2h",
        )
        == 0
    )
    assert "by bob" in capsys.readouterr().out
    assert await asyncio.to_thread(http, "GET", url + "/api/v1/audit") == (
        401,
        b'{"error": "missing or wrong token"}',
    )

    code = await asyncio.to_thread(run_cli, "--url", url, "--token-file", str(token_file), "audit")
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert "bob" in lines[0]
    assert "silence" in lines[0]
    assert "room=hall-a" in lines[0]
    assert "auth_failure" in lines[1]
    assert "denied" in lines[1]

    # offline, straight from the file, as JSON lines
    assert (
        await asyncio.to_thread(run_cli, "audit", "--file", str(alerts.audit.path), "--json") == 0
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["action"] for r in rows] == ["silence", "auth_failure"]


def test_single_token_still_works_and_weak_or_shared_values_are_refused() -> None:
    from dcim.alerts.config import ApiSettings

    assert ApiSettings.model_validate({"token": ALICE}).identities() == [("api-token", ALICE)]
    with pytest.raises(ValueError, match="at least 16"):
        ApiSettings.model_validate({"tokens": [{"name": "eve", "token": "short"}]})
    with pytest.raises(ValueError, match="same value"):
        ApiSettings.model_validate(
            {"tokens": [{"name": "a", "token": ALICE}, {"name": "b", "token": ALICE}]}
        )
    with pytest.raises(ValueError, match="give token"):
        ApiSettings.model_validate({})
