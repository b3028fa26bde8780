"""A member's loop against a real etcd, with a recording host in place of the monitor (the
monitor itself is exercised by tests/e2e/test_e2e_coordination.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dcim.alerts.model import Incident
from dcim.alerts.silences import Silence
from dcim.coord.config import CoordinationConfig
from dcim.coord.member import HandoverEvent, Member
from dcim.coord.plan import RoomKey
from tests.support.etcd_server import Etcd
from tests.support.servers import free_port
from tests.support.waiting import eventually

ROOMS: dict[RoomKey, int] = {("dc1", f"hall-{i}"): 2 for i in range(4)}


class Host:
    """Records what the member asks of its monitor."""

    def __init__(self) -> None:
        self.rooms: set[RoomKey] = set()
        self.events: list[HandoverEvent] = []
        self.lost: list[tuple[bool, bool]] = []
        self.silences: dict[str, Silence] = {}

    async def take_rooms(self, rooms: set[RoomKey], incidents: list[Incident] | None) -> None:
        self.rooms |= rooms

    async def release_rooms(self, rooms: set[RoomKey]) -> None:
        self.rooms -= rooms

    def coordination_changed(self, lost: bool, why: str, page: bool) -> None:
        self.lost.append((lost, page))

    def handed_over(self, event: HandoverEvent) -> None:
        self.events.append(event)

    def silences_from_etcd(self, silences: list[Silence], known: set[str]) -> None:
        wanted = {s.id: s for s in silences}
        self.silences.update(wanted)
        for gone in [i for i in self.silences if i in known and i not in wanted]:
            del self.silences[gone]


def settings(url: str, lost_after_s: float = 60) -> CoordinationConfig:
    return CoordinationConfig.model_validate(
        {
            "etcd": {"endpoints": [url], "lease_s": 2, "timeout_s": 0.5},
            "sync_s": 0.1,
            "lost_after_s": lost_after_s,
        }
    )


@pytest.fixture
async def running() -> AsyncIterator[list[asyncio.Task[None]]]:
    tasks: list[asyncio.Task[None]] = []
    yield tasks
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_two_members_split_the_rooms_and_share_silences(
    etcd: Etcd, tmp_path: Path, running: list[asyncio.Task[None]]
) -> None:
    hosts = {name: Host() for name in ("a", "b")}
    members = {
        name: Member(settings(etcd.url), name, ROOMS, host, tmp_path / name)
        for name, host in hosts.items()
    }
    running += [asyncio.create_task(m.run()) for m in members.values()]
    await eventually(
        lambda: (
            all(h.rooms for h in hosts.values())
            and hosts["a"].rooms | hosts["b"].rooms == set(ROOMS)
            and not hosts["a"].rooms & hosts["b"].rooms
        ),
        20,
        "the rooms split between a and b",
    )
    silence = Silence("s1", {"room": "hall-1"}, time.time(), time.time() + 600, "op", "works")
    members["a"].silence_saved(silence)
    await eventually(lambda: "s1" in hosts["b"].silences, 10, "the silence at b")
    assert hosts["b"].silences["s1"].matchers == {"room": "hall-1"}
    members["a"].silence_removed("s1")
    await eventually(lambda: "s1" not in hosts["b"].silences, 10, "the silence gone at b")
    # the last assignment is kept on disk, for a start without etcd
    saved = json.loads((tmp_path / "a" / "coordination.json").read_text())
    assert {tuple(r) for r in saved["rooms"]} == hosts["a"].rooms


async def test_started_without_etcd_it_polls_its_last_rooms_and_pages_once(
    tmp_path: Path, running: list[asyncio.Task[None]]
) -> None:
    state = tmp_path / "a"
    state.mkdir()
    last = [["dc1", "hall-2"], ["dc1", "hall-3"]]
    (state / "coordination.json").write_text(json.dumps({"member": "a", "rooms": last}))
    host = Host()
    nowhere = f"http://127.0.0.1:{free_port()}"
    member = Member(settings(nowhere, lost_after_s=0.5), "a", ROOMS, host, state)
    running.append(asyncio.create_task(member.run()))
    await eventually(lambda: bool(host.lost), 10, "coordination lost")
    assert host.rooms == {("dc1", "hall-2"), ("dc1", "hall-3")}
    assert host.lost == [(True, True)]  # no member list seen yet: it pages itself
    await asyncio.sleep(1.0)
    assert host.lost == [(True, True)]  # once
