"""A small filesystem to fill up or make read-only: a real tmpfs where the machine lets us.

Tests run as root here and in CI, where `mount -t tmpfs` works; elsewhere (no
privilege, a container without CAP_SYS_ADMIN) `SmallFs.mounted` is False and the
tests that need a full disk simulate it below the code under test (they say so).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path


class SmallFs:
    """A directory on a tmpfs of `size_kb` KiB (when `mounted`), else a plain directory."""

    def __init__(self, path: Path, mounted: bool) -> None:
        self.path = path
        self.mounted = mounted

    def fill(self) -> None:
        """Take every free byte, so the next write fails with ENOSPC."""
        filler = self.path / ".filler"
        with filler.open("ab", buffering=0) as f:
            for size in (65536, 4096, 512, 1):  # big steps, then the last bytes
                with contextlib.suppress(OSError):
                    while f.write(b"\0" * size):
                        pass

    def free(self) -> None:
        """Give the space back."""
        (self.path / ".filler").unlink(missing_ok=True)

    def read_only(self, on: bool) -> None:
        """Remount read-only (or writable again)."""
        mode = "ro" if on else "rw"
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.path)], check=True)


@contextlib.contextmanager
def small_fs(path: Path, size_kb: int = 256) -> Iterator[SmallFs]:
    """A tmpfs of `size_kb` mounted at `path` for the block, if the machine allows it."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = False
    if os.geteuid() == 0:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)],
            capture_output=True,
            check=False,
        )
        mounted = done.returncode == 0
    try:
        yield SmallFs(path, mounted)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)
