"""The alert store's faults: a corrupt file at start, a disk that refuses writes."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest

from dcim.alerts.config import AlertsConfig
from dcim.alerts.kinds.base import DeviceInfo
from dcim.alerts.model import Notification
from dcim.alerts.notify.base import Notifier
from dcim.alerts.service import AlertEngine
from dcim.alerts.store import AlertStore
from dcim.errors import StateDirError
from dcim.reading import Reading, now_ns
from tests.support import alert_rig
from tests.support.smallfs import small_fs

TAGS = {"site": "par1", "room": "hall-a", "rack": "r1", "device": "env-1", "kind": "sensor"}


class Recorder(Notifier):
    name = "recorder"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, notification: Notification) -> None:
        self.sent.append((notification.incident_id, notification.event))

    async def aclose(self) -> None:
        return None


def engine(state: Path, notifier: Recorder) -> AlertEngine:
    settings = AlertsConfig.model_validate(
        {"packs": [], "startup_grace_s": 0, "retry": {"initial_s": 0.05, "max_s": 0.2}}
    )
    return AlertEngine(
        settings,
        alert_rig.RULES,
        {"env-1": DeviceInfo(TAGS, 30.0)},
        state,
        notifiers={"recorder": notifier},
    )


def hot(value: float) -> Reading:
    return Reading("env-1", "sensor.temp_c", value, "degC", now_ns(), TAGS)


def test_a_corrupt_store_is_set_aside_and_the_engine_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "alerts.sqlite3"
    path.write_bytes(b"this is not an SQLite database, it is garbage\x00" * 100)
    store = AlertStore(path)
    assert store.set_aside is not None
    assert store.set_aside.read_bytes().startswith(b"this is not")
    store.save([], [])
    assert store.open_incidents() == []
    store.close()
    assert "is corrupt" in caplog.text


def test_an_unopenable_store_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StateDirError, match="alert store"):
        AlertStore(blocker / "alerts.sqlite3")


async def test_a_full_disk_delays_notifications_but_loses_none(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    with small_fs(tmp_path / "fs", 512) as fs:
        notifier = Recorder()
        alerts = engine(fs.path, notifier)
        real_save = alerts.store.save
        if not fs.mounted:  # no tmpfs here: the store refuses as SQLite does on a full disk
            print("no tmpfs here (not root?): simulating SQLITE_FULL in the alert store")
            full = {"on": True}

            def save(*args: object, **kwargs: object) -> None:
                if full["on"]:
                    raise sqlite3.OperationalError("database or disk is full")
                real_save(*args, **kwargs)  # type: ignore[arg-type]

            alerts.store.save = save  # type: ignore[method-assign]
        alerts.dispatcher.start()
        try:
            fs.fill()
            alerts.process([hot(40.0)])  # fires: the store cannot take it
            assert alerts.store_errors >= 1
            assert "cannot save" in caplog.text
            await asyncio.sleep(0.2)
            assert notifier.sent == []  # not sent before it is stored: no page without a trail
            if fs.mounted:
                fs.free()
            else:
                full["on"] = False
            alerts.tick()  # the next flush saves what was held
            async with asyncio.timeout(10):
                while not notifier.sent:  # noqa: ASYNC110 - the dispatcher task sends
                    await asyncio.sleep(0.02)
            (incident,) = alerts.incidents()
            assert notifier.sent == [(incident.id, "firing")]
            alerts.process([hot(20.0)])
            async with asyncio.timeout(10):
                while len(notifier.sent) < 2:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            assert notifier.sent == [(incident.id, "firing"), (incident.id, "resolved")]
        finally:
            await alerts.aclose()
