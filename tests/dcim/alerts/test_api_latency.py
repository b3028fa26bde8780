"""The local API and `dcim alerts` against a running engine; and the latency from a
reading that crosses a threshold to its webhook notification, with 3000 rules loaded."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from dcim.alerts.config import AlertsConfig
from dcim.alerts.kinds.base import DeviceInfo
from dcim.alerts.rules import parse_rules
from dcim.alerts.service import AlertEngine
from dcim.cli.alerts import cmd_alerts
from dcim.reading import Reading, now_ns
from tests.support import alert_rig
from tests.support.servers import http

TOKEN = "api-token-for-tests-0123456789"  # noqa: S105 - a throwaway test token
RULES = alert_rig.RULES + parse_rules(  # the inlet rule, and a door
    """
rules:
  - id: door
    kind: state
    metric: sensor.door_open
    states: {"true": warning}
""",
    "test",
)


def tags(n: int) -> dict[str, str]:
    return {
        "site": "par1",
        "room": "hall-a",
        "rack": f"r{n}",
        "device": f"env-{n}",
        "kind": "sensor",
    }


def reading(n: int, metric: str, value: float | bool) -> Reading:
    return Reading(f"env-{n}", metric, value, None, now_ns(), tags(n))


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[AlertEngine, asyncio.Queue[Reading], str]]:
    settings = AlertsConfig.model_validate(
        {"packs": [], "startup_grace_s": 0, "api": {"port": 0, "token": TOKEN}}
    )
    devices = {f"env-{n}": DeviceInfo(tags(n), 30.0) for n in range(3)}
    alerts = AlertEngine(settings, RULES, devices, tmp_path)
    queue: asyncio.Queue[Reading] = asyncio.Queue()
    emitted: list[Reading] = []
    task = asyncio.create_task(alerts.run(queue, emitted.extend))
    async with asyncio.timeout(10):
        while alerts.api_port is None:  # noqa: ASYNC110 - the server binds inside run()
            await asyncio.sleep(0.01)
    yield alerts, queue, f"http://127.0.0.1:{alerts.api_port}"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await alerts.aclose()


async def settle(alerts: AlertEngine, queue: asyncio.Queue[Reading], count: int) -> None:
    async with asyncio.timeout(10):
        while not queue.empty() or len(alerts.incidents()) < count:  # noqa: ASYNC110 - engine task
            await asyncio.sleep(0.01)


def cli(url: str, token_file: Path, *argv: str) -> int:
    from dcim.cli import build_parser

    args = build_parser().parse_args(
        ["alerts", "--url", url, "--token-file", str(token_file), *argv]
    )
    assert args.func is cmd_alerts
    code: int = args.func(args)
    return code


async def test_nothing_without_the_token(
    running: tuple[AlertEngine, asyncio.Queue[Reading], str],
) -> None:
    _, _, url = running
    for method, path in (("GET", "/api/v1/alerts"), ("POST", "/api/v1/silences")):
        status, body = await asyncio.to_thread(http, method, url + path, b"{}")
        assert status == 401, body
    status, _ = await asyncio.to_thread(
        http, "POST", url + "/api/v1/alerts/x/ack", b'{"by": "eve"}'
    )
    assert status == 401


async def test_cli_lists_acks_and_silences_a_running_engine(
    running: tuple[AlertEngine, asyncio.Queue[Reading], str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    alerts, queue, url = running
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    queue.put_nowait(reading(1, "sensor.temp_c", 33.0))
    await settle(alerts, queue, 1)
    assert await asyncio.to_thread(cli, url, token_file, "list") == 0
    (incident,) = alerts.incidents()
    assert incident.id in capsys.readouterr().out

    code = await asyncio.to_thread(cli, url, token_file, "ack", incident.id, "--comment", "on it")
    assert code == 0
    # the single shared token acts under its fixed identity
    assert (incident.ack_by, incident.ack_comment) == ("api-token", "on it")

    code = await asyncio.to_thread(cli, url, token_file, "silence", "rack=r2", "--for", "2h")
    assert code == 0
    (silence,) = alerts.silences()
    assert silence.matchers == {"rack": "r2"}
    assert silence.ends_at - silence.starts_at == 7200
    queue.put_nowait(reading(2, "sensor.door_open", True))
    await settle(alerts, queue, 2)
    door = next(i for i in alerts.incidents() if i.rule == "door")
    assert door.notified is None  # silenced: firing, but not announced

    assert await asyncio.to_thread(cli, url, token_file, "ack", "no-such-id") == 1
    assert "HTTP 404" in capsys.readouterr().err
    assert await asyncio.to_thread(cli, url, token_file, "silence", "color=red", "--for", "1h") == 1


# --- latency -----------------------------------------------------------------------


class Stopwatch:
    """A webhook receiver noting when each notification arrived (perf_counter)."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.arrived = asyncio.Condition()

    async def handle(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = json.loads(await request.read())
        async with self.arrived:
            self.arrivals[body["labels"]["rack"]] = time.perf_counter()
            self.arrived.notify_all()
        return web.Response(status=204)


async def test_latency_reading_to_notification_with_3000_rules(tmp_path: Path) -> None:
    racks = 3000
    rules_yaml = "rules:\n" + "".join(
        f"  - id: inlet.r{n}\n    kind: threshold\n    metric: sensor.temp_c\n"
        f"    scope: {{rack: r{n}}}\n    levels: {{high_warning: 27, high_critical: 32}}\n"
        for n in range(racks)
    )
    rules = parse_rules(rules_yaml, "generated")
    watch = Stopwatch()
    app = web.Application()
    app.router.add_post("/hook", watch.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    hook = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    settings = AlertsConfig.model_validate(
        {
            "packs": [],
            "startup_grace_s": 0,
            "channels": [{"type": "webhook", "name": "hook", "url": hook}],
        }
    )
    devices = {f"env-{n}": DeviceInfo(tags(n), 30.0) for n in range(racks)}
    alerts = AlertEngine(settings, rules, devices, tmp_path)
    queue: asyncio.Queue[Reading] = asyncio.Queue()
    task = asyncio.create_task(alerts.run(queue, lambda _: None))
    try:
        for n in range(racks):  # steady state: every rack reports a normal inlet
            queue.put_nowait(reading(n, "sensor.temp_c", 22.0))
        latencies = []
        for n in range(0, racks, 15):  # 200 crossings, one at a time
            sent = time.perf_counter()
            queue.put_nowait(reading(n, "sensor.temp_c", 33.0))
            async with asyncio.timeout(10), watch.arrived:
                await watch.arrived.wait_for(lambda n=n: f"r{n}" in watch.arrivals)  # type: ignore[misc]
            latencies.append(watch.arrivals[f"r{n}"] - sent)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await alerts.aclose()
        await runner.cleanup()
    median, worst = statistics.median(latencies), max(latencies)
    print(
        f"\nlatency reading -> webhook received, {racks} rules, {len(latencies)} alerts: "
        f"median {median * 1000:.1f} ms, worst {worst * 1000:.1f} ms"
    )
    assert len(latencies) == 200
    assert worst < 1.0
