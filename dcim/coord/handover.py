"""What travels with a room: its open incidents (and every member's silences), kept in etcd.

The owner of a room writes each change of the room's firing incidents to
`<prefix>incidents/<site>/<room>/<id>` (deleted when it resolves), in a transaction
that holds only while the room's owner key still names this member, so a member
that lost the room (its lease expired while it was cut off) never overwrites the new
owner's state. A member taking a room reads them back: the incidents carry what was
announced (`notified`), acknowledgements and escalation, so the new owner neither
pages again what was paged nor forgets to send the resolve.

Writes are queued and coalesced per incident (the latest state wins); a page about an
incident waits (bounded) until its state is in etcd, so a member killed right after
paging has left what the next owner needs. While etcd is unreachable nothing is held:
pages go out, the writes wait for etcd.

Silences are not per room (their matchers can name anything): every member keeps
every silence, under `<prefix>silences/<id>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dcim.alerts.model import Incident, Phase
from dcim.alerts.silences import Silence
from dcim.alerts.store import incident_from_json, incident_to_json, silence_from_json
from dcim.coord.etcd import (
    EtcdClient,
    EtcdError,
    EtcdUnavailable,
    delete_op,
    put_op,
    value_is,
)
from dcim.coord.plan import RoomKey, room_name

log = logging.getLogger(__name__)

#: How long a page waits for its incident's state to reach etcd before it goes anyway.
GATE_S = 2.0


def room_of(incident: Incident) -> RoomKey | None:
    """The room an incident is about (None: site-wide or the monitor's own)."""
    site, room = incident.labels.get("site"), incident.labels.get("room")
    return (site, room) if site and room else None


@dataclass(slots=True)
class _Pending:
    room: RoomKey
    incident: Incident
    #: Bumped on every change: a write done for an older state does not settle it.
    version: int = 0


class Keys:
    """The etcd key layout of one inventory (one prefix)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.members = f"{prefix}members/"
        self.owners = f"{prefix}owners/"
        self.incidents = f"{prefix}incidents/"
        self.silences = f"{prefix}silences/"

    def member(self, name: str) -> str:
        return self.members + name

    def owner(self, room: RoomKey) -> str:
        return f"{self.owners}{room[0]}/{room[1]}"

    def room_incidents(self, room: RoomKey) -> str:
        return f"{self.incidents}{room[0]}/{room[1]}/"

    def incident(self, room: RoomKey, incident_id: str) -> str:
        return f"{self.room_incidents(room)}{incident_id}"

    def silence(self, silence_id: str) -> str:
        return self.silences + silence_id

    def room_of_owner_key(self, key: str) -> RoomKey | None:
        site, _, room = key.removeprefix(self.owners).partition("/")
        return (site, room) if site and room and "/" not in room else None


class RoomStates:
    """Mirrors the incidents of owned rooms into etcd; reads them back for a new owner."""

    def __init__(self, client: EtcdClient, keys: Keys, member: str) -> None:
        self.client = client
        self.keys = keys
        self.member = member
        self._pending: dict[str, _Pending] = {}
        self._written: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        #: Set while etcd answers (pages are not held while it does not).
        self.reachable = False
        self.writes = 0
        self.refused = 0

    # --- from the alert engine ---------------------------------------------------------

    def changed(self, incidents: Iterable[Incident], owns: Callable[[RoomKey], bool]) -> None:
        """Incidents whose stored state changed: queue those of rooms this member owns."""
        for incident in incidents:
            room = room_of(incident)
            if room is None or not owns(room):
                continue
            pending = self._pending.get(incident.id)
            version = (pending.version if pending else self._written.get(incident.id, 0)) + 1
            self._pending[incident.id] = _Pending(room, incident, version)
        if self._pending:
            self._wake.set()

    async def settled(self, incident_id: str, timeout_s: float = GATE_S) -> bool:
        """Wait until the incident's latest state is in etcd (False: not in time, or etcd
        unreachable: the caller goes on without it)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while incident_id in self._pending and self.reachable:
                    self._changed.clear()
                    await self._changed.wait()
        return incident_id not in self._pending

    def drop(self, room: RoomKey) -> None:
        """Forget unwritten changes of a room another member holds now."""
        for incident_id in [i for i, p in self._pending.items() if p.room == room]:
            del self._pending[incident_id]
        self._changed.set()

    def pending_rooms(self) -> set[RoomKey]:
        return {p.room for p in self._pending.values()}

    # --- writing -------------------------------------------------------------------------

    async def run(self, retry_s: float) -> None:
        """Write queued changes until cancelled; while etcd is unreachable, retry."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except EtcdUnavailable:
                self.reachable = False
                self._changed.set()
                await asyncio.sleep(retry_s)
                self._wake.set()

    async def flush(self, room: RoomKey | None = None) -> None:
        """Write what is queued (for one room, or all); EtcdUnavailable if etcd is gone."""
        for incident_id, pending in list(self._pending.items()):
            if room is not None and pending.room != room:
                continue
            await self._write(incident_id, pending)
            if self._pending.get(incident_id) is pending:
                del self._pending[incident_id]
                self._written[incident_id] = pending.version
            self._changed.set()
        self.reachable = True

    async def _write(self, incident_id: str, pending: _Pending) -> None:
        incident = pending.incident
        key = self.keys.incident(pending.room, incident_id)
        if incident.phase is Phase.FIRING:
            operation = put_op(key, incident_to_json(incident))
        else:
            operation = delete_op(key)
            self._written.pop(incident_id, None)
        try:
            done = await self.client.txn(
                [value_is(self.keys.owner(pending.room), self.member)], [operation]
            )
        except EtcdError as exc:
            log.error("incident %s of room %s not written to etcd: %s", incident_id, key, exc)
            return
        if done:
            self.writes += 1
        else:  # the room is not ours in etcd: its owner keeps its own state
            self.refused += 1
            log.warning(
                "incident %s of room %s not written: this member no longer owns the room",
                incident_id,
                room_name(pending.room),
            )

    # --- reading back --------------------------------------------------------------------

    async def load(self, room: RoomKey) -> list[Incident]:
        """The open incidents a room's previous owner left in etcd."""
        kvs, _ = await self.client.get_prefix(self.keys.room_incidents(room))
        incidents = []
        for kv in kvs:
            try:
                incidents.append(incident_from_json(kv.value.decode()))
            except (ValueError, KeyError, TypeError) as exc:
                log.error(
                    "room %s: unreadable incident %s in etcd: %s", room_name(room), kv.key, exc
                )
        return incidents

    # --- silences ------------------------------------------------------------------------

    async def put_silence(self, silence: Silence) -> None:
        await self.client.put(self.keys.silence(silence.id), json.dumps(silence.to_json()))

    async def delete_silence(self, silence_id: str) -> None:
        await self.client.delete(self.keys.silence(silence_id))

    async def silences(self) -> list[Silence]:
        kvs, _ = await self.client.get_prefix(self.keys.silences)
        found = []
        for kv in kvs:
            try:
                found.append(silence_from_json(json.loads(kv.value)))
            except (ValueError, KeyError, TypeError, AssertionError) as exc:
                log.error("unreadable silence %s in etcd: %s", kv.key, exc)
        return found
