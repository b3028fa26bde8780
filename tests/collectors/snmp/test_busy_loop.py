"""Answers that arrived in time count, even when the client's event loop was busy.

The agent runs in a thread of its own (its own event loop), so it answers while the
test keeps the client's loop busy past every request's timer: as a monitor polling
more than one core can serve would. asyncio's transport reads one datagram per turn
of the loop; without reading the socket before a try expires, all but one of the
answers waiting there would be taken for timeouts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from collectors.snmp.client import SnmpHost
from collectors.snmp.types import parse_oid
from dcim import eventloop
from dcim.inventory import SnmpConfig
from simulators.fast_agent import FastAgent, fleet, fleet_devices
from tests.support.busy import LoopThread, keep_cpu_busy
from tests.support.waiting import eventually

MEMBERS = fleet(60)
SYS_NAME = parse_oid("1.3.6.1.2.1.1.5.0")


@pytest.fixture
def agent_port() -> Iterator[int]:
    """A fast agent answering from its own thread and loop."""
    agent = FastAgent(fleet_devices(MEMBERS))

    async def close() -> None:
        agent.close()

    with LoopThread() as thread:
        (port,) = thread.run(agent.start("127.0.0.1", 0))
        try:
            yield port
        finally:
            thread.run(close())


async def _busy_polls(port: int) -> list[object]:
    """Every member's sysName asked at once, the loop kept busy past every timer; the
    answers (or errors) in member order."""
    host = SnmpHost(max_in_flight=1000)
    try:
        sessions = [
            await host.session(
                m.id,
                SnmpConfig.model_validate(
                    {
                        "host": "127.0.0.1",
                        "port": port,
                        "community": m.community,
                        "timeout_s": 0.2,
                        "retries": 0,
                    }
                ),
            )
            for m in MEMBERS
        ]
        gets = [asyncio.create_task(s.get([SYS_NAME])) for s in sessions]
        await eventually(
            lambda: host.in_flight == len(MEMBERS), 5, "every request sent", interval_s=0
        )
        # the loop busy with other work while the answers arrive and every timer passes
        keep_cpu_busy(0.6)
        return list(await asyncio.gather(*gets, return_exceptions=True))
    finally:
        host.close()


def _check(answers: list[object]) -> None:
    failed = [a for a in answers if isinstance(a, BaseException)]
    assert failed == []
    values = [a[0].value for a in answers if isinstance(a, list)]
    assert values == [m.id.encode() for m in MEMBERS]


async def test_answers_waiting_behind_a_busy_loop_are_taken_not_timed_out(
    agent_port: int,
) -> None:
    _check(await _busy_polls(agent_port))


async def test_the_same_on_the_monitors_event_loop(agent_port: int) -> None:
    # uvloop (libuv) runs expired timers before it polls for I/O: without reading the
    # socket first, every one of these answers would be a timeout
    assert eventloop.loop_factory() is not None, "uvloop is a dependency: it must be installed"
    _check(await asyncio.to_thread(eventloop.run, _busy_polls(agent_port)))
