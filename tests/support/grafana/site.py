"""A test data hall with every device kind, around the `dcim demo` inventory.

Site `demo`, room `hall-1` and UPS `ups-1..3` are exactly the demo's, so data
the demo's simulators write also fills these dashboards. Row `row-1` adds a
rack UPS (so row and rack tags exist in the data) and, for the kinds whose
simulators are still being built, PDUs, CRAC, sensors and meters.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from dcim.inventory import Config

#: Seconds between polls of the hall's devices (tests that query later use a longer one).
POLL_S = 0.5


def _device(ident: str, kind: str, community: str, port: int, **tags: str) -> dict[str, Any]:
    return {
        "id": ident,
        "kind": kind,
        "vendor": "DCIM Simulators",
        "profile": "ups-mib-rfc1628" if kind == "ups" else f"{kind}-pending",
        "poll_interval_s": POLL_S,
        "snmp": {"host": "127.0.0.1", "port": port, "community": community, "timeout_s": 1},
        "tags": dict(tags),
    }


def hall_dict(port: int = 1161) -> dict[str, Any]:
    room_devices = [_device(f"ups-{n}", "ups", f"ups{n}", port) for n in (1, 2, 3)]
    room_devices += [
        _device("crac-1", "crac", "crac1", port),
        _device("meter-facility", "meter", "m1", port, scope="facility"),
        _device("meter-it", "meter", "m2", port, scope="it"),
        _device("vesda-1", "sensor", "s0", port, sensor="smoke"),
    ]
    racks = []
    for rack in ("r01", "r02"):
        devices = [
            _device(f"pdu-{rack}-a", "pdu", "p", port, feed="A"),
            _device(f"pdu-{rack}-b", "pdu", "p", port, feed="B"),
            _device(f"temp-{rack}", "sensor", "s", port, sensor="env"),
        ]
        if rack == "r01":
            devices.insert(0, _device("ups-r01", "ups", "ups4", port))
        racks.append({"id": rack, "devices": devices})
    return {
        "monitor": {"self_metrics_interval_s": 1},
        "sites": [
            {
                "id": "demo",
                "rooms": [
                    {
                        "id": "hall-1",
                        "devices": room_devices,
                        "rows": [{"id": "row-1", "racks": racks}],
                    }
                ],
            }
        ],
    }


def hall_config(
    port: int = 1161,
    kinds: Collection[str] | None = None,
    poll_s: float | None = None,
    **extra: Any,
) -> Config:
    """The hall; with `kinds`, only devices of those kinds (what can be polled today)."""
    data = hall_dict(port)
    if poll_s is not None:
        for room in data["sites"][0]["rooms"]:
            for device in room["devices"]:
                device["poll_interval_s"] = poll_s
            for rack in room["rows"][0]["racks"]:
                for device in rack["devices"]:
                    device["poll_interval_s"] = poll_s
    if kinds is not None:
        room = data["sites"][0]["rooms"][0]
        room["devices"] = [d for d in room["devices"] if d["kind"] in kinds]
        for rack in room["rows"][0]["racks"]:
            rack["devices"] = [d for d in rack["devices"] if d["kind"] in kinds]
    data.update(extra)
    return Config.model_validate(data)
