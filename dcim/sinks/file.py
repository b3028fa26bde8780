"""Append line protocol to a local file: the sink when no InfluxDB is configured."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

from dcim.errors import SinkUnavailableError


class FileWriter:
    """Same `write(body)` interface as the InfluxDB writers; one line per point."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.name = f"file {self.path}"
        self._file: BinaryIO | None = None

    def __repr__(self) -> str:
        return f"FileWriter({str(self.path)!r})"

    async def write(self, body: bytes) -> None:
        """Append the body and a newline; an OS error (disk full...) is retryable."""
        if not body:
            return
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("ab")
            # Small sequential appends: blocking the loop briefly is cheaper than a thread hop.
            self._file.write(body + b"\n")
            self._file.flush()
        except OSError as exc:
            raise SinkUnavailableError(f"{self.name}: {exc}") from exc

    async def aclose(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
