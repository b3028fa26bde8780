"""Browsers on the board for `dcim bench snmp --sse-clients N`: N SSE streams of the overview.

Each client holds `/events?page=/` open for the measured window, as a browser tab
does, and reads everything the board pushes (a client that does not read would be
dropped by the board, which is not what a wall screen does). The figures: events and
bytes received per client, clients still connected at the end, reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import aiohttp

MARK = b"event: fragments\n"


@dataclass
class _Client:
    events: int = 0
    bytes: int = 0
    connects: int = 0
    connected: bool = False


@dataclass
class SseClients:
    port: int | None
    count: int
    clients: list[_Client] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if not self.count:
            return
        if self.port is None:
            raise RuntimeError("--sse-clients: the monitor runs no board")
        connector = aiohttp.TCPConnector(limit=self.count + 10)
        self._session = aiohttp.ClientSession(connector=connector)
        self.clients = [_Client() for _ in range(self.count)]
        self._tasks = [asyncio.create_task(self._read(c)) for c in self.clients]

    async def _read(self, client: _Client) -> None:
        assert self._session is not None
        url = f"http://127.0.0.1:{self.port}/events?page=/"
        while True:
            try:
                client.connects += 1
                async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=None)) as r:
                    client.connected = r.status == 200
                    tail = b""  # an event name cut between two chunks is still counted once
                    async for chunk in r.content.iter_any():
                        client.bytes += len(chunk)
                        seen = tail + chunk
                        client.events += seen.count(MARK) - tail.count(MARK)
                        tail = seen[-len(MARK) :]
            except (aiohttp.ClientError, OSError):
                pass
            client.connected = False
            await asyncio.sleep(0.5)

    async def stop(self) -> dict[str, Any]:
        if not self.count:
            return {"sse_clients": 0}
        connected = sum(1 for c in self.clients if c.connected)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
        events = [c.events for c in self.clients]
        return {
            "sse_clients": self.count,
            "sse_connected_at_end": connected,
            "sse_reconnects": sum(c.connects - 1 for c in self.clients),
            "sse_events_per_client_min": min(events),
            "sse_events_per_client_max": max(events),
            "sse_bytes_total": sum(c.bytes for c in self.clients),
        }
