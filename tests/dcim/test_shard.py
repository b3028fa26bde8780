"""Sharding: N processes together poll every device exactly once, rooms never split."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from dcim.inventory import Config, iter_devices
from dcim.shard import Shard, assign_rooms, shard_config


def inventory(rooms_per_site: int, racks_per_room: list[int]) -> Config:
    sites: list[dict[str, Any]] = []
    for s in range(2):
        rooms = []
        for r in range(rooms_per_site):
            racks = [
                {
                    "id": f"rk{k}",
                    "devices": [
                        {
                            "id": f"s{s}r{r}k{k}-{side}",
                            "kind": "pdu",
                            "profile": "apc-rpdu2",
                            "snmp": {"host": "127.0.0.1", "community": "c"},
                        }
                        for side in ("a", "b")
                    ],
                }
                for k in range(racks_per_room[(s + r) % len(racks_per_room)])
            ]
            rooms.append(
                {
                    "id": f"room{r}",
                    "rows": [{"id": "row1", "racks": racks}],
                    "devices": [
                        {
                            "id": f"s{s}r{r}-ups",
                            "kind": "ups",
                            "profile": "ups-mib-rfc1628",
                            "snmp": {"host": "127.0.0.1", "community": "c"},
                        }
                    ],
                }
            )
        sites.append({"id": f"site{s}", "rooms": rooms})
    return Config.model_validate({"sites": sites})


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_every_device_in_exactly_one_shard_and_rooms_whole(count: int) -> None:
    config = inventory(3, [1, 4, 9, 2])
    everything = Counter(p.device.id for p in iter_devices(config))
    seen: Counter[str] = Counter()
    room_owner: dict[tuple[str, str], int] = {}
    for index in range(1, count + 1):
        part = shard_config(config, Shard(index, count))
        for placed in iter_devices(part):
            seen[placed.device.id] += 1
            owner = room_owner.setdefault((placed.site, placed.room), index)
            assert owner == index, f"room {placed.site}/{placed.room} split across shards"
    assert seen == everything


def test_shards_are_balanced_by_device_count() -> None:
    config = inventory(4, [10, 10, 10, 10])
    sizes = Counter(assign_rooms(config, 4).values())
    assert sorted(sizes.values()) == [2, 2, 2, 2]


def test_every_process_computes_the_same_assignment() -> None:
    config = inventory(3, [1, 4, 9, 2])
    assert assign_rooms(config, 3) == assign_rooms(inventory(3, [1, 4, 9, 2]), 3)


@pytest.mark.parametrize("text", ["0/2", "3/2", "a/b", "2", "1/0"])
def test_bad_shard_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="shard"):
        Shard.parse(text)
