"""PollGate: polls start while the event loop keeps up, wait while it lags, skip past their slot."""

from __future__ import annotations

import asyncio
import time

from dcim.admission import PollGate
from tests.support.waiting import eventually


async def test_admits_up_to_the_limit_then_in_order_of_arrival() -> None:
    gate = PollGate(initial=2, minimum=1)
    loop = asyncio.get_running_loop()
    far = loop.time() + 60
    assert await gate.admit(far)
    assert await gate.admit(far)
    order: list[int] = []

    async def wait(n: int) -> None:
        assert await gate.admit(far)
        order.append(n)

    waiting = [asyncio.create_task(wait(n)) for n in range(3)]
    await asyncio.sleep(0)
    assert gate.waiting == 3
    assert gate.in_progress == 2
    gate.release()
    gate.release()
    await asyncio.sleep(0)
    assert order == [0, 1]
    gate.release()
    await asyncio.gather(*waiting)
    assert order == [0, 1, 2]
    assert gate.admitted == 5
    assert gate.skipped == 0


async def test_a_poll_still_waiting_at_its_deadline_is_skipped_and_counted() -> None:
    gate = PollGate(initial=1, minimum=1)
    loop = asyncio.get_running_loop()
    assert await gate.admit(loop.time() + 60)
    assert not await gate.admit(loop.time() + 0.05)
    assert gate.skipped == 1
    assert gate.in_progress == 1  # the skipped poll took no turn
    gate.release()
    assert await gate.admit(loop.time() + 0.05)  # free again: admitted at once


async def test_a_cancelled_waiter_takes_no_turn() -> None:
    gate = PollGate(initial=1, minimum=1)
    loop = asyncio.get_running_loop()
    assert await gate.admit(loop.time() + 60)
    task = asyncio.create_task(gate.admit(loop.time() + 60))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    gate.release()
    assert gate.in_progress == 0


async def test_a_lagging_loop_lowers_the_limit_and_a_quiet_one_with_waiters_raises_it() -> None:
    gate = PollGate(initial=100, minimum=2, probe_s=0.01, lag_high_s=0.1, lag_low_s=0.05)
    loop = asyncio.get_running_loop()
    far = loop.time() + 60
    for _ in range(50):
        assert await gate.admit(far)
    gate.start()
    try:
        await asyncio.sleep(0.02)
        # the loop busy for 0.3 s, as when more polls run than one core can serve
        loop.call_soon(time.sleep, 0.3)
        await eventually(lambda: gate.limit < 100, 5, "the limit lowered", interval_s=0.01)
        assert gate.limit <= 35  # 0.7 x the 50 polls in progress
        assert gate.max_loop_lag_s >= 0.2
        lowered = gate.limit
        for _ in range(50 - lowered):
            gate.release()  # polls finish; in progress == limit
        waiters = [asyncio.create_task(gate.admit(far)) for _ in range(40)]
        await eventually(
            lambda: all(w.done() for w in waiters), 5, "every waiter admitted", interval_s=0.01
        )
        assert gate.limit > lowered
        assert all(w.result() for w in waiters)
        assert gate.take_max_loop_lag() >= 0.2
        assert gate.max_loop_lag_s < 0.2  # taken: restarts from the last sample
    finally:
        await gate.aclose()


async def test_an_alert_engine_falling_behind_lowers_the_limit_without_loop_lag() -> None:
    fill = [0.9]  # the alert engine's queue 90 % full
    gate = PollGate(initial=100, minimum=2, probe_s=0.01, backlog=lambda: fill[0])
    loop = asyncio.get_running_loop()
    for _ in range(20):
        assert await gate.admit(loop.time() + 60)
    gate.start()
    try:
        await eventually(lambda: gate.limit <= 14, 5, "the limit cut", interval_s=0.01)
        assert gate.max_loop_lag_s < 0.2  # cut for the backlog, not for lag
    finally:
        await gate.aclose()
