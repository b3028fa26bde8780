"""How far behind the simulated agent is: its UDP sockets' receive queues, sampled.

A request waits in the agent's socket until the single-threaded agent reads it
(the kernel counts each queued datagram with its buffer overhead, about 1 KiB);
when that wait passes the poller's timeout, every answer comes too late and each
retry adds load (a collapse, not a slowdown). The kernel shows each socket's queued
bytes and drops in /proc/net/udp; sampling them tells such a run from a slow monitor.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def socket_queues(ports: Iterable[int]) -> dict[int, tuple[int, int]]:
    """port -> (receive queue bytes, drops) of the IPv4 UDP sockets bound to `ports`."""
    wanted = set(ports)
    out: dict[int, tuple[int, int]] = {}
    try:
        lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        fields = line.split()
        port = int(fields[1].rsplit(":", 1)[1], 16)
        if port in wanted:
            rx_queue = int(fields[4].split(":")[1], 16)
            out[port] = (rx_queue, int(fields[-1]))
    return out


class QueueWatch:
    """Samples the agent's sockets in a thread while a phase runs (`with QueueWatch(...)`)."""

    def __init__(self, ports: Iterable[int], every_s: float = 0.25) -> None:
        self.ports = list(ports)
        self.every_s = every_s
        self.max_bytes = 0
        self.samples: list[int] = []
        self._drops0 = self._drops()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agent queue watch", daemon=True)

    def _drops(self) -> int:
        return sum(drops for _, drops in socket_queues(self.ports).values())

    def _run(self) -> None:
        while not self._done.wait(self.every_s):
            queued = sum(q for q, _ in socket_queues(self.ports).values())
            self.samples.append(queued)
            self.max_bytes = max(self.max_bytes, queued)

    def __enter__(self) -> QueueWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def figures(self) -> dict[str, Any]:
        ordered = sorted(self.samples)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else None
        return {
            "agent_queue_max_bytes": self.max_bytes,
            "agent_queue_p99_bytes": p99,
            "agent_socket_drops": self._drops() - self._drops0,
        }
