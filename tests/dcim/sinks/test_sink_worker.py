"""SinkWorker against a real influxd: batching, rejects, outage, shutdown, hung sink."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import MappingProxyType

import pytest

from dcim.reading import Reading, Value
from dcim.sinks.influx import InfluxV1Writer
from dcim.sinks.spool import Spool
from dcim.sinks.worker import SinkWorker
from tests.support.servers import InfluxDB1
from tests.support.waiting import eventually

BASE_MS = 1_700_000_000_000
TAGS = MappingProxyType({"site": "dc1", "device": "ups-1"})


def reading(i: int, value: Value | None = None, metric: str = "ups.load_pct") -> Reading:
    """The i-th reading: value i (unless given) at BASE_MS + i ms."""
    v: Value = float(i) if value is None else value
    return Reading("ups-1", metric, v, "%", (BASE_MS + i) * 1_000_000, TAGS)


class Recorder:
    """The real writer, plus the timestamps of every body it got accepted, in order."""

    def __init__(self, writer: InfluxV1Writer) -> None:
        self.name = writer.name
        self._writer = writer
        self.accepted: list[int] = []

    async def write(self, body: bytes) -> None:
        await self._writer.write(body)
        self.accepted += [int(line.rsplit(b" ", 1)[1]) for line in body.split(b"\n")]

    async def aclose(self) -> None:
        await self._writer.aclose()


@asynccontextmanager
async def running(worker: SinkWorker) -> AsyncIterator[SinkWorker]:
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        task.cancel()
        await worker.aclose()


def stored(server: InfluxDB1, db: str) -> list[tuple[int, float]]:
    rows = server.query('SELECT "load_pct" FROM "ups"', db)
    return [(r["time"], r["load_pct"]) for r in rows]


async def test_batches_by_size_and_by_time(influxdb1: InfluxDB1, influx_db: str) -> None:
    queue: asyncio.Queue[Reading] = asyncio.Queue()
    async with InfluxV1Writer(influxdb1.url, influx_db) as writer:
        rec = Recorder(writer)
        worker = SinkWorker("t", rec, queue, None, batch_size=10, flush_interval_s=0.2)
        async with running(worker):
            for i in range(25):
                queue.put_nowait(reading(i))
            await eventually(
                lambda: worker.stats.points_written == 20, 15.0, "two full batches", interval_s=0.01
            )
            await eventually(
                lambda: worker.stats.points_written == 25, 15.0, "the timed flush", interval_s=0.01
            )
        assert worker.stats.points_dropped == 0
    assert rec.accepted == [BASE_MS + i for i in range(25)]
    assert stored(influxdb1, influx_db) == [(BASE_MS + i, float(i)) for i in range(25)]


async def test_rejected_batch_is_logged_counted_and_later_batches_go_on(
    influxdb1: InfluxDB1, influx_db: str, caplog: pytest.LogCaptureFixture
) -> None:
    queue: asyncio.Queue[Reading] = asyncio.Queue()
    async with InfluxV1Writer(influxdb1.url, influx_db) as writer:
        worker = SinkWorker("t", writer, queue, None, batch_size=2, flush_interval_s=5)
        async with running(worker):
            queue.put_nowait(reading(0))
            queue.put_nowait(reading(1))
            await eventually(
                lambda: worker.stats.points_written == 2, 15.0, "first batch", interval_s=0.01
            )
            # An int into the float field: InfluxDB refuses that line, keeps the other.
            queue.put_nowait(reading(2, 2))
            queue.put_nowait(reading(3))
            queue.put_nowait(reading(4))
            queue.put_nowait(reading(5))
            await eventually(
                lambda: worker.stats.points_written == 5, 15.0, "later batches", interval_s=0.01
            )
    assert worker.stats.points_dropped == 1
    assert stored(influxdb1, influx_db) == [(BASE_MS + i, float(i)) for i in (0, 1, 3, 4, 5)]
    rejected = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert len(rejected) == 1
    assert "field type conflict" in rejected[0]
    assert "HTTP 400" in rejected[0]


async def test_outage_loses_nothing_and_keeps_order(
    influxdb1_own: InfluxDB1, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dcim.sinks.worker")
    server, db = influxdb1_own, "outage"
    server.create_database(db)
    queue: asyncio.Queue[Reading] = asyncio.Queue(maxsize=1000)
    produced = 0
    stop = asyncio.Event()

    async def produce() -> None:  # a steady stream, like collectors polling
        nonlocal produced
        while not stop.is_set():
            for _ in range(5):
                await queue.put(reading(produced))
                produced += 1
            await asyncio.sleep(0.002)

    async with InfluxV1Writer(server.url, db, timeout_s=2.0) as writer:
        rec = Recorder(writer)
        worker = SinkWorker(
            "outage", rec, queue, Spool(tmp_path / "spool"),
            batch_size=50, flush_interval_s=0.05, retry_initial_s=0.05, retry_max_s=0.2,
        )  # fmt: skip
        async with running(worker):
            producer = asyncio.create_task(produce())
            await eventually(
                lambda: worker.stats.points_written >= 200,
                15.0,
                "writes before the outage",
                interval_s=0.01,
            )
            server.stop()
            await eventually(
                lambda: worker.stats.spool_batches >= 5,
                15.0,
                "batches spooled in the outage",
                interval_s=0.01,
            )
            spooled_at_restart = produced
            server.start()
            await eventually(
                lambda: produced >= spooled_at_restart + 300,
                15.0,
                "readings after restart",
                interval_s=0.01,
            )
            stop.set()
            await producer
            await eventually(
                lambda: worker.stats.points_written == produced,
                15.0,
                "every point written",
                interval_s=0.01,
            )
            assert worker.stats.spool_batches == 0
    assert worker.stats.points_dropped == 0
    assert rec.accepted == [BASE_MS + i for i in range(produced)]  # in order, once each
    assert stored(server, db) == [(BASE_MS + i, float(i)) for i in range(produced)]
    messages = [r.getMessage() for r in caplog.records if r.name == "dcim.sinks.worker"]
    assert sum("down" in m for m in messages) == 1
    assert sum("recovered" in m for m in messages) == 1


async def test_shutdown_while_down_spools_all_and_next_worker_replays(
    influxdb1_own: InfluxDB1, tmp_path: Path
) -> None:
    server, db = influxdb1_own, "shutdown"
    server.create_database(db)
    server.stop()
    queue: asyncio.Queue[Reading] = asyncio.Queue()
    async with InfluxV1Writer(server.url, db, timeout_s=2.0) as writer:
        spool_dir = tmp_path / "spool"
        first = SinkWorker("a", writer, queue, Spool(spool_dir), batch_size=40, flush_interval_s=60)
        task = asyncio.create_task(first.run())
        for i in range(100):
            queue.put_nowait(reading(i))
        await eventually(
            lambda: first.stats.spool_batches == 2, 15.0, "full batches spooled", interval_s=0.01
        )
        for i in range(100, 130):  # still queued when shutdown starts
            queue.put_nowait(reading(i))
        task.cancel()
        await first.aclose()
        assert queue.empty()
        assert first.stats.points_written == 0
        assert Spool(spool_dir).points == 130

        server.start()
        second = SinkWorker("b", writer, queue, Spool(spool_dir), retry_initial_s=0.05)
        async with running(second):
            await eventually(
                lambda: second.stats.points_written == 130, 15.0, "the replay", interval_s=0.01
            )
            assert second.stats.spool_batches == 0
    assert stored(server, db) == [(BASE_MS + i, float(i)) for i in range(130)]


async def test_without_spool_dir_an_outage_is_bridged_in_memory(influxdb1_own: InfluxDB1) -> None:
    server, db = influxdb1_own, "memory"
    server.create_database(db)
    queue: asyncio.Queue[Reading] = asyncio.Queue()
    async with InfluxV1Writer(server.url, db, timeout_s=2.0) as writer:
        worker = SinkWorker(
            "m", writer, queue, None, batch_size=10, flush_interval_s=0.05, retry_initial_s=0.05
        )
        async with running(worker):
            server.stop()
            for i in range(35):
                queue.put_nowait(reading(i))
            await eventually(
                lambda: worker.stats.spool_batches == 4,
                15.0,
                "batches held in memory",
                interval_s=0.01,
            )
            server.start()
            await eventually(
                lambda: worker.stats.points_written == 35, 15.0, "the replay", interval_s=0.01
            )
    assert stored(server, db) == [(BASE_MS + i, float(i)) for i in range(35)]


async def test_aclose_writes_held_batch_when_sink_is_up(
    influxdb1: InfluxDB1, influx_db: str, tmp_path: Path
) -> None:
    queue: asyncio.Queue[Reading] = asyncio.Queue()
    async with InfluxV1Writer(influxdb1.url, influx_db) as writer:
        worker = SinkWorker("t", writer, queue, Spool(tmp_path), flush_interval_s=60)
        async with running(worker):
            for i in range(7):
                queue.put_nowait(reading(i))
            await eventually(queue.empty, 15.0, "readings taken", interval_s=0.01)
        assert worker.stats.points_written == 7
        assert worker.stats.spool_batches == 0
    assert len(stored(influxdb1, influx_db)) == 7


async def test_hung_sink_does_not_block_the_queue(silent_port: int, tmp_path: Path) -> None:
    queue: asyncio.Queue[Reading] = asyncio.Queue(maxsize=100)
    spool = Spool(tmp_path)
    async with InfluxV1Writer(f"http://127.0.0.1:{silent_port}", "db", timeout_s=0.5) as writer:
        worker = SinkWorker("hung", writer, queue, spool, batch_size=100, flush_interval_s=0.05)
        async with running(worker):
            started = time.monotonic()
            for i in range(3000):
                await queue.put(reading(i))  # would stall for good if the consumer did
            assert time.monotonic() - started < 5.0
        assert worker.stats.points_written == 0
        assert worker.stats.points_dropped == 0
        assert spool.points == 3000
