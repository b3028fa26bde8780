"""One member of the coordinated monitors: registers, follows the plan, hands rooms over.

Each step (every `sync_s`):

1. keep the lease alive (a new one, and the member key again, if it expired);
2. read the live members and the room owners;
3. compute the plan (`dcim.coord.plan`) and compare it with the rooms polled here;
4. release a room the plan gives to another member: stop its pollers, forget its
   incidents without a word (the next owner carries them on), write what is still
   queued for it, then delete its owner key;
5. take a room the plan gives us once nobody holds its owner key (the previous owner
   released it, or its lease expired with it): create the key (a transaction: only
   if absent), read its incidents back from etcd, start its pollers.

A room therefore has at most one owner at a time, and at a graceful move nobody
polls it twice. When etcd cannot be reached, nothing moves: every member keeps the
rooms it has and polls on; after `lost_after_s` one member (the first of the live
members it saw last) pages "coordination lost", resolved when etcd answers again.
A member that starts while etcd is unreachable falls back to the rooms it polled
last (`<state_dir>/coordination.json`) once `lost_after_s` has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from dcim.alerts.model import Incident
from dcim.alerts.silences import Silence
from dcim.coord.config import CoordinationConfig
from dcim.coord.etcd import (
    EtcdClient,
    EtcdError,
    EtcdUnavailable,
    absent,
    delete_op,
    lease_is,
    put_op,
    value_is,
)
from dcim.coord.handover import Keys, RoomStates
from dcim.coord.plan import RoomKey, assign, room_name, rooms_of

log = logging.getLogger(__name__)

STATE_FILE = "coordination.json"
#: Handovers the board and /metrics remember.
RECENT = 50


@dataclass(frozen=True, slots=True)
class HandoverEvent:
    at: float  # wall clock
    room: RoomKey
    #: "in": this member took the room; "out": it gave the room up.
    direction: str
    #: The member the room came from or went to ("" when not known).
    peer: str
    reason: str
    incidents: int = 0


class RoomHost(Protocol):
    """What a member drives: the monitor around it (the service)."""

    async def take_rooms(self, rooms: set[RoomKey], incidents: list[Incident] | None) -> None:
        """Poll these rooms, carrying on these incidents (None: etcd could not be read,
        carry on what this monitor itself knew of them)."""
        ...

    async def release_rooms(self, rooms: set[RoomKey]) -> None: ...

    def coordination_changed(self, lost: bool, why: str, page: bool) -> None: ...

    def handed_over(self, event: HandoverEvent) -> None: ...

    def silences_from_etcd(self, silences: list[Silence], known: set[str]) -> None: ...


def default_member_name() -> str:
    return socket.gethostname().split(".")[0] or "dcim"


class Member:
    def __init__(
        self,
        settings: CoordinationConfig,
        name: str,
        rooms: Mapping[RoomKey, int],
        host: RoomHost,
        state_dir: Path,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.name = name
        self.rooms = dict(rooms)
        self.host = host
        self.keys = Keys(settings.etcd.prefix)
        self.client = EtcdClient(settings.etcd)
        self.states = RoomStates(self.client, self.keys, name)
        self.state_file = state_dir / STATE_FILE
        self.clock = clock
        self._wall = wall
        self.lease: int | None = None
        self._next_keepalive = 0.0
        #: Rooms polled here now.
        self.owned: set[RoomKey] = set()
        #: Live members and the plan as last read from etcd.
        self.members: list[str] = []
        self.plan: dict[RoomKey, str] = {}
        self.owners: dict[RoomKey, str] = {}
        self.synced = False
        self.lost = False
        self.lost_paged = False
        self.unreachable_since: float | None = None
        self.last_error = ""
        self.events: deque[HandoverEvent] = deque(maxlen=RECENT)
        self.handovers: Counter[tuple[str, str]] = Counter()
        self._silence_ops: list[Silence | str] = []
        self._known_silences: set[str] = set()
        self._waiting_logged: set[RoomKey] = set()
        #: Who held a room when we last saw its owner key (the peer of a handover in).
        self._last_holder: dict[RoomKey, str] = {}
        self._name_taken_logged = False
        self._started = clock()

    # --- what others read ------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.unreachable_since is None and self.synced

    def silence_saved(self, silence: Silence) -> None:
        self._silence_ops.append(silence)

    def silence_removed(self, silence_id: str) -> None:
        self._silence_ops.append(silence_id)

    # --- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        writer = asyncio.create_task(
            self.states.run(self.settings.sync_interval_s), name="coordination writes"
        )
        try:
            while True:
                try:
                    await self.step()
                    self._reachable()
                except (EtcdUnavailable, EtcdError) as exc:
                    await self._unreachable(exc)
                await asyncio.sleep(self.settings.sync_interval_s)
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def stop(self) -> None:
        """A clean stop: write what is queued and give the lease back, so the others
        take our rooms at their next sync rather than after the lease runs out."""
        lease = self.lease
        try:
            async with asyncio.timeout(self.settings.etcd.timeout_s * 2):
                await self.states.flush()
                if lease is not None:
                    await self.client.revoke(lease)
                    log.info("coordination: lease given back; the other members take our rooms")
        except (EtcdUnavailable, EtcdError, TimeoutError) as exc:
            log.warning("coordination: could not hand over cleanly at stop: %s", exc)
        finally:
            await self.client.aclose()

    async def step(self) -> None:
        await self._keep_lease()
        members_kv, _ = await self.client.get_prefix(self.keys.members)
        owners_kv, _ = await self.client.get_prefix(self.keys.owners)
        members = sorted(kv.key.removeprefix(self.keys.members) for kv in members_kv)
        owners: dict[RoomKey, tuple[str, int]] = {}
        for kv in owners_kv:
            room = self.keys.room_of_owner_key(kv.key)
            if room is not None:
                owners[room] = (kv.value.decode(), kv.lease)
        ours = next((kv for kv in members_kv if kv.key == self.keys.member(self.name)), None)
        if ours is None or ours.lease != self.lease:
            # our member key is gone (lease expired), or the name is held by another lease
            await self._register()
            return
        self.members = members
        self.owners = {room: owner for room, (owner, _) in owners.items()}
        for room, (owner, _) in owners.items():
            if owner != self.name:
                self._last_holder[room] = owner
        previous = self.plan
        self.plan = assign(self.rooms, members)
        mine = rooms_of(self.plan, self.name)
        for room in sorted(self.owned):
            holder = owners.get(room)
            if holder is not None and holder != (self.name, self.lease):
                # taken while we were cut off from etcd: its owner is the other member now
                self.states.drop(room)
                await self._release(room, holder[0], "taken while cut off")
            elif room not in mine:
                await self._hand_over(room, self.plan.get(room, ""))
            elif holder is None:
                # our owner key went with a lapsed lease: claim it again
                await self._claim(room)
        for room, holder in owners.items():
            if holder == (self.name, self.lease) and room not in self.owned and room not in mine:
                # a key left by a handover that etcd interrupted: free it now
                await self.states.flush(room)
                await self.client.txn(
                    [value_is(self.keys.owner(room), self.name)], [delete_op(self.keys.owner(room))]
                )
        for room in sorted(mine - self.owned):
            holder = owners.get(room)
            if holder == (self.name, self.lease):  # claimed, then etcd failed before we took it
                await self._take(room, previous.get(room, ""), claimed=True)
                continue
            if holder is not None:
                if room not in self._waiting_logged:
                    self._waiting_logged.add(room)
                    log.info(
                        "room %s: planned for this member, waiting for %s to release it",
                        room_name(room),
                        holder[0],
                    )
                continue
            await self._take(room, previous.get(room, ""))
        await self._sync_silences()
        if not self.synced:
            self.synced = True
            log.info(
                "coordination: member %s among %s; polling %s",
                self.name,
                ", ".join(members),
                ", ".join(sorted(room_name(r) for r in self.owned)) or "no room",
            )

    # --- lease and member key ----------------------------------------------------------------

    async def _keep_lease(self) -> None:
        now = self.clock()
        if self.lease is None:
            await self._register()
            return
        if now < self._next_keepalive:
            return
        ttl = await self.client.keepalive(self.lease)
        if ttl <= 0:
            log.warning(
                "coordination: our lease expired (etcd did not hear from us for %d s); "
                "registering again",
                self.settings.etcd.lease_s,
            )
            self.lease = None
            await self._register()
            return
        self._next_keepalive = now + self.settings.etcd.lease_s / 3

    async def _register(self) -> None:
        if self.lease is None:
            self.lease, _ = await self.client.grant(self.settings.etcd.lease_s)
            self._next_keepalive = self.clock() + self.settings.etcd.lease_s / 3
        key = self.keys.member(self.name)
        about = json.dumps({"member": self.name, "host": socket.gethostname(), "pid": os.getpid()})
        registered = await self.client.txn(
            [absent(key)], [put_op(key, about, self.lease)], []
        ) or await self.client.txn([lease_is(key, self.lease)], [put_op(key, about, self.lease)])
        if registered:
            self._name_taken_logged = False
            log.info("coordination: registered as member %s (lease %x)", self.name, self.lease)
        elif not self._name_taken_logged:
            self._name_taken_logged = True
            log.warning(
                "coordination: member name %s is held by another lease (a previous run of "
                "this member that etcd has not yet counted as gone, or another monitor with "
                "the same name); waiting for it to expire",
                self.name,
            )

    # --- taking and giving rooms -----------------------------------------------------------

    async def _claim(self, room: RoomKey) -> bool:
        assert self.lease is not None
        key = self.keys.owner(room)
        return await self.client.txn([absent(key)], [put_op(key, self.name, self.lease)])

    async def _take(self, room: RoomKey, planned_before: str, *, claimed: bool = False) -> None:
        if not claimed and not await self._claim(room):
            return  # someone was faster (a stale plan): the next step sorts it out
        self._waiting_logged.discard(room)
        incidents = await self.states.load(room)
        await self.host.take_rooms({room}, incidents)
        self.owned.add(room)
        self._save_state()
        held_by = self._last_holder.pop(room, "")
        peer = held_by or (planned_before if planned_before != self.name else "")
        if peer and peer not in self.members:
            reason = "member gone"  # its lease expired (or it stopped)
        elif peer:
            reason = "plan changed"  # a member came back or joined
        else:
            reason = "assigned"  # our start, or nobody held it
        self._event(room, "in", peer, reason, len(incidents))

    async def _hand_over(self, room: RoomKey, to: str) -> None:
        """Give a room to the member the plan names now (it takes it once the key is gone)."""
        await self.host.release_rooms({room})
        self.owned.discard(room)
        self._save_state()
        await self.states.flush(room)
        await self.client.txn(
            [value_is(self.keys.owner(room), self.name)], [delete_op(self.keys.owner(room))]
        )
        self._event(room, "out", to, "plan changed", 0)

    async def _release(self, room: RoomKey, to: str, reason: str) -> None:
        await self.host.release_rooms({room})
        self.owned.discard(room)
        self._save_state()
        self._event(room, "out", to, reason, 0)

    def _event(self, room: RoomKey, direction: str, peer: str, reason: str, incidents: int) -> None:
        event = HandoverEvent(self._wall(), room, direction, peer, reason, incidents)
        self.events.appendleft(event)
        self.handovers[(direction, reason)] += 1
        self.host.handed_over(event)

    # --- etcd unreachable ------------------------------------------------------------------

    def _reachable(self) -> None:
        self.states.reachable = True
        if self.unreachable_since is None:
            return
        gone_for = self.clock() - self.unreachable_since
        self.unreachable_since = None
        log.warning("coordination: etcd answers again (after %.1f s)", gone_for)
        if self.lost:
            self.lost = False
            self.host.coordination_changed(
                False, f"etcd answers again after {gone_for:.0f} s", self.lost_paged
            )
            self.lost_paged = False

    async def _unreachable(self, exc: Exception) -> None:
        self.states.reachable = False  # pages are not held for etcd while it is gone
        now = self.clock()
        self.last_error = str(exc)
        if self.unreachable_since is None:
            # before the first contact, count from our start
            self.unreachable_since = now if self.synced else self._started
            log.warning(
                "coordination: etcd unreachable (%s); keeping %s",
                exc,
                ", ".join(sorted(room_name(r) for r in self.owned)) or "no room",
            )
        if self.lost or now - self.unreachable_since < self.settings.lost_after:
            return
        self.lost = True
        if not self.synced:
            await self._fall_back()
        # one page for all: the first of the live members we saw last pages
        self.lost_paged = not self.members or self.members[0] == self.name
        rooms = ", ".join(sorted(room_name(r) for r in self.owned)) or "no room"
        why = (
            f"etcd ({', '.join(self.settings.etcd.endpoints)}) unreachable for "
            f"{now - self.unreachable_since:.0f} s: {exc}; member {self.name} keeps polling "
            f"{rooms}; no room moves until etcd is back"
        )
        log.error("coordination lost: %s", why)
        self.host.coordination_changed(True, why, self.lost_paged)

    async def _fall_back(self) -> None:
        """Started without etcd: poll the rooms this member polled last."""
        rooms = self._load_state()
        if not rooms:
            log.error("coordination: etcd unreachable since start and no earlier rooms known")
            return
        log.warning(
            "coordination: etcd unreachable since start; polling the rooms of our last run: %s",
            ", ".join(sorted(room_name(r) for r in rooms)),
        )
        await self.host.take_rooms(rooms, None)
        self.owned |= rooms
        for room in sorted(rooms):
            self._event(room, "in", "", "last assignment", 0)

    # --- silences --------------------------------------------------------------------------

    async def _sync_silences(self) -> None:
        while self._silence_ops:
            item = self._silence_ops[0]
            if isinstance(item, Silence):
                await self.states.put_silence(item)
                self._known_silences.add(item.id)
            else:
                await self.states.delete_silence(item)
                self._known_silences.discard(item)
            self._silence_ops.pop(0)
        silences = await self.states.silences()
        self.host.silences_from_etcd(silences, self._known_silences)
        self._known_silences = {s.id for s in silences}

    # --- last assignment -------------------------------------------------------------------

    def _save_state(self) -> None:
        rooms = sorted([site, room] for site, room in self.owned)
        try:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"member": self.name, "rooms": rooms, "at": self._wall()}))
            tmp.replace(self.state_file)
        except OSError as exc:
            log.warning("cannot write %s: %s", self.state_file, exc)

    def _load_state(self) -> set[RoomKey]:
        try:
            data = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return set()
        if data.get("member") != self.name:
            return set()
        return {
            (str(site), str(room))
            for site, room in data.get("rooms", [])
            if (str(site), str(room)) in self.rooms
        }
