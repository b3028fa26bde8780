"""The Alertmanager watchdog: `DcimWatchdog` fires in a real Alertmanager while the monitor
runs, and ends by itself soon after the monitor is gone (what a dead man's switch
receiver, fed by Alertmanager's repeats, turns into a page)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from collectors.registry import CollectorFactory
from dcim.cli.common import load_checked
from dcim.ops.service import Service
from tests.support.alertmanager_server import Alertmanager, start_alertmanager
from tests.support.waiting import eventually

REFRESH_S = 0.5


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    server = start_alertmanager(tmp_path / "am")
    yield server
    server.stop()


async def watchdogs(am: Alertmanager) -> list[dict[str, Any]]:
    alerts = await asyncio.to_thread(am.alerts)
    return [a for a in alerts if a["labels"]["alertname"] == "DcimWatchdog"]


async def test_watchdog_fires_while_running_and_ends_after_the_monitor_stops(
    alertmanager: Alertmanager, tmp_path: Path
) -> None:
    config = {
        "monitor": {"state_dir": "state", "ops": None},
        "sites": [{"id": "dc1", "rooms": [{"id": "hall-1"}]}],
        "alerts": {
            "channels": [
                {
                    "type": "alertmanager",
                    "name": "am",
                    "url": alertmanager.url,
                    "refresh_s": REFRESH_S,
                    "watchdog": True,
                }
            ]
        },
    }
    path = tmp_path / "dcim.yaml"
    path.write_text(yaml.safe_dump(config))
    service = Service(
        path, load_checked(path), load=load_checked, collectors=CollectorFactory.for_config
    )
    run = asyncio.create_task(service.run())
    try:
        found: list[dict[str, Any]] = []

        async def firing() -> bool:
            found[:] = await watchdogs(alertmanager)
            return bool(found)

        await eventually(firing, 30, "DcimWatchdog in Alertmanager")
        (alert,) = found
        assert alert["labels"] == {
            "alertname": "DcimWatchdog",
            "severity": "none",
            "instance": socket.gethostname(),
        }
        assert alert["status"]["state"] == "active"
    finally:
        os.kill(os.getpid(), signal.SIGTERM)  # the service's handler: a clean stop
        assert await asyncio.wait_for(run, 30) == 0

    async def ended() -> bool:
        return not await watchdogs(alertmanager)

    # no longer re-sent: Alertmanager ends it 3 refreshes after the last one
    await eventually(ended, 10 * REFRESH_S + 10, "DcimWatchdog to end")
