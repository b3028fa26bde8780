"""Append line protocol to a local file: the sink when no InfluxDB is configured."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import TracebackType
from typing import Self

from dcim.errors import SinkUnavailableError


class FileWriter:
    """Same `write(body)` interface as the InfluxDB writers; one line per point."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.name = f"file {self.path}"
        self._fd: int | None = None

    def __repr__(self) -> str:
        return f"FileWriter({str(self.path)!r})"

    async def write(self, body: bytes) -> None:
        """Append the body and a newline, whole or not at all; OS errors are retryable.

        A write cut short (disk full) is truncated away, so the retry neither
        duplicates the lines that made it nor leaves half a line behind.
        """
        if not body:
            return
        data = body + b"\n"
        try:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            fd = self._fd
            start = os.fstat(fd).st_size
            # Small sequential appends: blocking the loop briefly is cheaper than a thread hop.
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                raise
        except OSError as exc:
            raise SinkUnavailableError(f"{self.name}: {exc}") from exc

    async def probe(self) -> bool:
        """True when the file's filesystem has room again (a full disk is the usual fault)."""
        try:
            stat = os.statvfs(self.path.parent)
        except OSError:
            return False
        return stat.f_bavail > 0 and os.access(self.path.parent, os.W_OK)

    async def aclose(self) -> None:
        """Close the file."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
