"""Log lines as text, JSON, and under journald (priority prefix, no second timestamp)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import logging, sys
from dcim.logsetup import setup_logging
setup_logging("DEBUG", sys.argv[1])
log = logging.getLogger("dcim.test")
log.debug("polled %d devices", 3)
log.warning("device ups-1: down (timeout)")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("bug")
"""
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def run(tmp_path: Path, log_format: str, *, journal: bool) -> list[str]:
    """Run SCRIPT with stderr into a file; JOURNAL_STREAM names that file when `journal`."""
    out = tmp_path / f"{log_format}-{journal}.log"
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    with out.open("wb") as stderr:
        if journal:
            stat = os.fstat(stderr.fileno())
            env["JOURNAL_STREAM"] = f"{stat.st_dev}:{stat.st_ino}"
        subprocess.run(
            [sys.executable, "-c", SCRIPT, log_format], stderr=stderr, env=env, check=True
        )
    return out.read_text().splitlines()


def test_text_lines_carry_time_level_and_logger(tmp_path: Path) -> None:
    lines = run(tmp_path, "text", journal=False)
    assert STAMP.match(lines[0])
    assert lines[0].endswith("DEBUG   dcim.test: polled 3 devices")
    assert lines[1].endswith("WARNING dcim.test: device ups-1: down (timeout)")


def test_json_lines_are_one_object_each(tmp_path: Path) -> None:
    records = [json.loads(line) for line in run(tmp_path, "json", journal=False)]
    assert [(r["level"], r["logger"], r["message"]) for r in records] == [
        ("DEBUG", "dcim.test", "polled 3 devices"),
        ("WARNING", "dcim.test", "device ups-1: down (timeout)"),
        ("ERROR", "dcim.test", "bug"),
    ]
    assert "ZeroDivisionError" in records[2]["exc"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$", records[0]["ts"])


def test_under_journald_the_priority_replaces_the_timestamp(tmp_path: Path) -> None:
    lines = run(tmp_path, "text", journal=True)
    assert lines[0] == "<7>dcim.test: polled 3 devices"
    assert lines[1] == "<4>dcim.test: device ups-1: down (timeout)"
    assert lines[2] == "<3>dcim.test: bug"
    # a traceback: every line keeps the priority, none carries a timestamp
    assert all(line.startswith("<3>") for line in lines[2:])
    assert not any(STAMP.match(line.removeprefix("<3>")) for line in lines)


def test_json_under_journald_is_prefixed_too(tmp_path: Path) -> None:
    lines = run(tmp_path, "json", journal=True)
    assert lines[1].startswith("<4>{")
    assert json.loads(lines[1][3:])["message"] == "device ups-1: down (timeout)"


@pytest.mark.parametrize("value", ["", "garbage", "1:2"])
def test_a_journal_stream_that_is_not_our_stderr_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    from dcim.logsetup import under_journald

    monkeypatch.setenv("JOURNAL_STREAM", value)
    with (tmp_path / "x").open("w") as stream:
        assert not under_journald(stream)
