"""The small hall served by its simulators, polled by the real monitor, shown on its board.

Everything runs in one background thread with its own event loop (selenium is
synchronous): the embedded MQTT broker, `simulators/sites/small-site.yaml` on the
lean SNMP agent (a device's snapshot reused SNAPSHOT_S) and Modbus servers, and the monitor with the alert engine (default packs, on simulated time)
and the board (`web:`) on free loopback ports, polling every POLL_S wall seconds.

Simulated time runs at a rate the test sets (`Warp`): 1 while the test watches
something happen at once (a UPS going on battery), faster while rooms heat up.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from collectors.registry import CollectorFactory
from dcim.audit import read_audit
from dcim.cli.demo.hall import Credentials, alert_engine, monitor_config, site_config
from dcim.cli.demo.run import embedded_broker
from dcim.clock import SimClock
from dcim.runner import Monitor
from simulators.site import Site

ROOT = Path(__file__).resolve().parents[2]
SITE_FILE = ROOT / "simulators" / "sites" / "small-site.yaml"
#: Wall seconds between two polls of every device.
POLL_S = 1.0
#: Wall seconds between the board's live updates.
UPDATE_S = 0.5
START_WITHIN_S = 60.0
#: Wall seconds the SNMP agent reuses a device's snapshot (one poll's requests share it).
SNAPSHOT_S = 0.2
#: Simulated seconds per step of the hall model.
MODEL_TICK_S = 1.0
T = TypeVar("T")


class Warp:
    """Monotonic seconds that run `rate` times faster than the wall clock (rate changes live)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wall = time.monotonic()
        self._virtual = 0.0
        self.rate = 1.0

    def __call__(self) -> float:
        with self._lock:
            now = time.monotonic()
            return self._virtual + (now - self._wall) * self.rate

    def set_rate(self, rate: float) -> None:
        with self._lock:
            now = time.monotonic()
            self._virtual += (now - self._wall) * self.rate
            self._wall, self.rate = now, rate


@dataclass
class Rig:
    state_dir: Path
    warp: Warp = field(default_factory=Warp)
    credentials: Credentials = field(default_factory=Credentials.new)
    site: Site | None = None
    monitor: Monitor | None = None
    url: str = ""
    api_url: str = ""
    _loop: asyncio.AbstractEventLoop | None = None
    _stop: asyncio.Event | None = None
    _thread: threading.Thread | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _error: BaseException | None = None

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="board rig", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_WITHIN_S):
            raise TimeoutError(f"the rig did not start in {START_WITHIN_S:g} s")
        if self._error is not None:
            raise RuntimeError("the rig failed to start") from self._error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(60)
            assert not self._thread.is_alive(), "the rig did not stop in 60 s"

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        clock = SimClock(1.0, start_s=time.time(), now_fn=self.warp)
        async with embedded_broker() as mqtt_port:
            mqtt_url = f"mqtt://127.0.0.1:{mqtt_port}"
            served = site_config(SITE_FILE, mqtt_url)
            # a model step per simulated second: a UPS goes on battery within a second
            site = self.site = Site(served, clock=clock, tick_s=MODEL_TICK_S)
            await site.start(
                "127.0.0.1",
                0,
                mqtt_url=mqtt_url,
                mqtt_interval_s=POLL_S,
                fast_snmp=True,
                snapshot_s=SNAPSHOT_S,
            )
            try:
                addresses = {}
                for device_id, placed in site.topology.placed.items():
                    if placed.device.snmp is not None:
                        addresses[device_id] = site.address_of(device_id)[:2]
                    elif placed.device.modbus is not None:
                        addresses[device_id] = site.modbus_address_of(device_id)[:2]
                config = monitor_config(
                    served,
                    addresses,
                    interval_s=POLL_S,
                    speed=1.0,
                    state_dir=self.state_dir,
                    sink=None,
                    mqtt_client_id="dcim-board-test",
                    web_port=0,
                    credentials=self.credentials,
                    startup_grace_s=2.0,
                    update_s=UPDATE_S,
                )
                monitor = self.monitor = Monitor(
                    config,
                    collectors=CollectorFactory.for_config(config),
                    alerts=alert_engine(config, served, clock.now, clock.speed),
                )
                running = asyncio.create_task(monitor.run(self._stop))
                while (
                    monitor.board is None
                    or monitor.board.port is None
                    or monitor.alerts is None
                    or monitor.alerts.api_port is None
                ):
                    if running.done():
                        await running
                    await asyncio.sleep(0.05)
                assert monitor.board is not None
                assert monitor.alerts is not None
                self.url = monitor.board.url.rstrip("/")
                self.api_url = f"http://127.0.0.1:{monitor.alerts.api_port}"
                self._ready.set()
                await running
            finally:
                await site.aclose()

    # --- from the test's thread ------------------------------------------------------------

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the rig's event loop (the hall model is not thread-safe) and return."""
        assert self._loop is not None
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the caller
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return future.result(timeout=30)

    def incidents(self) -> list[Any]:
        assert self.monitor is not None
        assert self.monitor.alerts is not None
        alerts = self.monitor.alerts
        return self.call(lambda: list(alerts.incidents()))

    def audit(self) -> list[Any]:
        return list(read_audit(self.state_dir / "audit.jsonl"))
