"""A loaded event loop, for tests of what the monitor does when it cannot keep up.

`keep_cpu_busy` takes the CPU (and so the calling event loop) for a while, as decoding
thousands of polls or a full garbage-collector pass does; `LoopThread` runs servers on
an event loop of their own in a thread, so they answer while the test's loop is busy.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def keep_cpu_busy(seconds: float) -> None:
    """Spin for `seconds`: nothing else runs on this thread's event loop meanwhile."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


class LoopThread:
    """An event loop running in a thread of its own (a context manager)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> LoopThread:
        self._thread.start()
        return self

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 10.0) -> T:
        """Run `coro` on the thread's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
