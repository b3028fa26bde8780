"""A stop that Python 3.11's `asyncio.wait_for` swallows still stops the task."""

from __future__ import annotations

import asyncio
import sys

import pytest

from dcim.cancel import raise_if_cancelling


async def _worker(answer: asyncio.Future[int], check: bool) -> None:
    # what aiomqtt's publish does: wait_for the broker's acknowledgement
    await asyncio.wait_for(answer, timeout=5)
    if check:
        raise_if_cancelling()
    await asyncio.Event().wait()  # the publisher loop's next step: idle until woken


async def _stop_while_answered(check: bool) -> asyncio.Task[None]:
    answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(_worker(answer, check))
    await asyncio.sleep(0)  # the worker now waits inside wait_for
    answer.set_result(1)  # the acknowledgement and the stop in the same loop pass
    task.cancel()
    await asyncio.wait({task}, timeout=1)
    return task


async def test_a_stop_arriving_with_the_answer_ends_the_task() -> None:
    task = await _stop_while_answered(check=True)
    assert task.done()
    with pytest.raises(asyncio.CancelledError):
        task.result()


async def test_without_the_check_the_stop_can_be_lost() -> None:
    # documents the failure the helper exists for (3.11); on 3.12+ wait_for keeps the stop
    task = await _stop_while_answered(check=False)
    lost = not task.done()
    task.cancel()
    await asyncio.wait({task}, timeout=1)
    assert lost == (sys.version_info < (3, 12))
