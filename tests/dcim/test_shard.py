"""Sharding: N processes together poll every device exactly once, rooms never split."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from dcim.inventory import Config, iter_devices
from dcim.shard import Shard, assign_rooms, describe, shard_config


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


def _with_services(mqtt_client_id: str | None) -> Config:
    base = inventory(2, [2]).model_dump(mode="json")
    for site in base["sites"]:  # secrets dump as masked text; only their presence matters here
        for room in site["rooms"]:
            for device in room["devices"] + [
                d for row in room["rows"] for rack in row["racks"] for d in rack["devices"]
            ]:
                device["snmp"]["community"] = "c"
    base["monitor"]["state_dir"] = "/var/lib/dcim"
    base["mqtt"] = {"url": "mqtt://broker:1883", "client_id": mqtt_client_id}
    base["traps"] = {"host": "0.0.0.0", "port": 1162, "communities": ["trapc"]}
    base["alerts"] = {"api": {"port": 9180, "token": "t" * 20}}
    base["web"] = {"port": 9280, "anonymous_read": True}
    return Config.model_validate(base)


@pytest.mark.parametrize("client_id", [None, "noc-monitor"])
def test_shards_of_one_file_share_no_state_client_id_or_port(client_id: str | None) -> None:
    config = _with_services(client_id)
    parts = [shard_config(config, Shard(i, 3)) for i in (1, 2, 3)]
    state_dirs = {str(p.monitor.state_dir) for p in parts}
    assert len(state_dirs) == 3
    assert all(d.startswith("/var/lib/dcim/shard-") for d in state_dirs)
    client_ids = [p.mqtt.client_id for p in parts if p.mqtt is not None]
    assert len(set(client_ids)) == 3
    assert all(c is not None and len(c) <= 64 for c in client_ids)
    if client_id is not None:
        assert all(c is not None and c.startswith("noc-monitor-") for c in client_ids)
    assert [p.traps.port for p in parts if p.traps is not None] == [1162, 1163, 1164]
    api_ports = [p.alerts.api.port for p in parts if p.alerts is not None and p.alerts.api]
    assert api_ports == [9180, 9181, 9182]
    assert [p.web.port for p in parts if p.web is not None] == [9280, 9281, 9282]


def test_one_shard_is_the_whole_config_unchanged() -> None:
    config = _with_services(None)
    assert shard_config(config, Shard(1, 1)) == config


def test_shard_plan_names_every_room_once() -> None:
    config = _with_services(None)
    plan = describe(config, 2)
    rooms = [
        line.split()[1].rstrip(":")
        for line in plan.splitlines()
        if line.strip().startswith("room ")
    ]
    assert sorted(rooms) == sorted(f"{s.id}/{r.id}" for s in config.sites for r in s.rooms)
    assert "udp 0.0.0.0:1163" in plan
