"""The outbox hands out the most urgent incident's notifications first, each incident in order."""

from __future__ import annotations

from pathlib import Path

from dcim.alerts.model import Notification
from dcim.alerts.store import AlertStore


def note(incident: str, severity: str, event: str = "firing", fire: bool = False) -> Notification:
    return Notification.from_json(
        {
            "event": event,
            "at": 0.0,
            "id": incident,
            "rule": "r",
            "rule_name": "r",
            "scope": incident,
            "severity": severity,
            "state": "resolved" if event == "resolved" else "firing",
            "summary": f"{incident} {event}",
            "labels": {},
            "started_at": 0.0,
            "fired_at": 0.0,
            "resolved_at": None,
            "acknowledged_by": None,
            "fire_alarm": fire,
            "flapping": False,
            "stale": False,
            "grouped_children": 0,
        }
    )


def due(store: AlertStore, limit: int = 10) -> list[str]:
    return [n.summary for _, n in store.next_due("page", limit)]


def test_a_page_behind_a_backlog_of_warnings_goes_first(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "alerts.db")
    backlog = [("page", note(f"w{n}", "warning")) for n in range(30)]
    store.save([], [*backlog, ("page", note("ups-on-battery", "critical"))])
    store.save([], [("page", note("smoke", "warning", fire=True))])
    assert due(store, 3) == ["smoke firing", "ups-on-battery firing", "w0 firing"]
    assert [n.summary for _, n in store.pending("page", 2)] == ["w0 firing", "w1 firing"]


def test_an_incident_keeps_its_own_order_when_it_escalates(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "alerts.db")
    store.save([], [("page", note("x", "warning")), ("page", note("y", "warning"))])
    store.save([], [("page", note("x", "critical", "escalated"))])
    store.save([], [("page", note("x", "critical", "resolved"))])
    assert due(store) == ["x firing", "x escalated", "x resolved", "y firing"]


def test_delivered_rows_are_not_due_again(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "alerts.db")
    store.save([], [("page", note("a", "critical")), ("page", note("b", "warning"))])
    ((seq, first),) = store.next_due("page", 1)
    assert first.summary == "a firing"
    store.delivered(seq, 1.0)
    assert due(store) == ["b firing"]
    assert store.next_due("other") == []
