"""Is the state directory usable? One clear line when it is not, before anything runs.

`monitor.state_dir` holds the spool, the alert store and the audit log. A directory
that cannot be created or written would otherwise surface as a chained traceback
from whichever component touched it first.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from dcim.errors import StateDirError


def state_dir_problem(path: Path) -> str | None:
    """Why `path` cannot serve as a state directory, without changing anything; None if fine.

    A missing directory is fine when its nearest existing ancestor is a writable directory
    (the monitor creates it at start).
    """
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        what = "is not a directory" if probe == path else f"cannot be created: {probe} is a file"
        return f"{path} {what}"
    if not os.access(probe, os.W_OK | os.X_OK):
        reason = "read-only filesystem" if _read_only(probe) else "permission denied"
        if probe == path:
            return f"{path} is not writable ({reason})"
        return f"{path} cannot be created: {probe} is not writable ({reason})"
    return None


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def prepare_state_dir(path: Path, setting: str = "monitor.state_dir") -> None:
    """Create `path` if needed and prove it writable; StateDirError (one line) if not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.ENOSPC:
            reason = "no space left on the device"
        raise StateDirError(f"{setting}: {path}: {reason}") from None
