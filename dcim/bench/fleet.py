"""The simulated fleet as an inventory: halls of racks with two PDUs each, v2c or v3."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulators.fast_agent import FleetDevice


def v3_credentials() -> tuple[str, str, str]:
    """(user, auth key, priv key) every fast-agent device answers SNMPv3 with (`--v3`)."""
    import simulators.fast_agent as agent

    names = ("BENCH_V3_USER", "BENCH_V3_AUTH_KEY", "BENCH_V3_PRIV_KEY")
    values = [getattr(agent, name, None) for name in names]
    if not all(isinstance(v, str) for v in values):
        msg = "this simulators.fast_agent has no SNMPv3 (BENCH_V3_* constants): use v2c"
        raise SystemExit(msg)
    user, auth, priv = (str(v) for v in values)
    return user, auth, priv


def _snmp_section(
    member: FleetDevice, port: int, max_repetitions: int, snmp_version: str
) -> dict[str, Any]:
    snmp: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        # v3 devices keep their community too: the trap receiver tells senders that share
        # an address apart by it (the bench's traps are v2c)
        "community": member.community,
        "max_repetitions": max_repetitions,
    }
    if snmp_version == "v3":
        user, auth, priv = v3_credentials()
        snmp["version"] = "v3"
        snmp["v3"] = {
            "user": user,
            "auth_protocol": "sha256",
            "auth_key": auth,
            "priv_protocol": "aes128",
            "priv_key": priv,
            "context_name": member.community,
        }
    return snmp


def fleet_config(
    count: int,
    ports: Sequence[int],
    interval_s: float,
    max_repetitions: int,
    snmp_version: str = "v2c",
) -> dict[str, Any]:
    """An inventory for the first `count` fleet devices: halls of racks with 2 PDUs each."""
    from simulators.fast_agent import fleet

    halls: list[dict[str, Any]] = []
    racks: list[dict[str, Any]] = []
    room_devices: list[dict[str, Any]] = []
    pdus_in: list[int] = []  # PDUs of each rack so far
    for n, member in enumerate(fleet(count)):
        device = {
            "id": member.id,
            "kind": member.kind,
            "poll_interval_s": interval_s,
            "vendor": "Simulated",
            "model": member.profile,
            "profile": member.profile,
            "snmp": _snmp_section(member, ports[n % len(ports)], max_repetitions, snmp_version),
        }
        if member.kind == "pdu":
            if not racks or pdus_in[-1] == 2:
                racks.append({"id": f"r{len(racks):05d}", "devices": []})
                pdus_in.append(0)
            racks[-1]["devices"].append(device)
            pdus_in[-1] += 1
        elif member.kind == "sensor" and racks:
            # a probe at a rack's inlet, as halls have them: the floor map's temperatures
            # move with its readings (one probe per rack, on the latest racks)
            device["tags"] = {"position": "inlet"}
            free = [
                r for r, n in zip(racks[-8:], pdus_in[-8:], strict=True) if len(r["devices"]) == n
            ]
            (free or racks)[-1]["devices"].append(device)
        else:
            room_devices.append(device)
    per_hall = 250
    for h in range(0, max(len(racks), 1), per_hall):
        hall_racks = racks[h : h + per_hall]
        rows = [
            {"id": f"row-{r // 10:03d}", "racks": hall_racks[r : r + 10]}
            for r in range(0, len(hall_racks), 10)
        ]
        halls.append({"id": f"hall-{h // per_hall + 1}", "rows": rows, "devices": []})
    halls[0]["devices"] = room_devices
    return {
        # the monitor's defaults: max_in_flight is per UDP socket of 250 devices in the
        # fast client (2,000 in flight at 5,000 devices); a lower figure starves the
        # polls, as a slot is given back 150 ms after its request whether answered or not
        "monitor": {"jitter": 1.0, "max_in_flight": 100},
        "sites": [{"id": "bench", "name": "Bench site", "rooms": halls}],
    }
