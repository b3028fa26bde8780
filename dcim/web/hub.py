"""Live updates by Server-Sent Events: one topic per page and language, shared by its
browsers.

Every `update_s` the hub asks each watched topic whether anything it shows may have
changed (its fingerprint); if so it renders the topic's fragments once, and sends
each browser only the fragments whose HTML changed, as one `fragments` event
(JSON: element id -> HTML). A fragment may have cells (a rack of the floor map, a
site's panels): while the rest of it (its frame) is unchanged only the cells that
changed are sent, keyed "=<element id>" (the browser replaces that element whole).
A new browser first gets every fragment. A browser that cannot keep up (its small
queue is full) is disconnected: EventSource reconnects by itself and starts from the
whole page again, so a slow client costs nothing to the others and holds no
unbounded memory.

The board never takes the monitor's time from polling and alerting: refreshes may use
at most `BUDGET` of the event loop's thread (CPU time measured per round); a round
that cost more spaces the next one out (a big site's wall screen then updates every
few seconds instead of every second, and `HubStats.period_s` says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

#: Events a browser may have waiting before it is dropped (it reconnects at once).
CLIENT_QUEUE = 8
#: Seconds of silence after which a comment line keeps proxies from closing the stream.
KEEPALIVE_S = 15.0
#: Share of the event loop's thread the refreshes may take, at most.
BUDGET = 0.1

Fingerprint = Callable[[], Hashable]


@dataclass
class Rendered:
    """A topic's fragments as rendered now."""

    #: fragment id -> its whole HTML
    html: dict[str, str]
    #: fragment id -> its HTML with a place-holder per cell (fragments that have cells)
    frames: dict[str, str] = field(default_factory=dict)
    #: cell element id -> its HTML (the element itself)
    cells: dict[str, str] = field(default_factory=dict)


Render = Callable[[], Awaitable[Rendered]]


@dataclass(eq=False)
class Client:
    queue: asyncio.Queue[bytes | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=CLIENT_QUEUE)
    )
    dropped: bool = False

    def offer(self, message: bytes | None) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped = True
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(None)  # the handler ends; the browser reconnects


@dataclass(eq=False)
class Topic:
    key: Hashable
    render: Render
    fingerprint: Fingerprint
    clients: set[Client] = field(default_factory=set)
    last: dict[str, str] = field(default_factory=dict)
    frames: dict[str, str] = field(default_factory=dict)
    cells: dict[str, str] = field(default_factory=dict)
    seen: Hashable = None
    rendered: bool = False


def changes(topic: Topic, rendered: Rendered) -> dict[str, str]:
    """What a browser that has the topic's last fragments needs: fragments without cells
    that changed; fragments with cells whole if a frame changed, else the cells that
    changed ("=" + element id)."""
    out: dict[str, str] = {}
    framed: dict[str, str] = {}
    whole = False
    for name, html in rendered.html.items():
        if topic.last.get(name) == html:
            continue
        frame = rendered.frames.get(name)
        if frame is None:
            out[name] = html
        else:
            framed[name] = html
            whole = whole or topic.frames.get(name) != frame
    if whole:
        out.update(framed)
    else:
        for element, html in rendered.cells.items():
            if topic.cells.get(element) != html:
                out["=" + element] = html
    return out


def encode(fragments: dict[str, str]) -> bytes:
    data = json.dumps(fragments, separators=(",", ":"), ensure_ascii=False)
    return b"event: fragments\ndata: " + data.encode() + b"\n\n"


@dataclass
class HubStats:
    renders: int = 0
    messages: int = 0
    dropped_clients: int = 0
    #: CPU seconds of the last refresh round, and seconds from its start to the next.
    round_cpu_s: float = 0.0
    period_s: float = 0.0


class Hub:
    def __init__(self, update_s: float) -> None:
        self.update_s = update_s
        self.topics: dict[Hashable, Topic] = {}
        self.stats = HubStats()
        self._closed = False

    @property
    def clients(self) -> int:
        return sum(len(t.clients) for t in self.topics.values())

    async def join(
        self, key: Hashable, render: Render, fingerprint: Fingerprint
    ) -> tuple[Topic, Client]:
        """A client of `key` (its topic made on first use), primed with every fragment."""
        topic = self.topics.get(key)
        if topic is None:
            topic = self.topics[key] = Topic(key, render, fingerprint)
        client = Client()
        if not topic.rendered:
            await self._refresh(topic, force=True)
        topic.clients.add(client)
        client.offer(encode(topic.last))
        return topic, client

    def leave(self, topic: Topic, client: Client) -> None:
        topic.clients.discard(client)
        if client.dropped:
            self.stats.dropped_clients += 1
        if not topic.clients:
            self.topics.pop(topic.key, None)

    async def run(self) -> None:
        """Refresh watched topics every `update_s` (or slower, see `BUDGET`) until cancelled."""
        wait = self.update_s
        while True:
            await asyncio.sleep(wait)
            started = time.thread_time()
            for topic in list(self.topics.values()):
                if topic.clients:
                    try:
                        await self._refresh(topic)
                    except Exception:
                        log.exception("board: rendering %s failed", topic.key)
            wait = self.pause_after(time.thread_time() - started)

    def pause_after(self, cpu_s: float) -> float:
        """Seconds to wait after a round that took `cpu_s` so rounds stay within BUDGET."""
        wait = max(self.update_s, cpu_s / BUDGET - cpu_s)
        if wait > self.update_s and self.stats.period_s <= self.update_s:
            log.info(
                "board: a refresh took %.0f ms of CPU; live updates every %.1f s",
                cpu_s * 1000,
                wait + cpu_s,
            )
        self.stats.round_cpu_s, self.stats.period_s = cpu_s, wait + cpu_s
        return wait

    async def _refresh(self, topic: Topic, *, force: bool = False) -> None:
        mark = topic.fingerprint()
        if not force and topic.rendered and mark == topic.seen:
            return
        rendered = await topic.render()
        topic.seen, topic.rendered = mark, True
        self.stats.renders += 1
        changed = changes(topic, rendered)
        topic.last, topic.frames, topic.cells = rendered.html, rendered.frames, rendered.cells
        if changed and topic.clients:
            message = encode(changed)
            self.stats.messages += len(topic.clients)
            for client in list(topic.clients):
                client.offer(message)

    def close(self) -> None:
        """End every stream (server shutdown)."""
        self._closed = True
        for topic in self.topics.values():
            for client in topic.clients:
                while not client.queue.empty():
                    client.queue.get_nowait()
                client.queue.put_nowait(None)
