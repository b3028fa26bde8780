"""The event loop every long-running dcim process runs on: uvloop when installed.

The monitor spends a good part of its CPU in the event loop itself (one wake-up,
select call and timer-heap pass per SNMP answer at thousands of devices). uvloop
(libuv underneath, a drop-in asyncio loop) does that work in C: with `dcim bench
snmp` at 5,000 v2c devices the whole monitor did 365-417 polls per CPU-second on
uvloop (365-391 in the first round of a run, 405-417 after) against 347-357 on
asyncio's own loop (both rounds of one run), on the same machine the same morning.
`DCIM_EVENT_LOOP=asyncio` keeps the standard loop (for comparing, or where uvloop
cannot be installed).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or None for asyncio's own (not installed, or not wanted)."""
    if os.environ.get("DCIM_EVENT_LOOP", "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
