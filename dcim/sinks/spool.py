"""Bounded FIFO of line-protocol batches: on disk (survives restarts) or in memory.

One file per batch, named `<seq>-<lines>.lp`, so restart needs only a directory
listing. A batch is written to a temp file and renamed into place, so a crash
never leaves half a batch under a batch name. When full, the OLDEST batches go.

The disk can refuse (full, read-only, permissions) or hold a file we cannot read:
`FallbackSpool` then keeps batches in a bounded memory spool behind the disk one,
and an unreadable batch file is moved aside; both are counted and logged, so the
sink worker using the spool never sees an OSError.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{16})-(\d+)\.lp$")
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
#: Memory that holds batches while the spool's disk refuses them.
DEFAULT_FALLBACK_BYTES = 64 * 1024 * 1024
#: Suffix of batch files that could not be read back (kept for a post-mortem).
_ASIDE = ".unreadable"


@dataclass(frozen=True, slots=True)
class SpoolBatch:
    """One spooled batch: its sequence number, body and number of lines (points)."""

    seq: int
    body: bytes
    lines: int


@dataclass(frozen=True, slots=True)
class _Entry:
    seq: int
    lines: int
    size: int


class BatchStore(Protocol):
    """What the sink worker needs from a spool."""

    @property
    def size_bytes(self) -> int: ...
    @property
    def batches(self) -> int: ...
    @property
    def points(self) -> int: ...
    @property
    def lost_points(self) -> int: ...
    @property
    def memory_points(self) -> int: ...
    @property
    def last_on_disk(self) -> bool: ...
    def append(self, body: bytes, lines: int) -> int: ...
    def peek(self) -> SpoolBatch | None: ...
    def remove(self, seq: int) -> bool: ...


class _Bounded:
    """Index and byte accounting shared by both stores."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self._index: deque[_Entry] = deque()
        self._bytes = 0
        self._points = 0
        self._next_seq = 1
        #: Points dropped to respect max_bytes, since this object was created.
        self.dropped_points = 0
        #: Points of batch files that could not be read back (moved aside, counted).
        self._lost_points = 0
        #: Failed disk operations (write, read, remove), since this object was created.
        self.io_errors = 0
        self._on_disk = isinstance(self, Spool)

    @property
    def last_on_disk(self) -> bool:
        """Whether the batch last appended is on disk (survives the process)."""
        return self._on_disk

    @property
    def memory_points(self) -> int:
        """Points held only in memory (all of them, for a memory spool)."""
        return 0 if self._on_disk else self._points

    @property
    def lost_points(self) -> int:
        """Points in batches that could not be read back (not counted in `dropped_points`)."""
        return self._lost_points

    @property
    def size_bytes(self) -> int:
        """Bytes of line protocol held."""
        return self._bytes

    @property
    def batches(self) -> int:
        """Number of batches held."""
        return len(self._index)

    @property
    def points(self) -> int:
        """Number of lines (points) held."""
        return self._points

    def _forget(self, entry: _Entry) -> None:
        self._bytes -= entry.size
        self._points -= entry.lines

    def _make_room(self, size: int) -> int:
        """Drop oldest batches until `size` more bytes fit; returns points dropped."""
        dropped = 0
        while self._index and self._bytes + size > self.max_bytes:
            entry = self._index.popleft()
            self._forget(entry)
            self._discard(entry)
            dropped += entry.lines
        return dropped

    def _discard(self, entry: _Entry) -> None:
        raise NotImplementedError

    def _store(self, seq: int, lines: int, body: bytes) -> None:
        raise NotImplementedError

    def append(self, body: bytes, lines: int) -> int:
        """Add a batch as the newest; returns points dropped (oldest first) to fit it.

        A batch larger than max_bytes on its own is dropped itself.
        """
        size = len(body)
        if size > self.max_bytes:
            self.dropped_points += lines
            return lines
        dropped = self._make_room(size)
        seq = self._next_seq
        self._store(seq, lines, body)
        self._next_seq += 1
        self._index.append(_Entry(seq, lines, size))
        self._bytes += size
        self._points += lines
        self.dropped_points += dropped
        return dropped

    def remove(self, seq: int) -> bool:
        """Remove the oldest batch if it is `seq` (it may have been dropped meanwhile)."""
        if not self._index or self._index[0].seq != seq:
            return False
        entry = self._index.popleft()
        self._forget(entry)
        self._discard(entry)
        return True


class MemorySpool(_Bounded):
    """In-memory store, for a worker without a spool directory: lost on exit."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        super().__init__(max_bytes)
        self._bodies: dict[int, bytes] = {}

    def _store(self, seq: int, lines: int, body: bytes) -> None:
        self._bodies[seq] = body

    def _discard(self, entry: _Entry) -> None:
        self._bodies.pop(entry.seq, None)

    def peek(self) -> SpoolBatch | None:
        """The oldest batch, left in place."""
        if not self._index:
            return None
        entry = self._index[0]
        return SpoolBatch(entry.seq, self._bodies[entry.seq], entry.lines)


class Spool(_Bounded):
    """Directory of batch files; a new Spool on the same directory resumes in order.

    One process should own a directory at a time. `fsync=True` also survives power
    loss at the cost of a disk flush per batch; rename alone covers process crashes.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        max_bytes: int = DEFAULT_MAX_BYTES,
        *,
        fsync: bool = False,
    ) -> None:
        super().__init__(max_bytes)
        self.directory = Path(directory)
        self._fsync = fsync
        self.directory.mkdir(parents=True, exist_ok=True)
        self._load()

    def __repr__(self) -> str:
        return f"Spool({str(self.directory)!r}, batches={self.batches}, bytes={self.size_bytes})"

    def _path(self, seq: int, lines: int) -> Path:
        return self.directory / f"{seq:016d}-{lines}.lp"

    def _load(self) -> None:
        entries = []
        for path in self.directory.iterdir():
            if path.name.endswith(".tmp"):
                with contextlib.suppress(OSError):  # a read-only disk keeps it: harmless
                    path.unlink(missing_ok=True)  # a write interrupted by a crash
                continue
            match = _NAME.match(path.name)
            if match is None:
                if not path.name.endswith(_ASIDE):
                    log.warning("spool %s: ignoring unexpected file %s", self.directory, path.name)
                continue
            try:
                size = path.stat().st_size
            except OSError as exc:
                log.error("spool %s: cannot read %s: %s", self.directory, path.name, exc)
                self.io_errors += 1
                continue
            entries.append(_Entry(int(match[1]), int(match[2]), size))
        entries.sort(key=lambda e: e.seq)
        self._index.extend(entries)
        self._bytes = sum(e.size for e in entries)
        self._points = sum(e.lines for e in entries)
        self._next_seq = entries[-1].seq + 1 if entries else 1
        if entries:
            log.info(
                "spool %s: %d batches (%d points) left from a previous run",
                self.directory,
                len(entries),
                self._points,
            )

    def _store(self, seq: int, lines: int, body: bytes) -> None:
        """Write one batch file; OSError (disk full, read-only...) leaves nothing behind."""
        tmp = self.directory / f".{seq:016d}.tmp"
        try:
            with tmp.open("wb") as f:
                f.write(body)
                if self._fsync:
                    f.flush()
                    os.fsync(f.fileno())
            tmp.replace(self._path(seq, lines))
        except OSError:
            self.io_errors += 1
            with contextlib.suppress(OSError):  # a half-written temp file would eat space
                tmp.unlink(missing_ok=True)
            raise

    def _discard(self, entry: _Entry) -> None:
        try:
            self._path(entry.seq, entry.lines).unlink(missing_ok=True)
        except OSError as exc:
            # the batch is delivered: at worst it is sent again after a restart, and a
            # point with the same series and time overwrites itself in InfluxDB
            self.io_errors += 1
            log.error("spool %s: cannot remove a delivered batch: %s", self.directory, exc)

    def peek(self) -> SpoolBatch | None:
        """The oldest batch, read from disk and left in place.

        A batch file that cannot be read (permissions, I/O error, empty) is moved
        aside as `<name>.unreadable`, its points counted in `lost_points` and logged.
        """
        while self._index:
            entry = self._index[0]
            path = self._path(entry.seq, entry.lines)
            try:
                body = path.read_bytes()
            except FileNotFoundError:  # removed behind our back: skip it
                self._index.popleft()
                self._forget(entry)
                continue
            except OSError as exc:
                self._set_aside(entry, path, str(exc))
                continue
            if not body.strip():
                self._set_aside(entry, path, "empty file")
                continue
            return SpoolBatch(entry.seq, body, entry.lines)
        return None

    def _set_aside(self, entry: _Entry, path: Path, why: str) -> None:
        self._index.popleft()
        self._forget(entry)
        self.io_errors += 1
        self._lost_points += entry.lines
        try:
            path.replace(path.with_name(path.name + _ASIDE))
        except OSError:
            with contextlib.suppress(OSError):
                path.unlink()
        log.error(
            "spool %s: batch %s unreadable (%s): %d points lost, file set aside",
            self.directory,
            path.name,
            why,
            entry.lines,
        )


class FallbackSpool:
    """A disk spool with a bounded memory spool behind it for when the disk refuses.

    Every append tries the disk first (a disk that freed space is used again at
    once); a refused batch goes to memory, logged once per failure spell and
    counted in `io_errors`. Reading serves the disk's batches first. Memory
    batches carry negative sequence numbers, so `remove` knows where one lives.
    """

    def __init__(self, disk: Spool, memory: MemorySpool | None = None) -> None:
        self.disk = disk
        self.memory = memory or MemorySpool(DEFAULT_FALLBACK_BYTES)
        self._failing = False
        self._last_on_disk = True

    @property
    def last_on_disk(self) -> bool:
        return self._last_on_disk

    def __repr__(self) -> str:
        return f"FallbackSpool({self.disk!r}, memory_batches={self.memory.batches})"

    @property
    def size_bytes(self) -> int:
        return self.disk.size_bytes + self.memory.size_bytes

    @property
    def batches(self) -> int:
        return self.disk.batches + self.memory.batches

    @property
    def points(self) -> int:
        return self.disk.points + self.memory.points

    @property
    def memory_points(self) -> int:
        """Points held only in memory (lost if the process dies)."""
        return self.memory.points

    @property
    def lost_points(self) -> int:
        return self.disk.lost_points

    @property
    def io_errors(self) -> int:
        return self.disk.io_errors

    def append(self, body: bytes, lines: int) -> int:
        try:
            dropped = self.disk.append(body, lines)
        except OSError as exc:
            if not self._failing:
                self._failing = True
                log.error(
                    "spool %s: cannot write a batch (%s); holding batches in memory "
                    "(up to %d MiB, lost if the process dies) until the disk takes them",
                    self.disk.directory,
                    exc.strerror or exc,
                    self.memory.max_bytes // (1024 * 1024),
                )
            self._last_on_disk = False
            return self.memory.append(body, lines)
        self._last_on_disk = True
        if self._failing:
            self._failing = False
            log.warning("spool %s: the disk takes batches again", self.disk.directory)
        return dropped

    def peek(self) -> SpoolBatch | None:
        batch = self.disk.peek()
        if batch is not None:
            return batch
        held = self.memory.peek()
        if held is None:
            return None
        return SpoolBatch(-held.seq, held.body, held.lines)

    def remove(self, seq: int) -> bool:
        return self.memory.remove(-seq) if seq < 0 else self.disk.remove(seq)
