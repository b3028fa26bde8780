"""A monitor that cannot poll its whole fleet on time: it skips and says so, and pages on time.

The fleet (the bench's fast agent, in its own process) is polled every second by a
monitor whose event loop is mostly taken: a callback in its loop keeps the CPU busy
400 ms of every 500 ms, as a machine five times too slow for the fleet would, in
stalls as long as a full garbage-collector pass over a big heap. This
is the one stand-in of the test, for a slow machine; the agent, the trap path, the
alert engine and the webhook channel are the real ones. The webhook receiver runs
in a thread with its own loop, so what it times is not the loaded loop's delay.

What an on-call engineer needs from an overloaded monitor: polls skipped (not timed
out, so devices are not shown down), counted and logged; traps still paged within
a second or two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collectors.registry import CollectorFactory
from collectors.snmp.traps import TrapReceiver
from dcim.bench.agent import SimulatedFleet
from dcim.bench.events import Event, Target, WebhookReceiver, trap_datagram
from dcim.bench.fleet import fleet_config
from dcim.bench.monitor import TRAP_RULE
from dcim.inventory import Config
from dcim.reading import Reading
from dcim.runner import Monitor
from simulators.fast_agent import fleet
from tests.support.busy import LoopThread, keep_cpu_busy
from tests.support.waiting import eventually, wait_until

DEVICES = 400
INTERVAL_S = 1.0
#: Of every BUSY_S + FREE_S of the loop, BUSY_S go to something else.
BUSY_S, FREE_S = 0.4, 0.1
#: How long the monitor runs overloaded, and how late a page may be.
OVERLOAD_S = 12.0
PAGE_WITHIN_S = 2.0

pytestmark = pytest.mark.slow


@pytest.fixture
def agent_ports(tmp_path: Path) -> Iterator[list[int]]:
    agents = SimulatedFleet(
        DEVICES, processes=1, ports_per_process=2, cache_s=1.0, v3=False, work=tmp_path
    )
    agents.start()
    try:
        yield agents.ports
    finally:
        agents.stop()


def _config(ports: list[int], state: Path, webhook: str, communities: list[str]) -> Config:
    raw: dict[str, Any] = fleet_config(DEVICES, ports, INTERVAL_S, 25)
    raw["monitor"].update(state_dir=str(state), self_metrics_interval_s=1, ops=None)
    raw["traps"] = {"host": "127.0.0.1", "port": 0, "communities": communities}
    raw["alerts"] = {
        "packs": ["ups-traps"],
        "channels": [{"type": "webhook", "name": "oncall", "url": webhook}],
    }
    return Config.model_validate(raw)


async def test_an_overloaded_monitor_skips_polls_counts_them_and_pages_on_time(
    agent_ports: list[int], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    ups = [Target(m.id, TRAP_RULE, m.community) for m in fleet(DEVICES) if m.kind == "ups"][:3]
    assert ups, "the fleet has UPS to send traps for"
    receiver = WebhookReceiver()
    with LoopThread() as thread, contextlib.ExitStack() as cleanup:
        thread.run(receiver.start())
        cleanup.callback(lambda: thread.run(receiver.aclose()))
        config = _config(agent_ports, tmp_path / "state", receiver.url, [t.address for t in ups])
        monitor = Monitor(config, collectors=CollectorFactory.for_config(config))
        stop = asyncio.Event()
        running = asyncio.create_task(monitor.run(stop))
        loop = asyncio.get_running_loop()
        hogging = True

        def hog() -> None:
            if hogging:
                keep_cpu_busy(BUSY_S)
                loop.call_later(FREE_S, hog)

        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sent: dict[tuple[str, str, str], list[float]] = {}
        try:
            await eventually(monitor.ready.is_set, 30, "the monitor started", interval_s=0.05)
            (traps,) = [s for s in monitor.streams if isinstance(s, TrapReceiver)]
            await eventually(lambda: _bound(traps), 60, "the trap receiver bound", interval_s=0.05)
            hog()
            started = loop.time()
            await asyncio.sleep(OVERLOAD_S / 2)  # overloaded: the gate has adapted by now
            for cycle, target in enumerate(ups):
                for raises in (True, False):
                    event = Event(target, raises)
                    datagram = trap_datagram(event, cycle, int(time.monotonic() * 100) % 2**32)
                    sent.setdefault(event.key, []).append(time.monotonic())
                    sock.sendto(datagram, ("127.0.0.1", traps.port))
                    await asyncio.sleep(OVERLOAD_S / 2 / (2 * len(ups)))
            hogging = False
            overload_s = loop.time() - started
        finally:
            hogging = False
            sock.close()
            stop.set()
            await running
        await asyncio.to_thread(
            wait_until,
            lambda: all(len(receiver.arrivals.get(k, ())) >= len(v) for k, v in sent.items()),
            10,
            "every trap's notification",
        )

    pollers = monitor.pollers
    polls = sum(p.polls for p in pollers)
    due = DEVICES * overload_s / INTERVAL_S
    skipped = sum(p.skipped for p in pollers)
    failed = sum(p.errors for p in pollers)
    # overloaded for real: far fewer polls than due, the slots left without one counted
    assert polls < 0.8 * due
    assert skipped > 0.2 * due
    assert monitor.poll_gate.skipped == sum(p.skipped_overload for p in pollers)
    # no timeout storm: the polls that ran were answered, no device was shown down
    assert failed <= 0.01 * polls, f"{failed} failed polls of {polls}"
    assert all(p.state.value != "down" for p in pollers)
    # counted in the self-metrics and said in the log, once
    assert monitor.self_metrics is not None
    assert _value(monitor.self_metrics.collect(), "dcim.polls_skipped") == skipped
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("overload:")]
    assert len(said) == 1
    assert "poll slots skipped" in said[0]
    # paged on time: every trap raised and cleared reached the webhook within PAGE_WITHIN_S
    delays = [
        arrived - sent_at
        for key, times in sent.items()
        for sent_at, arrived in zip(times, receiver.arrivals.get(key, []), strict=False)
    ]
    assert len(delays) == sum(len(v) for v in sent.values()), receiver.arrivals
    assert max(delays) < PAGE_WITHIN_S, delays


def _bound(receiver: TrapReceiver) -> bool:
    try:
        receiver.address  # noqa: B018 - raises until bound
    except RuntimeError:
        return False
    return True


def _value(readings: list[Reading], metric: str) -> float | None:
    values = [float(r.value) for r in readings if r.metric == metric and isinstance(r.value, int)]
    return values[0] if values else None
