"""Alert state in SQLite: incidents, silences and the notification outbox.

A restart must neither re-send a firing alert nor lose a resolve. Incidents carry
what was last announced (`notified`), and every notification is written to the
outbox in the same transaction as the incident change; a channel marks its rows
delivered only after the peer accepted them.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

from dcim.alerts.model import Incident, Notification, Phase, Severity
from dcim.alerts.silences import Silence
from dcim.errors import StateDirError

log = logging.getLogger(__name__)

_SEVERITY_RANK = {severity.value: severity.rank for severity in Severity}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    key TEXT NOT NULL,
    phase TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_phase ON incidents(phase);
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    ends_at REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    delivered_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(channel, delivered_at);
"""


def incident_to_json(incident: Incident) -> str:
    data = asdict(incident)
    data["children"] = sorted(incident.children)
    return json.dumps(data, sort_keys=True)


def incident_from_json(text: str) -> Incident:
    data = json.loads(text)
    data["severity"] = Severity(data["severity"])
    data["phase"] = Phase(data["phase"])
    data["notified"] = Severity(data["notified"]) if data.get("notified") else None
    data["children"] = set(data.get("children", ()))
    return Incident(**data)


class AlertStore:
    """One SQLite file; used from the event loop thread only (calls are short)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        #: Where a corrupt store found at start was moved (None: the store was sound).
        self.set_aside: Path | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._db = self._open(path)
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and not _corrupt(exc):
                    raise
                self._db = self._recover(path, exc)
        except (OSError, sqlite3.OperationalError) as exc:
            detail = getattr(exc, "strerror", None) or str(exc)
            raise StateDirError(f"alert store {path}: {detail}") from None

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            # an alert change must survive a power cut once we have said it happened
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            db.execute("SELECT COUNT(*) FROM incidents").fetchone()
        except sqlite3.Error:
            db.close()
            raise
        return db

    def _recover(self, path: Path, exc: sqlite3.DatabaseError) -> sqlite3.Connection:
        """Move a corrupt store aside (kept for a post-mortem) and start an empty one."""
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            part = path.with_name(path.name + suffix)
            if part.exists():
                part.replace(aside.with_name(aside.name + suffix))
        self.set_aside = aside
        log.error(
            "alert store %s is corrupt (%s): moved to %s and started empty; open incidents "
            "and silences in it are lost, conditions still true will alert again",
            path,
            exc,
            aside.name,
        )
        return self._open(path)

    def close(self) -> None:
        self._db.close()

    # --- incidents and outbox, written together --------------------------------

    def save(
        self, incidents: Iterable[Incident], outbox: Iterable[tuple[str, Notification]] = ()
    ) -> None:
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO incidents (id, rule, key, phase, data) VALUES (?,?,?,?,?)",
                [
                    (inc.id, inc.rule, inc.key, inc.phase.value, incident_to_json(inc))
                    for inc in incidents
                ],
            )
            self._db.executemany(
                "INSERT INTO outbox (channel, payload) VALUES (?, ?)",
                [(channel, json.dumps(n.to_json())) for channel, n in outbox],
            )

    def forget(self, incident_ids: Iterable[str]) -> None:
        """Drop incidents another monitor carries on (their outbox rows stay: what was
        owed is still delivered)."""
        self._db.executemany("DELETE FROM incidents WHERE id = ?", [(i,) for i in incident_ids])

    def open_incidents(self) -> list[Incident]:
        rows = self._db.execute(
            "SELECT data FROM incidents WHERE phase = ?", (Phase.FIRING.value,)
        ).fetchall()
        return [incident_from_json(data) for (data,) in rows]

    def recent(self, limit: int = 100) -> list[Incident]:
        rows = self._db.execute(
            "SELECT data FROM incidents ORDER BY rowid DESC LIMIT ?", (limit,)
        ).fetchall()
        return [incident_from_json(data) for (data,) in rows]

    # --- outbox ---------------------------------------------------------------

    def pending(self, channel: str, limit: int = 100) -> list[tuple[int, Notification]]:
        rows = self._db.execute(
            "SELECT seq, payload FROM outbox WHERE channel = ? AND delivered_at IS NULL "
            "ORDER BY seq LIMIT ?",
            (channel, limit),
        ).fetchall()
        return [(seq, Notification.from_json(json.loads(payload))) for seq, payload in rows]

    def next_due(self, channel: str, limit: int = 10) -> list[tuple[int, Notification]]:
        """Undelivered rows, most urgent incident first; one incident's rows keep their order.

        A backlog (a channel that was down, a storm of warnings) must not hold a
        fire alarm or a critical page behind it: fire alarms, then critical, then
        warning, then info incidents, each oldest first.
        """
        rows = self._db.execute(
            "SELECT seq, json_extract(payload, '$.id'), json_extract(payload, '$.severity'), "
            "json_extract(payload, '$.fire_alarm') FROM outbox "
            "WHERE channel = ? AND delivered_at IS NULL ORDER BY seq",
            (channel,),
        ).fetchall()
        urgency: dict[str, int] = {}
        for _, incident, severity, fire_alarm in rows:
            rank = _SEVERITY_RANK.get(severity, 0) + (10 if fire_alarm else 0)
            urgency[incident] = max(urgency.get(incident, 0), rank)
        chosen = sorted(rows, key=lambda row: (-urgency[row[1]], row[0]))[:limit]
        wanted = [seq for seq, *_ in chosen]
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        payloads = dict(
            self._db.execute(f"SELECT seq, payload FROM outbox WHERE seq IN ({marks})", wanted)  # noqa: S608 - placeholders only
        )
        return [(seq, Notification.from_json(json.loads(payloads[seq]))) for seq in wanted]

    def delivered(self, seq: int, at: float) -> None:
        self._db.execute("UPDATE outbox SET delivered_at = ? WHERE seq = ?", (at, seq))

    def failed_attempt(self, seq: int) -> None:
        self._db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?", (seq,))

    def channels_told(self, incident_id: str) -> set[str]:
        """Channels that were sent (or owe) any notification about this incident."""
        rows = self._db.execute(
            "SELECT DISTINCT channel FROM outbox WHERE json_extract(payload, '$.id') = ?",
            (incident_id,),
        ).fetchall()
        return {channel for (channel,) in rows}

    def pending_count(self, channel: str) -> int:
        """Notifications of a channel not delivered yet (waiting or retrying)."""
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE channel = ? AND delivered_at IS NULL",
            (channel,),
        ).fetchone()
        return int(count)

    def delivered_count(self, channel: str) -> int:
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE channel = ? AND delivered_at IS NOT NULL",
            (channel,),
        ).fetchone()
        return int(count)

    # --- silences ---------------------------------------------------------------

    def save_silence(self, silence: Silence) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO silences (id, ends_at, data) VALUES (?, ?, ?)",
            (silence.id, silence.ends_at, json.dumps(silence.to_json())),
        )

    def delete_silence(self, silence_id: str) -> None:
        self._db.execute("DELETE FROM silences WHERE id = ?", (silence_id,))

    def silences(self, now: float) -> list[Silence]:
        self._db.execute("DELETE FROM silences WHERE ends_at <= ?", (now,))
        rows = self._db.execute("SELECT data FROM silences").fetchall()
        return [silence_from_json(json.loads(data)) for (data,) in rows]

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


def _corrupt(exc: sqlite3.Error) -> bool:
    """An error that means the file is not a usable database (as opposed to I/O trouble)."""
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text


def silence_from_json(data: dict[str, object]) -> Silence:
    matchers = data["matchers"]
    assert isinstance(matchers, dict)
    return Silence(
        id=str(data["id"]),
        matchers={str(k): str(v) for k, v in matchers.items()},
        starts_at=float(data["starts_at"]),  # type: ignore[arg-type]
        ends_at=float(data["ends_at"]),  # type: ignore[arg-type]
        created_by=str(data["created_by"]),
        comment=str(data.get("comment", "")),
    )


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
