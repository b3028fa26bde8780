"""Spool: FIFO order, byte bound (oldest dropped), restart, crash leftovers."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcim.sinks.spool import BatchStore, MemorySpool, Spool


def drain(spool: BatchStore) -> list[tuple[bytes, int]]:
    out = []
    while (batch := spool.peek()) is not None:
        out.append((batch.body, batch.lines))
        assert spool.remove(batch.seq)
    return out


@pytest.fixture(params=["disk", "memory"])
def spool(request: pytest.FixtureRequest, tmp_path: Path) -> BatchStore:
    return Spool(tmp_path / "spool") if request.param == "disk" else MemorySpool()


def test_fifo_and_accounting(spool: BatchStore) -> None:
    assert spool.peek() is None
    for i in range(5):
        assert spool.append(f"m v={i} {i}".encode(), 1) == 0
    assert (spool.batches, spool.points) == (5, 5)
    assert spool.size_bytes == sum(len(f"m v={i} {i}") for i in range(5))
    assert [body for body, _ in drain(spool)] == [f"m v={i} {i}".encode() for i in range(5)]
    assert (spool.batches, spool.points, spool.size_bytes) == (0, 0, 0)


def test_remove_only_the_oldest(spool: BatchStore) -> None:
    spool.append(b"a", 1)
    spool.append(b"b", 1)
    oldest = spool.peek()
    assert oldest is not None
    assert not spool.remove(oldest.seq + 1)
    assert spool.remove(oldest.seq)
    assert not spool.remove(oldest.seq)


def test_bound_drops_oldest_and_counts_points(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=100)
    assert [spool.append(bytes([65 + i]) * 30, 3) for i in range(4)] == [0, 0, 0, 3]
    assert spool.size_bytes == 120 - 30
    assert spool.dropped_points == 3
    assert spool.append(b"E" * 60, 6) == 6  # two oldest go
    assert spool.dropped_points == 9
    assert [body[:1] for body, _ in drain(spool)] == [b"D", b"E"]
    assert spool.append(b"X" * 101, 7) == 7  # cannot fit at all: dropped itself
    assert spool.batches == 0
    assert len(list(tmp_path.iterdir())) == 0


def test_restart_resumes_in_order(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    for i in range(12):  # past 9 -> 10 checks numeric, not lexical, order
        first.append(f"line {i}\nline {i}b".encode(), 2)
    first.remove(1)
    second = Spool(tmp_path)
    assert (second.batches, second.points, second.size_bytes) == (
        first.batches,
        first.points,
        first.size_bytes,
    )
    second.append(b"new", 1)
    assert [body for body, _ in drain(second)] == [
        *[f"line {i}\nline {i}b".encode() for i in range(1, 12)],
        b"new",
    ]


def test_crash_leftovers_are_ignored(tmp_path: Path) -> None:
    Spool(tmp_path).append(b"kept", 1)
    (tmp_path / ".0000000000000002.tmp").write_bytes(b"half a ba")
    (tmp_path / "notes.txt").write_text("not a batch")
    spool = Spool(tmp_path)
    assert drain(spool) == [(b"kept", 1)]
    assert not (tmp_path / ".0000000000000002.tmp").exists()


def test_file_removed_behind_our_back_is_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(b"a", 1)
    spool.append(b"b", 1)
    (tmp_path / "0000000000000001-1.lp").unlink()
    assert drain(spool) == [(b"b", 1)]
