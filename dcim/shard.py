"""Split one inventory over N monitor processes, a whole room per shard.

Rules that span a room (row averages, fire = smoke + heat in the same room)
need all of that room's readings in one process, so rooms are never split.
Every process computes the same assignment from the same file: rooms sorted by
size (largest first, ties by site/room id) go to the least-loaded shard.

All shards can run from the same file, on one machine or several: each gets
what must not be shared — its own state directory (spool, alert store), file sink, MQTT
client id (the broker would otherwise drop one session for the other), and on
one machine its own alert API, board, ops (metrics) and trap ports (configured port
+ I - 1); each board shows the other shards' rooms when they are listed as its `web.peers`.
`dcim shards CONFIG N` prints the plan, so trap destinations can follow it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dcim.inventory import Config, FileSinkConfig, MqttBrokerConfig, RoomConfig, SiteConfig


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


def room_sizes(config: Config) -> dict[tuple[str, str], int]:
    """(site id, room id) -> number of devices, for every room of the inventory."""
    return {(site.id, room.id): _room_size(room) for site in config.sites for room in site.rooms}


def rooms_config(config: Config, rooms: set[tuple[str, str]]) -> Config:
    """`config` with only these rooms (a site without any keeps no room; with no room at
    all, the first site stays, empty: the monitor still runs and reports its own health)."""
    sites: list[SiteConfig] = []
    for site in config.sites:
        kept = [room for room in site.rooms if (site.id, room.id) in rooms]
        if kept:
            sites.append(site.model_copy(update={"rooms": kept}))
    if not sites:
        sites = [config.sites[0].model_copy(update={"rooms": []})]
    return config.model_copy(update={"sites": sites})


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
    """The part of `config` this shard polls, with its own state, client id and ports."""
    assignment = assign_rooms(config, shard.count)
    mine = {room for room, index in assignment.items() if index == shard.index}
    return rooms_config(config, mine).model_copy(update=_own_resources(config, shard))


def member_config(config: Config, rooms: set[tuple[str, str]], member: str) -> Config:
    """The rooms a coordinated member polls now (`dcim.coord`), with its own MQTT client id
    (members share the broker). Its state directory, ports and file sinks are its own
    already: one member per machine, each with its own config file or conf.d."""
    part = rooms_config(config, rooms)
    if config.mqtt is None:
        return part
    return part.model_copy(update={"mqtt": _own_client_id(config, f"member-{member}")})


def _own_client_id(config: Config, suffix: str) -> MqttBrokerConfig:
    """The MQTT broker settings with the client id made this process's own."""
    assert config.mqtt is not None
    from dcim.mqttclient import default_client_id

    base = config.mqtt.client_id or default_client_id()
    client_id = f"{base[: 64 - len(suffix) - 1]}-{suffix}"
    return config.mqtt.model_copy(update={"client_id": client_id})


def _own_resources(config: Config, shard: Shard) -> dict[str, Any]:
    """Settings two shards of one file must not share."""
    if shard.count == 1:
        return {}
    suffix = f"shard-{shard.index}-of-{shard.count}"
    offset = shard.index - 1
    update: dict[str, Any] = {
        "monitor": config.monitor.model_copy(
            update={"state_dir": config.monitor.state_dir / suffix}
        )
    }
    if any(isinstance(sink, FileSinkConfig) for sink in config.sinks):
        update["sinks"] = [
            sink.model_copy(
                update={"path": sink.path.with_name(f"{sink.path.stem}.{suffix}{sink.path.suffix}")}
            )
            if isinstance(sink, FileSinkConfig)
            else sink
            for sink in config.sinks
        ]
    if config.mqtt is not None:
        update["mqtt"] = _own_client_id(config, suffix)
    if config.traps is not None and config.traps.port:
        update["traps"] = config.traps.model_copy(update={"port": config.traps.port + offset})
    ops = config.monitor.ops
    if ops is not None and ops.port:
        monitor = update["monitor"]
        ops = ops.model_copy(update={"port": ops.port + offset})
        update["monitor"] = monitor.model_copy(update={"ops": ops})
    alerts = config.alerts
    if alerts is not None and alerts.api is not None and alerts.api.port:
        api = alerts.api.model_copy(update={"port": alerts.api.port + offset})
        update["alerts"] = alerts.model_copy(update={"api": api})
    if config.web is not None and config.web.port:
        update["web"] = config.web.model_copy(update={"port": config.web.port + offset})
    return update


def describe(config: Config, count: int) -> str:
    """The shard plan as text: rooms, device counts, state dir and ports per shard."""
    lines = []
    for index in range(1, count + 1):
        part = shard_config(config, Shard(index, count))
        rooms = [(site.id, room) for site in part.sites for room in site.rooms]
        devices = sum(_room_size(room) for _, room in rooms)
        lines.append(f"shard {index}/{count}: {devices} devices, {len(rooms)} rooms")
        lines.append(f"  state_dir: {part.monitor.state_dir}")
        if part.traps is not None:
            lines.append(f"  traps: udp {part.traps.host}:{part.traps.port}")
        if part.alerts is not None and part.alerts.api is not None:
            lines.append(f"  alert api: {part.alerts.api.host}:{part.alerts.api.port}")
        if part.web is not None:
            lines.append(f"  board: {part.web.host}:{part.web.port}")
        if part.monitor.ops is not None:
            lines.append(f"  metrics/health: {part.monitor.ops.host}:{part.monitor.ops.port}")
        if part.mqtt is not None:
            lines.append(f"  mqtt client id: {part.mqtt.client_id}")
        lines.extend(
            f"  room {site_id}/{room.id}: {_room_size(room)} devices" for site_id, room in rooms
        )
    return "\n".join(lines)
