"""Drain a queue of readings into a writer in batches, spooling whatever cannot be written.

Order and completeness: a batch goes to the writer only while the spool is empty and
the sink is up; otherwise it joins the spool behind the older batches, and a replay
task writes the spool oldest-first with exponential backoff. A batch leaves the spool
only after the write succeeded; a replay cut short by shutdown is repeated next time,
which InfluxDB absorbs (a point with the same series and time overwrites itself).

Neither task may die quietly: a spool whose disk refuses falls back to memory
(`FallbackSpool`), an unreadable spool file is set aside and counted, and any
other error in the replay loop is logged and retried with the same backoff.
While the sink is down, a writer that can `probe()` (a cheap ping) is asked
every second, so a sink that comes back is used again within about a second
instead of at the end of a backoff of up to `retry_max_s`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from dcim.backoff import Backoff
from dcim.errors import SinkRejectedError, SinkUnavailableError
from dcim.reading import Reading
from dcim.sinks.influx import Writer
from dcim.sinks.lineprotocol import LineEncoder
from dcim.sinks.spool import BatchStore, FallbackSpool, MemorySpool, Spool

log = logging.getLogger(__name__)

#: While down, how often a writer with `probe()` is asked whether the sink is back.
PROBE_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class SinkStats:
    """Counters of one sink worker (points are lines of line protocol)."""

    points_written: int
    points_dropped: int
    spool_bytes: int
    spool_batches: int
    #: Failed spool disk operations (full, read-only, unreadable file).
    spool_errors: int = 0
    #: Points held only in memory (buffer, memory spool): lost if the process dies.
    points_in_memory: int = 0


@dataclass(slots=True)
class _Batch:
    """A batch not yet safe: the source position of its last reading, and its state:
    wait (being written), memory (held in memory), done (written, on disk, or dropped)."""

    end: int
    state: str = "wait"


class SinkWorker:
    """Batches readings by size or age and delivers them; see the module doc.

    Without a spool directory, failed batches wait in a bounded in-memory spool,
    which is lost at exit. The writer belongs to the caller, who closes it.
    """

    def __init__(
        self,
        name: str,
        writer: Writer,
        source: asyncio.Queue[Reading],
        spool: Spool | None,
        *,
        batch_size: int = 5000,
        flush_interval_s: float = 1.0,
        retry_initial_s: float = 1.0,
        retry_max_s: float = 30.0,
        encoder: LineEncoder | None = None,
        skipped: Callable[[], int] | None = None,
    ) -> None:
        if batch_size < 1 or flush_interval_s <= 0 or retry_initial_s <= 0:
            raise ValueError("batch_size, flush_interval_s and retry_initial_s must be positive")
        self.name = name
        self._writer = writer
        self._source = source
        self._store: BatchStore = FallbackSpool(spool) if spool is not None else MemorySpool()
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = max(retry_max_s, retry_initial_s)
        self._encoder = encoder or LineEncoder()
        self._buffer: list[str] = []
        # Durability bookkeeping, for producers that acknowledge only what is safe (MQTT
        # QoS 1): each buffered line's position in the source; each batch not yet safe.
        self._skipped = skipped or (lambda: 0)
        self._taken = 0
        self._marks: list[int] = []
        self._unsafe: deque[_Batch] = deque()
        #: Source positions up to which every reading is written, on the disk spool, or
        #: dropped and counted: what a producer may acknowledge (see `safe_through`).
        self.safe = 0
        self._progress = asyncio.Event()
        self._inflight: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._down = False
        self._spool_full_logged = False
        self._replayed = [0, 0]  # batches, points since the last recovery
        self._written = 0
        self._dropped = 0
        self._run_task: asyncio.Task[None] | None = None
        self._replay_task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def stats(self) -> SinkStats:
        """A snapshot of the counters."""
        store = self._store
        in_memory = store.memory_points if isinstance(store, FallbackSpool) else store.points
        return SinkStats(
            points_written=self._written,
            points_dropped=self._dropped + store.lost_points,
            spool_bytes=store.size_bytes,
            spool_batches=store.batches,
            spool_errors=getattr(store, "io_errors", 0),
            points_in_memory=in_memory + len(self._buffer),
        )

    # --- consuming -------------------------------------------------------------------

    async def run(self) -> None:
        """Consume the queue until cancelled; call aclose() afterwards to flush."""
        if self._closed:
            raise RuntimeError(f"sink {self.name}: run() after aclose()")
        self._run_task = asyncio.current_task()
        self._replay_task = asyncio.create_task(self._replay_loop(), name=f"{self.name} replay")
        self._replay_task.add_done_callback(self._replay_ended)
        try:
            while True:
                await self._collect()
                await self._flush()
        finally:
            self._replay_task.cancel()

    def _add(self, r: Reading) -> None:
        self._taken += 1
        # the queue drops its oldest when full: those positions are passed, counted there
        position = self._taken + self._skipped()
        line = self._encoder.line(r)
        if line is None:  # non-finite float: line protocol has no way to say it
            self._dropped += 1
            if self._marks:
                self._marks[-1] = position  # settled with the line before it
            elif self._unsafe:
                self._unsafe[-1].end = position
            else:
                self._set_safe(position)
        else:
            self._buffer.append(line)
            self._marks.append(position)

    # --- durability ----------------------------------------------------------------

    async def safe_through(self, position: int) -> None:
        """Return once every reading up to source `position` is safe (see `safe`)."""
        while self.safe < position:
            await self._progress.wait()

    def _set_safe(self, position: int) -> None:
        if position > self.safe:
            self.safe = position
            self._progress.set()
            self._progress = asyncio.Event()

    def _advance(self) -> None:
        memory_empty = self._store.memory_points == 0
        while self._unsafe:
            batch = self._unsafe[0]
            if batch.state == "memory" and memory_empty:
                batch.state = "done"  # every memory batch was written (or dropped, counted)
            if batch.state != "done":
                break
            self._unsafe.popleft()
            self._set_safe(batch.end)

    async def _collect(self) -> None:
        """Fill the buffer until batch_size, or flush_interval_s after its first reading."""
        if not self._buffer:
            self._add(await self._source.get())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._flush_interval_s
        while len(self._buffer) < self._batch_size:
            try:
                self._add(self._source.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            try:
                async with asyncio.timeout_at(deadline):
                    r = await self._source.get()
            except TimeoutError:
                return
            self._add(r)

    async def _settle(self) -> None:
        """Wait for the direct write in flight, without cancelling it if we are cancelled."""
        if self._inflight is not None and not self._inflight.done():
            await asyncio.wait([self._inflight])

    def _take(self) -> tuple[bytes, int, _Batch]:
        lines, self._buffer = self._buffer[: self._batch_size], self._buffer[self._batch_size :]
        batch = _Batch(self._marks[len(lines) - 1])
        del self._marks[: len(lines)]
        self._unsafe.append(batch)
        return "\n".join(lines).encode(), len(lines), batch

    async def _flush(self) -> None:
        # Decide only once the previous write's outcome is known: that keeps the order.
        await self._settle()
        if not self._buffer:
            return
        body, lines, batch = self._take()  # no await from here on: the batch cannot get lost
        if self._down or self._store.batches:
            self._spool(body, lines, batch)
        else:
            self._inflight = asyncio.create_task(self._direct(body, lines, batch))

    # --- delivering ------------------------------------------------------------------

    async def _direct(self, body: bytes, lines: int, batch: _Batch) -> None:
        try:
            await self._writer.write(body)
        except SinkUnavailableError as exc:
            self._mark_down(str(exc))
            self._spool(body, lines, batch)
        except SinkRejectedError as exc:
            self._rejected(exc, lines)
            self._settled(batch, "done")
        except Exception as exc:  # a writer bug must not lose data: keep it for retry
            log.exception("sink %s: unexpected write error", self.name)
            self._mark_down(f"{type(exc).__name__}: {exc}")
            self._spool(body, lines, batch)
        else:
            self._written += lines
            self._settled(batch, "done")

    def _settled(self, batch: _Batch, state: str) -> None:
        batch.state = state
        self._advance()

    def _spool(self, body: bytes, lines: int, batch: _Batch) -> None:
        dropped = self._store.append(body, lines)
        self._settled(batch, "done" if self._store.last_on_disk else "memory")
        if dropped:
            self._dropped += dropped
            if not self._spool_full_logged:
                self._spool_full_logged = True
                log.error("sink %s: spool full, dropping the oldest points", self.name)
        self._wake.set()

    def _rejected(self, exc: SinkRejectedError, lines: int) -> None:
        reported = getattr(exc, "dropped_points", None)
        dropped = lines if reported is None else min(reported, lines)
        self._dropped += dropped
        self._written += lines - dropped
        log.warning(
            "sink %s: batch of %d points rejected, %d dropped: %s", self.name, lines, dropped, exc
        )

    def _mark_down(self, reason: str) -> None:
        if not self._down:
            self._down = True
            log.warning("sink %s down, spooling until it recovers: %s", self.name, reason)

    def _mark_up(self) -> None:
        batches, points = self._replayed
        if self._down:
            log.info(
                "sink %s recovered: %d spooled batches (%d points) replayed",
                self.name,
                batches,
                points,
            )
        elif batches:
            log.info("sink %s: %d spooled batches (%d points) replayed", self.name, batches, points)
        self._down = False
        self._spool_full_logged = False
        self._replayed = [0, 0]

    def _replay_ended(self, task: asyncio.Task[None]) -> None:
        # Nobody awaits the replay task until aclose(): say at once if it died.
        if not task.cancelled() and task.exception() is not None:
            log.error("sink %s: replay stopped", self.name, exc_info=task.exception())

    async def _replay_loop(self) -> None:
        delay = Backoff(self._retry_initial_s, self._retry_max_s)
        backoff = self._down  # wait before the first try only if the sink is known down
        while True:
            try:
                batch = self._store.peek()
            except Exception:  # a store bug must not end replay: say so, retry later
                log.exception("sink %s: cannot read the spool", self.name)
                await asyncio.sleep(delay.next_delay())
                continue
            if batch is None:
                self._mark_up()
                self._wake.clear()
                await self._wake.wait()
                continue
            if backoff:
                # only after a failure: replay must outpace new batches once the sink is back
                await self._wait_retry(delay.delay)
            backoff = True
            try:
                await self._writer.write(batch.body)
            except SinkUnavailableError as exc:
                self._mark_down(str(exc))
                delay.grow()
                continue
            except SinkRejectedError as exc:
                self._rejected(exc, batch.lines)
            except Exception as exc:
                log.exception("sink %s: unexpected write error", self.name)
                self._mark_down(f"{type(exc).__name__}: {exc}")
                delay.grow()
                continue
            else:
                self._written += batch.lines
            self._store.remove(batch.seq)
            self._advance()  # a batch held in memory may be the last one: safe now
            self._replayed[0] += 1
            self._replayed[1] += batch.lines
            delay.reset()
            backoff = False

    async def _wait_retry(self, delay: float) -> None:
        """Sleep `delay`, or less once the writer's probe says the sink answers again."""
        probe = getattr(self._writer, "probe", None)
        if probe is None or delay <= PROBE_INTERVAL_S:
            await asyncio.sleep(delay)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while (left := deadline - loop.time()) > 0:
            await asyncio.sleep(min(PROBE_INTERVAL_S, left))
            try:
                async with asyncio.timeout(PROBE_INTERVAL_S * 2):
                    if await probe():
                        return
            except Exception:  # noqa: S112 - a failed probe only means "not yet"
                continue

    # --- shutting down ---------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop consuming and flush what is held: write it, or spool it if that fails.

        Takes at most about two write timeouts; the spool keeps the rest for next start.
        """
        if self._closed:
            return
        self._closed = True
        for task in (self._run_task, self._replay_task):
            if task is not None and task is not asyncio.current_task() and not task.done():
                task.cancel()
                await asyncio.wait([task])
        while True:  # readings already queued would be lost with the process
            try:
                self._add(self._source.get_nowait())
            except asyncio.QueueEmpty:
                break
        await self._settle()
        while self._buffer:
            body, lines, batch = self._take()
            if self._down or self._store.batches:
                self._spool(body, lines, batch)
            else:
                await self._direct(body, lines, batch)
        store = self._store
        if isinstance(store, MemorySpool) and store.points:
            log.error(
                "sink %s: %d points held in memory are lost (no spool directory)",
                self.name,
                store.points,
            )
        elif isinstance(store, FallbackSpool) and store.memory_points:
            log.error(
                "sink %s: %d points held in memory are lost (the spool disk refused them)",
                self.name,
                store.memory_points,
            )
