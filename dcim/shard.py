"""Split one inventory over N monitor processes, a whole room per shard.

Rules that span a room (row averages, fire = smoke + heat in the same room)
need all of that room's readings in one process, so rooms are never split.
Every process computes the same assignment from the same file: rooms sorted by
size (largest first, ties by site/room id) go to the least-loaded shard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dcim.inventory import Config, RoomConfig, SiteConfig


@dataclass(frozen=True, slots=True)
class Shard:
    index: int  # 1-based, as operators count
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`I/N` with 1 <= I <= N."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match:
            msg = f"shard must look like I/N (e.g. 2/4), not {text!r}"
            raise ValueError(msg)
        index, count = int(match[1]), int(match[2])
        if not 1 <= index <= count:
            msg = f"shard {index}/{count}: I must be between 1 and N"
            raise ValueError(msg)
        return cls(index, count)


def _room_size(room: RoomConfig) -> int:
    return len(room.devices) + sum(
        len(row.devices) + sum(len(rack.devices) for rack in row.racks) for row in room.rows
    )


def assign_rooms(config: Config, count: int) -> dict[tuple[str, str], int]:
    """(site id, room id) -> 1-based shard, balanced by device count."""
    rooms = [(site.id, room.id, _room_size(room)) for site in config.sites for room in site.rooms]
    rooms.sort(key=lambda item: (-item[2], item[0], item[1]))
    load = [0] * count
    assignment: dict[tuple[str, str], int] = {}
    for site_id, room_id, size in rooms:
        target = min(range(count), key=lambda shard: (load[shard], shard))
        load[target] += size
        assignment[(site_id, room_id)] = target + 1
    return assignment


def shard_config(config: Config, shard: Shard) -> Config:
    """The part of `config` this shard polls (same sinks and settings)."""
    assignment = assign_rooms(config, shard.count)
    sites: list[SiteConfig] = []
    for site in config.sites:
        rooms = [room for room in site.rooms if assignment[(site.id, room.id)] == shard.index]
        if rooms:
            sites.append(site.model_copy(update={"rooms": rooms}))
    # a shard with no room still runs (it reports its own health), so keep one empty site
    if not sites:
        sites = [config.sites[0].model_copy(update={"rooms": []})]
    return config.model_copy(update={"sites": sites})
