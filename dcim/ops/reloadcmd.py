"""`dcim reload`: have the running monitor(s) of a config re-read it, and say how it went.

The config was checked before this runs (a broken file is never sent). Each
monitor of the config (one, or every shard on this machine) is found by its pid
file in its state directory and sent SIGHUP; its answer is the `reload` entry it
writes to its audit log, which this waits for. Under systemd, `systemctl reload
dcim` sends the same signal.
"""

from __future__ import annotations

import getpass
import os
import signal
import sys
import time
from pathlib import Path

from dcim.audit import AuditLog, read_audit
from dcim.inventory import Config
from dcim.ops.service import AUDIT_FILE, PID_FILE, SELF_ACTOR

#: Seconds between looks at the audit log while waiting for the monitor's answer.
POLL_S = 0.1


def running_monitors(state_dir: Path) -> list[tuple[int, Path]]:
    """(pid, state dir) of every live monitor with a pid file under `state_dir` (and its
    shard folders). A stale file (the process is gone, or the pid is now another
    program's) is skipped."""
    found = []
    for pid_file in [state_dir / PID_FILE, *sorted(state_dir.glob(f"shard-*-of-*/{PID_FILE}"))]:
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if b"dcim" in cmdline:
            found.append((pid, pid_file.parent))
    return found


def _answer(audit_file: Path, since: float) -> tuple[str, dict[str, object]] | None:
    for entry in read_audit(audit_file):
        if entry.action == "reload" and entry.actor == SELF_ACTOR and entry.at >= since:
            return entry.result, dict(entry.detail)
    return None


def request_reload(config: Config, *, timeout_s: float) -> int:
    monitors = running_monitors(config.monitor.state_dir)
    if not monitors:
        print(
            f"dcim reload: no running monitor found (no live {PID_FILE} under "
            f"{config.monitor.state_dir})",
            file=sys.stderr,
        )
        return 3
    user = getpass.getuser()
    code = 0
    for pid, state_dir in monitors:
        audit = AuditLog(state_dir / AUDIT_FILE)
        since = time.time()
        if audit.path.exists():
            # only into a log the monitor already has: one created here would belong to
            # whoever runs this (root), and the monitor's own user could not append to it
            audit.record(
                actor=user, source="cli", action="reload", target=f"pid {pid}", result="requested"
            )
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout_s
        answer = _answer(audit.path, since)
        while answer is None and time.monotonic() < deadline:
            time.sleep(POLL_S)
            answer = _answer(audit.path, since)
        if answer is None:
            print(f"dcim reload: pid {pid}: no answer within {timeout_s:g} s", file=sys.stderr)
            code = 1
            continue
        result, detail = answer
        if result == "applied":
            counts = ", ".join(
                f"{len(_names(detail, k))} {k}" for k in ("added", "removed", "changed")
            )
            print(f"pid {pid} ({state_dir}): applied: {counts}")
            for name in _names(detail, "needs_restart"):
                print(f"  takes effect at the next restart: {name}")
        else:
            code = 1
            print(f"pid {pid} ({state_dir}): refused; the running config stays:", file=sys.stderr)
            for problem in _names(detail, "problems"):
                print(f"  {problem}", file=sys.stderr)
    return code


def _names(detail: dict[str, object], key: str) -> list[str]:
    value = detail.get(key)
    return [str(v) for v in value] if isinstance(value, list) else []
