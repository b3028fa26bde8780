"""The demo's inventory is a simulator site file: served by the simulators, polled by the monitor.

`site_config` reads the site file (default `simulators/sites/demo-site.yaml`) as the
simulators serve it; `monitor_config` is the same inventory as the monitor polls the
started site: where each device really answers, polls every site interval / speed
wall seconds (simulated time runs `speed` times faster), the embedded broker, the
sink, the alert API and the board. `alert_engine` runs the default rule packs on
simulated time, so a rule's `for: 5m` is five simulated minutes, as the scenario
files count them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from dcim.alerts.service import AlertEngine, Emit, device_infos, load_rules
from dcim.inventory import Config, load_config
from dcim.reading import Reading
from dcim.web.auth import hash_password

#: SNMP answers may be late (simulators share the monitor's process and event loop).
SNMP_TIMEOUT_S = 2.0
OPERATOR = "operator"
#: Simulated seconds before the first alert may fire.
STARTUP_GRACE_S = 120.0


def default_site_file() -> Path:
    return Path(str(resources.files("simulators").joinpath("sites/demo-site.yaml")))


def site_config(path: Path, mqtt_url: str | None) -> Config:
    """The site file, its MQTT sensors pointed at `mqtt_url` (the embedded broker speaks 3.1.1)."""
    config = load_config(path)
    if config.mqtt is not None and mqtt_url is not None:
        broker = config.mqtt.model_copy(update={"url": mqtt_url, "protocol": "3.1.1"})
        config = config.model_copy(update={"mqtt": broker})
    return config


def demo_inventory() -> Config:
    """The inventory `dcim demo` polls, as its site file says (Grafana exports use it)."""
    return load_config(default_site_file())


@dataclass(frozen=True, slots=True)
class Credentials:
    """Made up for one run: the board's operator, the alert API and the state API tokens."""

    operator_password: str
    api_token: str
    state_token: str

    @classmethod
    def new(cls) -> Credentials:
        return cls(secrets.token_urlsafe(9), secrets.token_urlsafe(24), secrets.token_urlsafe(24))


def _devices(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for site in data["sites"]:
        for room in site["rooms"]:
            yield from room["devices"]
            for row in room["rows"]:
                yield from row["devices"]
                for rack in row["racks"]:
                    yield from rack["devices"]


def monitor_config(
    site: Config,
    addresses: dict[str, tuple[str, int]],
    *,
    interval_s: float | None,
    speed: float,
    state_dir: Path,
    sink: dict[str, Any] | None,
    mqtt_client_id: str,
    web_port: int | None,
    credentials: Credentials,
    startup_grace_s: float = STARTUP_GRACE_S,
    update_s: float = 1.0,
) -> Config:
    """The site as the monitor polls it (see the module doc); `web_port` None: no board."""
    data = site.model_dump()
    for device in _devices(data):
        device["poll_interval_s"] = interval_s or device["poll_interval_s"] / speed
        where = addresses.get(device["id"])
        if where is None:
            continue
        if device["snmp"] is not None:
            device["snmp"].update(host=where[0], port=where[1], timeout_s=SNMP_TIMEOUT_S)
        elif device["modbus"] is not None:
            device["modbus"].update(host=where[0], port=where[1])
    if data["mqtt"] is not None:
        data["mqtt"]["client_id"] = mqtt_client_id
    data["monitor"].update(
        state_dir=state_dir,
        self_metrics_interval_s=max(1.0, min(d["poll_interval_s"] for d in _devices(data))),
    )
    data["sinks"] = [sink] if sink is not None else []
    data["alerts"] = {
        "api": {"host": "127.0.0.1", "port": 0, "token": credentials.api_token},
        # simulated seconds: the whole hall's first polls (and a loaded machine) fit in it
        "startup_grace_s": startup_grace_s,
    }
    if web_port is not None:
        data["web"] = {
            "host": "127.0.0.1",
            "port": web_port,
            "anonymous_read": True,  # the URL shows the hall at once; acting needs the operator
            "users": [
                {
                    "name": OPERATOR,
                    "role": "operator",
                    "password_hash": hash_password(credentials.operator_password, rounds=10),
                }
            ],
            "api_token": credentials.state_token,
            "update_s": update_s,
        }
    return Config.model_validate(data)


def alert_engine(monitor: Config, site: Config, clock: Any, speed: float) -> AlertEngine:
    """The default packs on simulated time; devices' intervals as the site file gives them."""
    assert monitor.alerts is not None
    # the rooms' classes as the site says, the default class as the monitor's alerts do
    devices = device_infos(site.model_copy(update={"alerts": monitor.alerts}))
    settings = monitor.alerts
    store = monitor.monitor.state_dir / settings.db_file
    # incidents of an earlier run are in another simulated time: start afresh
    for leftover in (
        store,
        store.with_name(store.name + "-wal"),
        store.with_name(store.name + "-shm"),
    ):
        leftover.unlink(missing_ok=True)
    engine = SimTimeAlertEngine(
        settings, load_rules(settings), devices, monitor.monitor.state_dir, clock=clock
    )
    engine.speed = speed
    return engine


class SimTimeAlertEngine(AlertEngine):
    """Sees every reading stamped with simulated time (rate rules compare timestamps).

    A reading's wall time maps onto simulated time by one fixed affine map, so the
    readings of one poll keep one timestamp (the sensor-health rules count a poll as
    one report by its timestamp: stamping each reading as it passed made every reading
    a report of its own and raised "probe stopped reporting" all over the hall).
    """

    #: Simulated seconds per wall second.
    speed: float = 1.0

    async def run(self, source: asyncio.Queue[Reading], emit: Emit) -> None:
        restamped: asyncio.Queue[Reading] = asyncio.Queue(maxsize=source.maxsize)
        wall0, sim0 = time.time_ns(), int(self.clock() * 1e9)
        speed = self.speed

        async def pump() -> None:
            while True:
                reading = await source.get()
                sim_ns = sim0 + int((reading.ts_ns - wall0) * speed)
                # waiting here fills the bus queue, which counts what it drops
                await restamped.put(dataclasses.replace(reading, ts_ns=sim_ns))

        task = asyncio.create_task(pump())
        try:
            await super().run(restamped, emit)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
