"""Process-wide logging: one line per event, as text or JSON, journald-aware.

Under systemd, stderr goes to the journal, which stamps every line itself and
reads a `<N>` syslog priority prefix (sd-daemon(3)): there a line carries the
priority instead of a timestamp, so `journalctl -p warning` filters by level
and no line shows two times. JSON lines (`--log-format json`) are for log
shippers; they keep their timestamp and also take the prefix under journald.
The JSON formatter is a dozen lines over `json.dumps`, so no library for it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Literal, TextIO

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(name)s: %(message)s"


def syslog_priority(levelno: int) -> int:
    """The syslog priority (RFC 5424) of a logging level: 3 err ... 7 debug."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


def under_journald(stream: TextIO | None = None) -> bool:
    """Whether `stream` (stderr) is the journal stream systemd gave us (JOURNAL_STREAM)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        stat = os.fstat((stream or sys.stderr).fileno())
    except (OSError, ValueError, AttributeError):
        return False
    # a child of the service may inherit the variable with stderr redirected elsewhere
    return (stat.st_dev, stat.st_ino) == (int(device), int(inode))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts (UTC, ISO 8601), level, logger, message[, exc]."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


class JournalFormatter(logging.Formatter):
    """Prefixes each line with its `<N>` priority; journald strips it and files the level.

    A multi-line message (a traceback) gets the prefix on every line, so each
    journal entry carries the right priority.
    """

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self._inner = inner

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in self._inner.format(record).splitlines())


def build_formatter(log_format: LogFormat, *, journald: bool) -> logging.Formatter:
    if log_format == "json":
        inner: logging.Formatter = JsonFormatter()
    else:
        inner = logging.Formatter(JOURNAL_FORMAT if journald else TEXT_FORMAT)
    return JournalFormatter(inner) if journald else inner


def setup_logging(level: str = "INFO", log_format: LogFormat = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(build_formatter(log_format, journald=under_journald(sys.stderr)))
    logging.basicConfig(level=getattr(logging, level, logging.INFO), handlers=[handler], force=True)
    # chatty at INFO about internals operators cannot act on (the trap receiver
    # quiets its own SNMP engine's logger the same way)
    for noisy in ("asyncio", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
