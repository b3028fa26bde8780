"""The one wait-until helper: wait on a condition with a deadline, never a bare sleep.

`eventually` in async tests (the condition may be a plain check or a coroutine,
e.g. a query to a server that cannot signal us); `wait_until` where nothing can
be awaited (a server process starting, a browser page). Both fail naming what
they waited for.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast, overload

T = TypeVar("T")


@overload
async def eventually(
    check: Callable[[], Awaitable[T]], within_s: float, what: str, *, interval_s: float = ...
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T], within_s: float, what: str, *, interval_s: float = ...
) -> T: ...


async def eventually(
    check: Callable[[], T | Awaitable[T]],
    within_s: float,
    what: str,
    *,
    interval_s: float = 0.1,
) -> T:
    """Await `check()` until it is truthy; what it returned then.

    TimeoutError naming `what` after `within_s`. The default pace suits state held by
    another process (a server's stored data) without loading the machine; in-process
    state can be polled faster (`interval_s`).
    """
    try:
        async with asyncio.timeout(within_s):
            while True:
                outcome = check()
                if inspect.isawaitable(outcome):
                    outcome = await outcome
                if outcome:
                    return cast("T", outcome)
                await asyncio.sleep(interval_s)
    except TimeoutError:
        raise TimeoutError(f"timed out after {within_s:g}s waiting for {what}") from None


def wait_until(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.02) -> T:
    """Poll `condition` until it is truthy and return its value; TimeoutError naming
    `what` after `timeout` seconds (blocking: for code that cannot await)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)
