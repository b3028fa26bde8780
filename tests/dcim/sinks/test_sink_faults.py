"""Sink I/O faults: a full or read-only spool disk, unreadable spool files, a file sink on a
full disk, and a sink that comes back while the worker is deep in its backoff.

Each one used to lose data silently or end a task nobody awaited; now each is retried,
or degraded with a counted and logged loss. The full disk is a real tmpfs where the
machine lets us mount one (root, as here and in CI); elsewhere it is simulated below
the spool (its file writes fail with ENOSPC), which the test says in its output.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import pytest

from dcim.errors import SinkUnavailableError
from dcim.reading import Reading
from dcim.sinks.file import FileWriter
from dcim.sinks.influx import InfluxV1Writer
from dcim.sinks.spool import Spool
from dcim.sinks.worker import SinkWorker
from tests.support.servers import InfluxDB1
from tests.support.smallfs import SmallFs, small_fs
from tests.support.waiting import eventually

BASE_MS = 1_700_000_000_000
TAGS = MappingProxyType({"site": "dc1", "device": "ups-1"})


def reading(i: int) -> Reading:
    return Reading("ups-1", "ups.load_pct", float(i), "%", (BASE_MS + i) * 1_000_000, TAGS)


def stored_times(server: InfluxDB1, db: str) -> list[int]:
    return [int(r["time"]) for r in server.query('SELECT "load_pct" FROM "ups"', db)]


@pytest.fixture
def full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmallFs]:
    """A 256 KiB filesystem; `fill()` makes the next spool write fail with ENOSPC."""
    with small_fs(tmp_path / "fs", 256) as fs:
        if not fs.mounted:
            print("no tmpfs here (not root?): simulating a full disk below the spool")
            full = {"on": False}
            real_store = Spool._store

            def store(self: Spool, seq: int, lines: int, body: bytes) -> None:
                if full["on"]:
                    self.io_errors += 1
                    raise OSError(errno.ENOSPC, "No space left on device (simulated)")
                real_store(self, seq, lines, body)

            monkeypatch.setattr(Spool, "_store", store)
            monkeypatch.setattr(SmallFs, "fill", lambda _: full.update(on=True))
            monkeypatch.setattr(SmallFs, "free", lambda _: full.update(on=False))
        yield fs


async def test_full_spool_disk_keeps_the_sink_alive_and_loses_nothing(
    influxdb1_own: InfluxDB1, full_disk: SmallFs, caplog: pytest.LogCaptureFixture
) -> None:
    server, db = influxdb1_own, "fulldisk"
    server.create_database(db)
    server.stop()  # InfluxDB down: everything goes to the spool
    queue: asyncio.Queue[Reading] = asyncio.Queue()
    spool = Spool(full_disk.path / "spool")
    async with InfluxV1Writer(server.url, db, timeout_s=2.0) as writer:
        worker = SinkWorker(
            "full",
            writer,
            queue,
            spool,
            batch_size=50,
            flush_interval_s=0.05,
            retry_initial_s=0.1,
            retry_max_s=0.5,
        )
        task = asyncio.create_task(worker.run())
        for i in range(100):
            queue.put_nowait(reading(i))
        await eventually(lambda: spool.points == 100, 20.0, "two batches on disk", interval_s=0.01)
        full_disk.fill()
        for i in range(100, 300):
            queue.put_nowait(reading(i))
        await eventually(
            lambda: worker.stats.points_in_memory >= 200,
            20.0,
            "batches held in memory",
            interval_s=0.01,
        )
        stats = worker.stats
        assert not task.done(), "the sink worker died on a full disk"
        assert stats.spool_errors >= 1
        assert stats.points_dropped == 0
        assert "cannot write a batch" in caplog.text

        server.start()
        await eventually(
            lambda: worker.stats.points_written == 300,
            20.0,
            "the replay after the outage",
            interval_s=0.01,
        )
        assert not task.done()
        task.cancel()
        await worker.aclose()
    assert sorted(stored_times(server, db)) == [BASE_MS + i for i in range(300)]
    assert worker.stats.points_dropped == 0


async def test_unreadable_and_garbage_spool_files_at_start_are_counted_not_fatal(
    influxdb1: InfluxDB1, influx_db: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "spool"
    directory.mkdir()
    (directory / f"{1:016d}-3.lp").write_bytes(b"\xff\xfe not line protocol\n\x00\x01\nx y")
    (directory / f"{2:016d}-7.lp").mkdir()  # cannot be read as a file
    (directory / f"{3:016d}-0.lp").write_bytes(b"")  # cut to nothing by a crash
    good = "\n".join(f"ups,device=ups-1 load_pct={i} {BASE_MS + i}" for i in range(4))
    (directory / f"{4:016d}-4.lp").write_text(good)
    queue: asyncio.Queue[Reading] = asyncio.Queue()
    async with InfluxV1Writer(influxdb1.url, influx_db) as writer:
        worker = SinkWorker("corrupt", writer, queue, Spool(directory), retry_initial_s=0.05)
        task = asyncio.create_task(worker.run())
        await eventually(
            lambda: worker.stats.spool_batches == 0, 20.0, "the spool worked off", interval_s=0.01
        )
        assert not task.done()
        assert worker.stats.points_written == 4
        # 3 refused by InfluxDB, 7 in the unreadable entry, 0 in the empty one
        assert worker.stats.points_dropped == 3 + 7
        assert worker.stats.spool_errors == 2
        task.cancel()
        await worker.aclose()
    assert sorted(stored_times(influxdb1, influx_db)) == [BASE_MS + i for i in range(4)]
    assert "unreadable" in caplog.text
    assert (directory / f"{2:016d}-7.lp.unreadable").exists()  # kept for a post-mortem


async def test_file_sink_on_a_full_disk_writes_each_batch_once(tmp_path: Path) -> None:
    with small_fs(tmp_path / "fs", 256) as fs:
        if not fs.mounted:
            pytest.skip("needs a real tmpfs: a cut write cannot be simulated faithfully")
        writer = FileWriter(fs.path / "out.lp")
        fs.fill()
        body = b"\n".join(b"m,device=d v=%d %d" % (i, i) for i in range(5000))
        with pytest.raises(SinkUnavailableError):
            await writer.write(body)
        assert (fs.path / "out.lp").stat().st_size == 0  # nothing half-written left behind
        assert not await writer.probe()
        fs.free()
        assert await writer.probe()
        await writer.write(body)
        await writer.aclose()
        lines = (fs.path / "out.lp").read_bytes().splitlines()
    assert len(lines) == 5000
    assert len(set(lines)) == 5000


async def test_a_sink_back_during_a_long_backoff_is_used_within_seconds(
    influxdb1_own: InfluxDB1, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server, db = influxdb1_own, "probe"
    server.create_database(db)
    server.stop()
    queue: asyncio.Queue[Reading] = asyncio.Queue()
    async with InfluxV1Writer(server.url, db, timeout_s=1.0) as writer:
        # backoff 3 s, then 6 s: without a probe the sink is used again only after it
        worker = SinkWorker(
            "probe", writer, queue, Spool(tmp_path), flush_interval_s=0.05, retry_initial_s=3.0
        )
        task = asyncio.create_task(worker.run())
        for i in range(10):
            queue.put_nowait(reading(i))
        await eventually(
            lambda: caplog.text.count("down, spooling") == 1,
            20.0,
            "the sink marked down",
            interval_s=0.01,
        )
        await asyncio.sleep(3.5)  # the first retry has failed: now in the 6 s backoff
        server.start()
        back = time.monotonic()
        await eventually(
            lambda: worker.stats.points_written == 10, 10, "the replay", interval_s=0.01
        )
        recovery = time.monotonic() - back
        task.cancel()
        await worker.aclose()
    assert recovery < 3.0, f"recovered {recovery:.1f} s after InfluxDB came back"
