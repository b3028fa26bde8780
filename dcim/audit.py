"""Append-only audit log of operator actions: who, from where, when, what, result.

One JSON object per line, written and flushed before the action's answer is sent,
so the trail survives a crash of the monitor right after. The author is always
the authenticated identity (the API token's name, the board user), never a name
the client sent. Readers (`dcim alerts audit`) take whatever lines are whole: a
line cut by a full disk or a crash is skipped and counted, never fatal.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The audit log's file name under `monitor.state_dir` (unless `monitor.audit_file` says).
DEFAULT_AUDIT_FILE = "audit.jsonl"

#: What was done; free text is allowed, these are the ones the monitor writes.
ACTIONS = (
    "acknowledge",
    "silence",
    "unsilence",
    "maintenance",
    "login",
    "logout",
    "auth_failure",
    "reload",
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One operator action as written to the log."""

    at: float
    actor: str
    source: str
    action: str
    target: str
    result: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = asdict(self)
        data["detail"] = dict(self.detail)
        return json.dumps(data, ensure_ascii=False, sort_keys=True)


class AuditLog:
    """The audit trail at `path` (JSON lines, append only, flushed per entry)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        #: Entries that could not be written (disk full, read-only): counted, logged.
        self.write_failures = 0

    def record(
        self,
        *,
        actor: str,
        source: str,
        action: str,
        target: str,
        result: str,
        detail: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Write one entry; a write failure is logged and counted, never raised."""
        entry = AuditEntry(time.time(), actor, source, action, target, result, dict(detail or {}))
        line = entry.to_json() + "\n"
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                try:
                    os.write(fd, line.encode("utf-8"))
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                self.write_failures += 1
                log.error(
                    "audit log %s: cannot record %s by %s on %s: %s",
                    self.path,
                    action,
                    actor,
                    target,
                    exc.strerror or exc,
                )
        return entry

    def entries(self) -> Iterator[AuditEntry]:
        """Whole entries in the order written; cut or garbled lines are skipped."""
        yield from read_audit(self.path)


def read_audit(path: Path) -> Iterator[AuditEntry]:
    if not path.exists():
        return
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            try:
                data = json.loads(line)
                yield AuditEntry(
                    at=float(data["at"]),
                    actor=str(data["actor"]),
                    source=str(data["source"]),
                    action=str(data["action"]),
                    target=str(data["target"]),
                    result=str(data["result"]),
                    detail=dict(data.get("detail") or {}),
                )
            except (ValueError, KeyError, TypeError):
                log.warning("audit log %s line %d: not a whole entry, skipped", path, number)
