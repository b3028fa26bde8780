"""One inlet-temperature rule on one rack sensor, and an alert service with real channels.

For tests of notification channels against real peers: the rule, the device, its
readings, a service that retries quickly, and a wait until a channel is done.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from dcim.alerts.config import AlertsConfig
from dcim.alerts.kinds.base import DeviceInfo
from dcim.alerts.rules import parse_rules
from dcim.alerts.service import AlertEngine
from dcim.clock import ManualClock
from dcim.reading import Reading

RULES = parse_rules(
    """
rules:
  - id: inlet
    runbook_url: docs/runbooks.md#ashrae-inlet-temp
    kind: threshold
    metric: sensor.temp_c
    levels: {high_warning: 27, high_critical: 32}
""",
    "test",
)
TAGS = {"site": "par1", "room": "hall-a", "rack": "a01", "device": "env-1", "kind": "sensor"}
DEVICES = {"env-1": DeviceInfo(TAGS, 30.0)}


def temp(value: float, clock: ManualClock) -> Reading:
    """The sensor's inlet temperature now."""
    return Reading("env-1", "sensor.temp_c", value, "degC", int(clock() * 1e9), TAGS)


def service(
    tmp_path: Path,
    clock: ManualClock,
    *channels: dict[str, Any],
    retry_s: tuple[float, float] = (0.02, 0.1),
    links: dict[str, Any] | None = None,
    routes: list[dict[str, Any]] | None = None,
) -> AlertEngine:
    """A started service with `channels`; a failed send is retried after `retry_s`
    (first, longest) and reported once it failed twice. `links`: `alerts.links`."""
    initial_s, max_s = retry_s
    settings = AlertsConfig.model_validate(
        {
            "packs": [],
            "startup_grace_s": 0,
            "channels": list(channels),
            "routes": routes or [],
            "retry": {"initial_s": initial_s, "max_s": max_s, "fail_after": 2},
            "links": links or {},
        }
    )
    engine = AlertEngine(settings, RULES, DEVICES, tmp_path, clock=clock)
    engine.dispatcher.start()
    return engine


async def all_delivered(alerts: AlertEngine, channel: str) -> None:
    """Wait until the channel marked every outbox row delivered (not just sent)."""
    done = asyncio.Event()

    def check(_: str, __: object) -> None:
        if not alerts.store.pending(channel):
            done.set()

    alerts.dispatcher.on_delivered = check
    if alerts.store.pending(channel):
        async with asyncio.timeout(10):
            await done.wait()
