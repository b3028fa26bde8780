"""Keep a task's cancellation from being lost by libraries built on `asyncio.wait_for`.

On Python 3.11 `asyncio.wait_for` returns the result and drops a cancel that
arrives in the same loop pass as the awaited result (fixed in 3.12, where it is
built on `asyncio.timeout`). aiomqtt waits for PUBACK/SUBACK/CONNACK that way,
so a task stopped while a publish completes carries on as if never cancelled
and then waits forever (seen as shutdown hangs). Also, leaving `async with
aiomqtt.Client` while cancelled can fail the disconnect with an MqttError,
which a reconnect loop would otherwise catch and retry.
"""

from __future__ import annotations

import asyncio


def raise_if_cancelling(cause: BaseException | None = None) -> None:
    """Raise CancelledError when the current task has a cancel pending or swallowed."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from cause
