"""Reload a running `dcim run`: one device added, one removed, one changed; the rest keep
their poller (schedule, counters) and their open incidents; a broken file is refused
with its errors and the old config keeps running; `dcim reload` does the same as SIGHUP.

Real parts: the monitor as a subprocess, a simulated UPS agent over SNMP, the monitor's
own /metrics and alert API as the observers.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from dcim.alerts.client import call
from dcim.clock import SimClock
from simulators.snmp_agent import SnmpAgent, serve
from simulators.ups import UpsModel
from simulators.ups_mib import UpsDevice
from tests.support.servers import free_port, http
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow
TOKEN = "reload-test-token-0123456789"  # noqa: S105 - a test's own API token


@pytest.fixture
async def agent() -> AsyncIterator[SnmpAgent]:
    device = UpsDevice("ups1", UpsModel(rated_va=6000.0, rated_w=5400.0, seed=1), SimClock())
    agent = await serve([device], "127.0.0.1", 0)
    yield agent
    agent.close()


def ups(device_id: str, port: int, community: str = "ups1") -> dict[str, Any]:
    snmp = {"host": "127.0.0.1", "port": port, "community": community, "timeout_s": 0.3}
    return {"id": device_id, "kind": "ups", "profile": "ups-mib-rfc1628", "snmp": snmp}


def config(devices: list[dict[str, Any]], ops_port: int, api_port: int) -> str:
    return yaml.safe_dump(
        {
            "monitor": {"state_dir": "state", "ops": {"port": ops_port}},
            "defaults": {"poll_interval_s": 0.5},
            "sites": [{"id": "dc1", "rooms": [{"id": "hall-1", "devices": devices}]}],
            "alerts": {
                "startup_grace_s": 0,
                "tick_s": 0.2,
                "api": {"port": api_port, "token": TOKEN},
            },
        }
    )


async def metrics(port: int) -> dict[tuple[str, str], float]:
    """(metric, device or '') -> value, from the monitor's /metrics."""
    status, body = await asyncio.to_thread(http, "GET", f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    return {
        (sample.name, sample.labels.get("device", sample.labels.get("result", ""))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


async def open_incidents(api_port: int) -> dict[str, str]:
    """device -> incident id of its open device.down incident."""
    alerts = await asyncio.to_thread(
        call, f"http://127.0.0.1:{api_port}", TOKEN, "GET", "/api/v1/alerts"
    )
    return {
        a["labels"]["device"]: a["id"]
        for a in alerts["alerts"]
        if a["rule"] == "device.down" and a["state"] == "firing"
    }


async def dcim(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dcim",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=dict(os.environ),
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_reload_adds_removes_changes_and_refuses_a_broken_file(
    agent: SnmpAgent, tmp_path: Path
) -> None:
    ops_port, api_port = free_port(), free_port()
    port = agent.port
    path = tmp_path / "dcim.yaml"
    path.write_text(
        config(
            [
                ups("keep", port),
                ups("keep-down", port, "wrong"),  # an open incident that must survive
                ups("gone", port),
                ups("change", port, "wrong"),  # fixed by the reload
            ],
            ops_port,
            api_port,
        )
    )
    log = tmp_path / "monitor.log"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dcim",
        "run",
        str(path),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log.open("wb"),
        env=dict(os.environ),
    )
    try:
        seen: dict[tuple[str, str], float] = {}
        incidents: dict[str, str] = {}

        async def started() -> bool:
            nonlocal seen, incidents
            try:
                seen = await metrics(ops_port)
                incidents = await open_incidents(api_port)
            except OSError:
                return False
            return seen.get(("dcim_device_polls_total", "keep"), 0) >= 4 and {
                "keep-down",
                "change",
            } <= set(incidents)

        await eventually(started, 60, "polls and device-down incidents before the reload")
        before = seen
        assert before[("dcim_device_up", "change")] == 0

        # 1. a broken file: refused, the old config keeps running
        good = path.read_text()
        path.write_text(good.replace("tick_s: 0.2", "tick_s: 0"))
        proc.send_signal(signal.SIGHUP)

        async def refused() -> bool:
            return (await metrics(ops_port)).get(("dcim_config_reloads_total", "refused")) == 1

        await eventually(refused, 30, "the broken config to be refused")
        after_broken = await metrics(ops_port)
        assert after_broken[("dcim_config_last_reload_successful", "")] == 0
        assert ("dcim_device_up", "gone") in after_broken  # nothing was applied
        text = log.read_text()
        assert f"reload refused: {path} has 1 problem(s); the running config stays" in text
        assert "alerts.tick_s: Input should be greater than 0 (line " in text
        # `dcim reload` checks first and sends nothing for a broken file
        code, out = await dcim("reload", str(path))
        assert code == 2
        assert "not sent; the running monitor keeps its config" in out

        # 2. one device added, one removed, one changed, through `dcim reload`
        path.write_text(
            config(
                [
                    ups("keep", port),
                    ups("keep-down", port, "wrong"),
                    ups("change", port),
                    ups("new", port),
                ],
                ops_port,
                api_port,
            )
        )
        code, out = await dcim("reload", str(path))
        assert code == 0, out
        assert "applied: 1 added, 1 removed, 1 changed" in out

        async def applied() -> bool:
            nonlocal seen
            seen = await metrics(ops_port)
            return (
                seen.get(("dcim_device_up", "new")) == 1
                and seen.get(("dcim_device_up", "change")) == 1
            )

        await eventually(applied, 30, "the added device polled and the changed one up")
        assert ("dcim_device_up", "gone") not in seen
        assert ("dcim_device_polls_total", "gone") not in seen
        assert seen[("dcim_config_last_reload_successful", "")] == 1
        # unchanged devices kept their poller: counters went on, they did not restart at 0
        for device in ("keep", "keep-down"):
            assert (
                seen[("dcim_device_polls_total", device)]
                >= before[("dcim_device_polls_total", device)]
            )
        # the changed device got a new poller (its count started again)
        assert (
            seen[("dcim_device_polls_total", "change")] < seen[("dcim_device_polls_total", "keep")]
        )

        # incidents: the unchanged device's is the same one; the fixed device's resolves
        async def change_resolved() -> bool:
            nonlocal incidents
            incidents = await open_incidents(api_port)
            return "change" not in incidents

        await eventually(change_resolved, 30, "the changed device's incident to resolve")
        assert incidents["keep-down"] == (await open_incidents(api_port))["keep-down"]
        audit = [
            json.loads(line)
            for line in (tmp_path / "state" / "audit.jsonl").read_text().splitlines()
        ]
        assert [(a["actor"], a["action"], a["result"]) for a in audit if a["actor"] == "dcim"] == [
            ("dcim", "reload", "refused"),
            ("dcim", "reload", "applied"),
        ]
        applied_entry = next(a for a in audit if a["result"] == "applied")
        assert applied_entry["detail"]["added"] == ["new"]
        assert applied_entry["detail"]["removed"] == ["gone"]
        assert applied_entry["detail"]["changed"] == ["change"]
        assert any(a["source"] == "cli" and a["result"] == "requested" for a in audit)
    finally:
        if proc.returncode is None:
            proc.terminate()
        await asyncio.wait_for(proc.wait(), 60)
    assert proc.returncode == 0, log.read_text()[-3000:]
