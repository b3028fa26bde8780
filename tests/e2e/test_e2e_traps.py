"""A trap sent by net-snmp's snmptrap reaches the sinks through the configured monitor."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from collectors.registry import CollectorFactory
from dcim.inventory import parse_config
from dcim.runner import Monitor
from tests.support.snmpd import send_trap, snmptrap_args
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


async def test_ups_on_battery_trap_becomes_an_event_in_the_sink(tmp_path: Path) -> None:
    snmptrap = shutil.which("snmptrap")
    assert snmptrap, "net-snmp's snmptrap is needed (Debian package snmp)"
    out = tmp_path / "out.lp"
    config = parse_config(
        f"""
monitor: {{state_dir: {tmp_path}}}
traps: {{host: 127.0.0.1, port: 0, communities: [trapcomm]}}
sites:
  - id: dc1
    rooms:
      - id: hall-a
        devices:
          - id: ups-a
            kind: ups
            profile: ups-mib-rfc1628
            poll_interval_s: 3600
            snmp: {{host: 127.0.0.1, port: 9, community: trapcomm, timeout_s: 0.2, retries: 0}}
sinks:
  - {{type: file, path: {out}, flush_interval_s: 0.1}}
"""
    )
    monitor = Monitor(config, collectors=CollectorFactory.for_config(config))
    receiver = monitor.streams[0]
    port = (await receiver.start())[1]  # type: ignore[attr-defined]
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))
    try:
        args = snmptrap_args(
            snmptrap,
            ("127.0.0.1", port),
            version="2c",
            community="trapcomm",
            trap_oid="1.3.6.1.2.1.33.2.1",
            varbinds=[("1.3.6.1.2.1.33.1.2.2.0", "i", "12"), ("1.3.6.1.2.1.33.1.2.3.0", "i", "9")],
        )
        await asyncio.to_thread(send_trap, args)

        async def arrived() -> bool:
            return out.exists() and 'trap="on_battery"' in out.read_text()

        await eventually(arrived, 15, "on_battery event in the file sink")
    finally:
        stop.set()
        await task
    events = [line for line in out.read_text().splitlines() if line.startswith("event,")]
    assert any("device=ups-a" in line and 'trap="on_battery"' in line for line in events), events
