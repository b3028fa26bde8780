"""The drill's rig: real servers on free ports, the monitor as a process, and the
bookkeeping that turns each played fault into a row of the table."""

from __future__ import annotations

import asyncio
import signal
import textwrap
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support.drill.parts import MonitorProcess, Publisher, RogueProxy, Webhook
from tests.support.drill.points import Key, Tally, parse_line, read_influx, tally
from tests.support.mosquitto_server import Mosquitto
from tests.support.servers import InfluxDB1
from tests.support.waiting import eventually

DB = "drill"
POLL_S = 0.5
FLUSH_S = 0.2


def _number(raw: str) -> float:
    """A line-protocol value as a number (1i, 2.5, true/false, "text" -> nan)."""
    if raw in ("true", "false"):
        return 1.0 if raw == "true" else 0.0
    try:
        return float(raw.removesuffix("i"))
    except ValueError:
        return float("nan")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Truth:
    """The file sink, read as it grows (whole lines only)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.counts: Counter[Key] = Counter()
        #: Raw line-protocol value of each key (the last one written).
        self.raw: dict[Key, str] = {}
        self._offset = 0

    def refresh(self) -> Counter[Key]:
        if self.path.exists():
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
            whole = data[: data.rfind(b"\n") + 1]
            self._offset += len(whole)
            for line in whole.decode("utf-8", "replace").splitlines():
                for key, value in parse_line(line) if line.strip() else []:
                    self.counts[key] += 1
                    self.raw[key] = value
        return self.counts

    def values(self, measurement: str, field_name: str, **tags: str) -> list[Key]:
        """Keys of one field of one measurement whose tags include `tags`."""
        self.refresh()
        return [
            k
            for k in self.counts
            if k[0] == measurement
            and k[2] == field_name
            and all((name, value) in k[1] for name, value in tags.items())
        ]


@dataclass
class Row:
    fault: str
    tally: Tally | None = None
    notifications: str = "0 / 0"
    recovery_s: float | None = None
    note: str = ""
    #: Points the monitor said it held only in memory when it was killed (lost with it).
    in_memory: int | None = None

    def cells(self) -> list[str]:
        recovery = f"{self.recovery_s:.1f} s" if self.recovery_s is not None else "-"
        points = self.tally.row() if self.tally else "-"
        if self.in_memory is not None:
            points += f" (+{self.in_memory} in memory at the kill: lost, counted)"
        return [self.fault, points, self.notifications, recovery, self.note]


class Rig:
    """Everything the drill plays with; `rows` is the table it fills."""

    def __init__(
        self,
        *,
        workdir: Path,
        state_dir: Path,
        influx: InfluxDB1,
        broker: Mosquitto,
        agent_port: int,
        rogue: RogueProxy,
        webhook: Webhook,
        publisher: Publisher,
        trap_port: int,
    ) -> None:
        self.workdir = workdir
        self.state_dir = state_dir
        self.influx = influx
        self.broker = broker
        self.agent_port = agent_port
        self.rogue = rogue
        self.webhook = webhook
        self.publisher = publisher
        self.trap_port = trap_port
        self.truth = Truth(workdir / "truth.lp")
        self.config = workdir / "site.yaml"
        self.config.write_text(self._config())
        self.monitor = MonitorProcess(self.config, workdir / "monitor.log")
        self.rows: list[Row] = []

    def _config(self) -> str:
        return textwrap.dedent(
            f"""\
            monitor:
              state_dir: {self.state_dir}
              self_metrics_interval_s: 1
              jitter: 0
            defaults:
              poll_interval_s: {POLL_S}
              snmp: {{host: 127.0.0.1, port: {self.agent_port}, timeout_s: 1.5, retries: 0}}
            sites:
              - id: dc1
                rooms:
                  - id: hall-a
                    devices:
                      - {{id: ups-1, kind: ups, profile: ups-mib-rfc1628, snmp: {{community: ups1}}}}
                      - {{id: ups-2, kind: ups, profile: ups-mib-rfc1628, snmp: {{community: ups2}}}}
                      - id: ups-traps
                        kind: ups
                        profile: ups-mib-rfc1628
                        poll_interval_s: 3600
                        snmp: {{community: ups4}}
                      - id: ups-rogue
                        kind: ups
                        profile: ups-mib-rfc1628
                        snmp: {{port: {self.rogue.port}, community: ups3, timeout_s: 0.4}}
                    rows:
                      - id: row-1
                        racks:
                          - id: r1
                            devices:
                              - {{id: env-r1, kind: sensor, profile: rack-env-json, mqtt: {{}}}}
            mqtt: {{url: "mqtt://127.0.0.1:{self.broker.port}", client_id: dcim-drill, qos: 1}}
            traps: {{host: 127.0.0.1, port: {self.trap_port}, communities: [ups1, ups2, ups3, ups4]}}
            alerts:
              packs: [ups]
              startup_grace_s: 0
              channels:
                - {{type: webhook, name: hook, url: "http://127.0.0.1:{self.webhook.port}/hook"}}
              retry: {{initial_s: 0.2, max_s: 1}}
            sinks:
              - type: influxdb
                name: influx
                url: {self.influx.url}
                api: v1
                database: {DB}
                flush_interval_s: {FLUSH_S}
                timeout_s: 2
              - {{type: file, name: truth, path: {self.truth.path}, flush_interval_s: {FLUSH_S}}}
            """
        )

    # --- InfluxDB faults -------------------------------------------------------------

    def influx_signal(self, sig: signal.Signals) -> None:
        proc = self.influx._proc
        assert proc is not None
        proc.send_signal(sig)
        if sig == signal.SIGKILL:
            proc.wait()

    async def influx_start(self) -> None:
        await asyncio.to_thread(self.influx.start)

    # --- reading the outcome -----------------------------------------------------------

    async def stored(self, start_ms: int, end_ms: int) -> set[Key]:
        return await asyncio.to_thread(read_influx, self.influx.url, DB, start_ms, end_ms)

    async def tally(self, start_ms: int, end_ms: int, produced: set[Key] = frozenset()) -> Tally:  # type: ignore[assignment]
        truth = Counter(self.truth.refresh())
        for key in produced:
            truth.setdefault(key, 1)
        return tally(truth, await self.stored(start_ms, end_ms), start_ms, end_ms)

    async def converged(
        self,
        start_ms: int,
        end_ms: int,
        within_s: float,
        *,
        allowed: Callable[[Key], bool] = lambda _: False,
        produced: Callable[[], set[Key]] = set,
    ) -> tuple[Tally, float]:
        """Wait until InfluxDB holds every point of the window the file sink holds (but
        those `allowed` to be lost); the tally and the seconds it took."""
        started = time.monotonic()
        deadline = started + within_s
        while True:
            result = await self.tally(start_ms, end_ms, produced())
            if all(allowed(k) for k in result.lost) or time.monotonic() > deadline:
                return result, time.monotonic() - started
            await asyncio.sleep(0.25)

    async def until(
        self, check: Callable[[], bool | Awaitable[bool]], what: str, within_s: float
    ) -> float:
        """Seconds until `check()` holds; TimeoutError naming `what`; fails at once
        when the monitor died meanwhile."""

        def alive_and(check_now: Callable[[], bool | Awaitable[bool]]) -> bool | Awaitable[bool]:
            if not self.monitor.alive and self.monitor.starts:
                raise AssertionError(f"the monitor died: {self.monitor.log()[-3000:]}")
            return check_now()

        started = time.monotonic()
        await eventually(lambda: alive_and(check), within_s, f"drill: {what}")
        return time.monotonic() - started

    def self_metric(self, metric_field: str, since_ms: int = 0, **tags: str) -> list[float]:
        """Values of one dcim_self field (self-metrics, device health) since an instant."""
        keys = sorted(
            (k for k in self.truth.values("dcim_self", metric_field, **tags) if k[3] >= since_ms),
            key=lambda k: k[3],
        )
        return [_number(self.truth.raw[k]) for k in keys]

    def table(self) -> str:
        header = [
            "fault",
            "points produced / stored / lost / duplicated",
            "notifications expected / sent",
            "recovery",
            "seen as",
        ]
        rows = [header, ["---"] * len(header)] + [row.cells() for row in self.rows]
        return "\n".join("| " + " | ".join(cells) + " |" for cells in rows)
