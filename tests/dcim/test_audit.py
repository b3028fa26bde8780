"""The audit log: entries in order, whole lines only, write failures counted not raised."""

from __future__ import annotations

from pathlib import Path

from dcim.audit import AuditLog


def test_entries_come_back_in_order_and_cut_lines_are_skipped(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit" / "audit.jsonl")
    audit.record(actor="alice", source="127.0.0.1", action="acknowledge", target="a1", result="ok")
    audit.record(
        actor="bob",
        source="10.0.0.2",
        action="silence",
        target="room=hall-a",
        result="ok",
        detail={"for_s": 7200},
    )
    with audit.path.open("a") as raw:
        raw.write('{"at": 1, "actor": "cut')  # a crash mid-write
    entries = list(audit.entries())
    assert [(e.actor, e.action, e.target) for e in entries] == [
        ("alice", "acknowledge", "a1"),
        ("bob", "silence", "room=hall-a"),
    ]
    assert entries[1].detail == {"for_s": 7200}
    assert entries[0].at <= entries[1].at


def test_unwritable_log_counts_the_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    audit = AuditLog(blocker / "audit.jsonl")
    audit.record(actor="alice", source="cli", action="acknowledge", target="a1", result="ok")
    assert audit.write_failures == 1
    assert list(audit.entries()) == []
