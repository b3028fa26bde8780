"""`dcim bench snmp`: SNMP polling at scale, side by side with prometheus-snmp-exporter.

One run, one machine, one simulated fleet (`simulators.fast_agent.fleet`: rack
PDUs with outlet tables on the APC rPDU2 MIB, UPS on the UPS-MIB, AKCP
probes) served by fast-agent processes (`dcim.benchagent`). Then, one after the
other, each in its own process so CPU and memory are its own:

- monitor (the main phase): the real `dcim.runner.Monitor` with a real sink
  (VictoriaMetrics or influxd 1.x), the trap receiver, MQTT and the alert
  engine, while traps and MQTT messages cross rules (`dcim.benchdrive`);
- fast: the monitor's collectors (`CollectorFactory`, `DevicePoller`, the
  SNMP client) poll every device every `--interval` seconds;
- exporter: prometheus-snmp-exporter (Debian package) with a generated
  `snmp.yml` walking the same OIDs, scraped by a load loop in another
  process on the same schedule; its CPU is read from /proc.

Every phase first polls for one interval (warm-up: sessions, caches), then
measures for `--duration` seconds. A poll counts when it returns readings
(or, for the exporter, an HTTP 200 with samples). Results are ratios taken
in the same run: monitor and fast vs exporter polls per CPU-second.
`--json FILE` keeps everything; `dcim bench report FILE` renders it as a table.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from dcim.benchagent import SimulatedFleet, default_processes
from dcim.benchservers import SINKS
from dcim.benchudp import QueueWatch
from dcim.collector import Collector
from dcim.errors import CollectError
from dcim.reading import Reading

if TYPE_CHECKING:
    from simulators.fast_agent import FleetDevice

PHASES = ("monitor", "fast", "exporter")
DEFAULT_PHASES = "monitor,exporter"
_TICKS = os.sysconf("SC_CLK_TCK")


# --- shared helpers ---------------------------------------------------------------


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_of(pid: int | str = "self") -> int:
    """Resident set size in bytes, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


#: Concurrent scrapes of the exporter phase.
TOTAL_IN_FLIGHT = 100


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
            if not racks or len(racks[-1]["devices"]) == 2:
                racks.append({"id": f"r{len(racks):05d}", "devices": []})
            racks[-1]["devices"].append(device)
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


# --- phase: the monitor's pollers (child process) --------------------------------


class _Stats:
    """Per-poll figures of the measured window."""

    def __init__(self) -> None:
        self.measuring = False
        self.ok = 0
        self.failed = 0
        self.readings = 0
        self.lags: list[float] = []
        self.durations: list[float] = []
        self.errors: dict[str, int] = {}


class TimedCollector:
    """A poller's collector, timed: start lag against the poller's grid, outcome, duration."""

    def __init__(self, inner: Collector, interval: float, offset: float, window: _Stats) -> None:
        self.inner = inner
        self.device_id = inner.device_id
        self.tags = inner.tags
        self._interval = interval
        self.offset = offset
        self._window = window
        #: loop time at which the poller laid its grid (set when its task starts)
        self.grid_start = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # per-poll quality counters the poller reads

    async def __aenter__(self) -> TimedCollector:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.inner.__aexit__(*exc)

    async def poll(self) -> list[Reading]:
        loop = asyncio.get_running_loop()
        now = loop.time()
        first_due = self.grid_start + self.offset
        lag = now - (first_due + round((now - first_due) / self._interval) * self._interval)
        window = self._window
        # counted when started inside the window (and ended before it closed): polls
        # queued before it would otherwise count past the due rate
        counted = window.measuring
        try:
            readings = await self.inner.poll()
        except Exception as exc:
            if counted and window.measuring:
                window.failed += 1
                name = exc.error_class if isinstance(exc, CollectError) else type(exc).__name__
                window.errors[name] = window.errors.get(name, 0) + 1
            raise
        if counted and window.measuring:
            window.ok += 1
            window.readings += len(readings)
            window.lags.append(lag)
            window.durations.append(loop.time() - now)
        return readings


async def _poll_phase(spec: dict[str, Any]) -> dict[str, Any]:
    from collectors.registry import CollectorFactory
    from dcim.inventory import Config, iter_devices
    from dcim.poller import DevicePoller

    config = Config.model_validate(
        fleet_config(
            spec["devices"],
            spec["ports"],
            spec["interval"],
            spec["max_repetitions"],
            spec.get("snmp_version", "v2c"),
        )
    )
    stats = _Stats()
    loop = asyncio.get_running_loop()

    def emit(readings: Sequence[Reading]) -> None:
        if stats.measuring:
            stats.readings += len(readings)

    class LagPoller(DevicePoller):
        """Tells its timed collector when it laid its grid, for each poll's start lag."""

        timed: TimedCollector

        async def run(self) -> None:
            self.timed.grid_start = loop.time()  # DevicePoller.run reads the same clock first
            await super().run()

    rss_start = rss_of()
    factory = CollectorFactory(max_in_flight=config.monitor.max_in_flight)
    pollers: list[LagPoller] = []
    for placed in iter_devices(config):
        interval = placed.device.poll_interval_s
        timed = TimedCollector(factory.build(placed), interval, 0.0, stats)
        poller = LagPoller(timed, interval_s=interval, emit=emit, spread=1.0)
        timed.offset = poller._offset
        poller.timed = timed
        pollers.append(poller)
    tasks = [asyncio.create_task(p.run()) for p in pollers]
    await asyncio.sleep(spec["interval"])  # warm-up: every device polled once
    stats.measuring = True
    cpu0, wall0 = _cpu_self(), time.perf_counter()
    await asyncio.sleep(spec["duration"])
    cpu, wall = _cpu_self() - cpu0, time.perf_counter() - wall0
    stats.measuring = False
    rss = rss_of()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    factory.close()
    polls = stats.ok
    return {
        "mode": spec["mode"],
        "devices": len(pollers),
        "interval_s": spec["interval"],
        "window_s": round(wall, 2),
        "polls": polls,
        "failed_polls": stats.failed,
        "errors": stats.errors,
        "expected_polls": round(len(pollers) * wall / spec["interval"]),
        "polls_per_s": polls / wall,
        "cpu_s": round(cpu, 3),
        "cpu_share_of_one_core": cpu / wall,
        "polls_per_cpu_s": polls / cpu if cpu else None,
        "readings_per_s": stats.readings / wall,
        "lag_p50_s": _percentile(stats.lags, 0.5),
        "lag_p99_s": _percentile(stats.lags, 0.99),
        "lag_max_s": max(stats.lags, default=None),
        "poll_duration_p50_s": _percentile(stats.durations, 0.5),
        "poll_duration_p99_s": _percentile(stats.durations, 0.99),
        "rss_bytes": rss,
        "rss_before_devices_bytes": rss_start,
        "rss_per_device_bytes": (rss - rss_start) / max(len(pollers), 1),
        "skipped_slots": sum(p.skipped for p in pollers),
    }


# --- phase: prometheus-snmp-exporter ------------------------------------------------


def _exporter_module(profile_name: str) -> dict[str, Any]:
    """A snmp_exporter (0.21 format) module reading what the profile's plan reads."""
    from collectors.snmp.plan import plan_profile
    from collectors.snmp.profile import load_snmp_profile
    from collectors.snmp.types import oid_text

    plan = plan_profile(load_snmp_profile(profile_name))
    prefix = profile_name.replace("-", "_")
    gets = [oid_text(oid) for batch in plan.get_batches for oid in batch]
    metrics: list[dict[str, Any]] = [
        {"name": f"{prefix}_s{n}", "oid": oid_text(oid[:-1]), "type": "gauge", "help": "bench"}
        for n, batch_oid in enumerate(gets)
        for oid in [tuple(int(p) for p in batch_oid.split("."))]
    ]
    walks: list[str] = []
    for table in plan.tables:
        label = table.walk_oids[table.label_column] if table.label_column is not None else None
        for n, column in enumerate(table.walk_oids):
            walks.append(oid_text(column))
            if column == label:
                continue
            metric: dict[str, Any] = {
                "name": f"{prefix}_{table.name}_{n}",
                "oid": oid_text(column),
                "type": "gauge",
                "help": "bench",
                "indexes": [{"labelname": table.index_tag, "type": "gauge"}],
            }
            if label is not None:
                metric["lookups"] = [
                    {
                        "labels": [table.index_tag],
                        "labelname": "label",
                        "oid": oid_text(label),
                        "type": "DisplayString",
                    }
                ]
            metrics.append(metric)
    return {"walk": walks, "get": gets, "metrics": metrics}


def write_exporter_config(
    path: Path, count: int, spec: dict[str, Any]
) -> dict[str, tuple[str, str]]:
    """snmp.yml with one module per device (0.21 keeps the community in the module).

    Written out in full per device: the exporter's YAML parser refuses this many
    aliases. Returns device id -> (module name, metric name prefix).
    """
    from simulators.fast_agent import fleet

    members = fleet(count)
    bodies: dict[str, str] = {}
    modules: dict[str, tuple[str, str]] = {}
    with path.open("w") as out:
        for member in members:
            body = bodies.get(member.profile)
            if body is None:
                base = _exporter_module(member.profile)
                base.update(
                    version=3 if spec.get("snmp_version") == "v3" else 2,
                    max_repetitions=spec["max_repetitions"],
                    retries=spec["retries"],
                    timeout=f"{spec['timeout_s']}s",
                )
                text = yaml.safe_dump(base, sort_keys=False)
                body = bodies[member.profile] = "".join(f"  {line}\n" for line in text.splitlines())
            out.write(f"{member.id}:\n{body}{_exporter_auth(member.community, spec)}")
            modules[member.id] = (member.id, member.profile.replace("-", "_"))
    return modules


def _exporter_auth(community: str, spec: dict[str, Any]) -> str:
    """The module's `auth:` (0.21 keeps credentials in the module): v2c, or v3 authPriv."""
    if spec.get("snmp_version") != "v3":
        return f"  auth:\n    community: {community}\n"
    user, auth_key, priv_key = v3_credentials()
    auth = {
        "security_level": "authPriv",
        "username": user,
        "password": auth_key,
        "auth_protocol": "SHA256",
        "priv_protocol": "AES",
        "priv_password": priv_key,
        "context_name": community,
    }
    text = yaml.safe_dump({"auth": auth}, sort_keys=False)
    return "".join(f"  {line}\n" for line in text.splitlines())


async def _scrape_phase(spec: dict[str, Any]) -> dict[str, Any]:
    """Scrape the exporter for every device on the poll schedule; count and time it."""
    import aiohttp

    members = spec["targets"]
    interval, exporter_pid = spec["interval"], spec["exporter_pid"]
    stats = _Stats()
    samples = 0
    loop = asyncio.get_running_loop()
    rng = random.Random(1)
    connector = aiohttp.TCPConnector(limit=spec["max_in_flight"])
    timeout = aiohttp.ClientTimeout(total=interval)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:

        async def scrape(target: str, module: str, prefix: str) -> None:
            nonlocal samples
            due = loop.time() + rng.uniform(0, interval)
            url = f"http://127.0.0.1:{spec['exporter_port']}/snmp"
            params = {"target": target, "module": module}
            while True:
                await asyncio.sleep(max(0.0, due - loop.time()))
                started = loop.time()
                try:
                    async with http.get(url, params=params) as response:
                        body = await response.text()
                        good = response.status == 200 and f"\n{prefix}_" in body
                        count = body.count("\n") - body.count("\n#")
                except (aiohttp.ClientError, TimeoutError):
                    good, count = False, 0
                if stats.measuring:
                    if good:
                        stats.ok += 1
                        samples += count
                        stats.lags.append(started - due)
                        stats.durations.append(loop.time() - started)
                    else:
                        stats.failed += 1
                due += interval
                while due < loop.time():
                    due += interval

        tasks = [asyncio.create_task(scrape(t, m, p)) for t, m, p in members]
        await asyncio.sleep(interval)
        stats.measuring = True
        exporter0, self0, wall0 = cpu_of(exporter_pid), _cpu_self(), time.perf_counter()
        await asyncio.sleep(spec["duration"])
        exporter_cpu = cpu_of(exporter_pid) - exporter0
        scraper_cpu = _cpu_self() - self0
        wall = time.perf_counter() - wall0
        stats.measuring = False
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "mode": "exporter",
        "devices": len(members),
        "interval_s": interval,
        "window_s": round(wall, 2),
        "polls": stats.ok,
        "failed_polls": stats.failed,
        "expected_polls": round(len(members) * wall / interval),
        "polls_per_s": stats.ok / wall,
        "cpu_s": round(exporter_cpu, 3),
        "cpu_share_of_one_core": exporter_cpu / wall,
        "polls_per_cpu_s": stats.ok / exporter_cpu if exporter_cpu else None,
        "samples_per_s": samples / wall,
        "scraper_cpu_s": round(scraper_cpu, 3),
        "lag_p50_s": _percentile(stats.lags, 0.5),
        "lag_p99_s": _percentile(stats.lags, 0.99),
        "poll_duration_p50_s": _percentile(stats.durations, 0.5),
        "poll_duration_p99_s": _percentile(stats.durations, 0.99),
        "rss_bytes": rss_of(exporter_pid),
    }


# --- the orchestrating parent ----------------------------------------------------


def _child(phase: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run one phase in a fresh interpreter; its last stdout line is the result."""
    done = subprocess.run(
        [sys.executable, "-m", "dcim.benchsnmp", phase],
        input=json.dumps(spec),  # thousands of targets do not fit on a command line
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{phase} phase failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _wait_http(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout_s} s")


def _run_exporter(
    binary: str, count: int, spec: dict[str, Any], agents: SimulatedFleet, work: Path
) -> dict[str, Any]:
    config = work / "snmp.yml"
    modules = write_exporter_config(config, count, spec)
    port = _free_tcp_port()
    log = (work / "exporter.log").open("w")
    exporter = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=log,
    )
    try:
        _wait_http(port, 120)
        ports = spec["ports"]
        targets = [
            (f"127.0.0.1:{ports[n % len(ports)]}", *modules[device_id])
            for n, device_id in enumerate(modules)
        ]
        agent0 = agents.cpu()
        result = _child(
            "scrape",
            {**spec, "targets": targets, "exporter_pid": exporter.pid, "exporter_port": port},
        )
        result["agent_cpu_s"] = round(agents.cpu() - agent0, 3)
        result["exporter_version"] = _exporter_version(binary)
        return result
    finally:
        exporter.terminate()
        exporter.wait(10)
        log.close()


def _exporter_version(binary: str) -> str:
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else "?"


def run_bench(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="dcim-bench-snmp-"))
    if args.snmp_version == "v3":
        v3_credentials()  # fail before anything starts if the agent cannot speak it
    # each poll's requests must find the snapshot its first request built: with the 1 s
    # default, a busy agent whose queue delays requests rebuilds it for every request,
    # gets busier and no answer comes in time any more (every poll fails); below the
    # interval, each poll still sees fresh values
    cache_s = min(10.0, args.interval / 3)
    processes = args.agent_procs or default_processes(args.devices)
    agents = SimulatedFleet(
        args.devices,
        processes=processes,
        ports_per_process=max(1, args.agent_ports // processes),
        cache_s=cache_s,
        v3=args.snmp_version == "v3",
        work=work,
    )
    result: dict[str, Any] = {
        "bench": "snmp",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "dirty": _dirty(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "note": args.note,
        "devices": args.devices,
        "interval_s": args.interval,
        "duration_s": args.duration,
        "snmp_version": args.snmp_version,
        "sink": args.sink,
        "agent_cache_s": cache_s,
        "agent_processes": processes,
        "phases": {},
    }
    try:
        agents.start()
        spec = {
            "ports": agents.ports,
            "interval": args.interval,
            "duration": args.duration,
            "max_repetitions": args.max_repetitions,
            "retries": 1,
            "timeout_s": 2,
            "max_in_flight": TOTAL_IN_FLIGHT,
            "snmp_version": args.snmp_version,
        }
        phases = [p.strip() for p in args.phases.split(",") if p.strip()]
        unknown = [p for p in phases if p not in PHASES]
        if unknown:
            raise SystemExit(f"unknown phase {unknown[0]!r} (choose from {', '.join(PHASES)})")
        for phase in phases:
            agent0, udp0, load0 = agents.cpu(), udp_counters(), os.getloadavg()[0]
            watch = QueueWatch(agents.ports)
            try:
                with watch:
                    out = _run_phase(phase, args, spec, agents, work)
            except Exception as exc:  # the other phases' results still count
                print(f"{phase} phase failed: {exc} (logs in {work})")
                failed = {"error": f"{type(exc).__name__}: {exc}", **watch.figures()}
                failed["loadavg_1m_before_after"] = [load0, os.getloadavg()[0]]
                result["phases"][phase] = failed
                continue
            if out is None:
                continue
            out.setdefault("agent_cpu_s", round(agents.cpu() - agent0, 3))
            # the host's UDP drops and load: polls failing in bulk are explained here
            out["udp_errors"] = {k: v - udp0.get(k, 0) for k, v in udp_counters().items()}
            out["loadavg_1m_before_after"] = [load0, os.getloadavg()[0]]
            out.update(watch.figures())
            result["phases"][phase] = out
            _print_phase(phase, out)
            if phase == "monitor":
                _print_monitor_extras(out)
            if out.get("errors"):
                print(f"         errors: {out['errors']}")
        result["agent_rss_bytes"] = agents.rss()
    finally:
        agents.stop()
    result["agent_stats"] = agents.stats()
    result["ratios"] = _ratios(result["phases"])
    _print_ratios(result["ratios"])
    if args.keep_work or any("error" in out for out in result["phases"].values()):
        print(f"logs and server data kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        print(f"results written to {args.json}")
    return 0


def _run_phase(
    phase: str, args: argparse.Namespace, spec: dict[str, Any], agents: SimulatedFleet, work: Path
) -> dict[str, Any] | None:
    """One phase's figures; None when it cannot run here (its tool is not installed)."""
    if phase == "monitor":
        from dcim.benchdrive import run_monitor_phase

        return run_monitor_phase(args, spec, work)
    if phase == "fast":
        return _child("poll", {**spec, "mode": "fast", "devices": args.devices})
    binary = shutil.which("prometheus-snmp-exporter")
    if binary is None:
        print(
            "prometheus-snmp-exporter not installed: skipping (apt-get install -y prometheus-snmp-exporter)"
        )
        return None
    return _run_exporter(binary, args.devices, spec, agents, work)


def _ratios(phases: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    def per_cpu(name: str) -> float | None:
        value = phases.get(name, {}).get("polls_per_cpu_s")
        return float(value) if value else None

    monitor, fast = per_cpu("monitor"), per_cpu("fast")
    go = per_cpu("exporter")
    return {
        "monitor_vs_exporter_polls_per_cpu_s": monitor / go if monitor and go else None,
        "fast_vs_exporter_polls_per_cpu_s": fast / go if fast and go else None,
    }


def _commit() -> str | None:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or None


def udp_counters() -> dict[str, int]:
    """The kernel's UDP error counters (receive buffer overflows...), from /proc/net/snmp."""
    try:
        lines = [ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines()]
    except OSError:
        return {}
    rows = [ln[1:] for ln in lines if ln and ln[0] == "Udp:"]
    if len(rows) < 2:
        return {}
    wanted = ("InErrors", "RcvbufErrors", "SndbufErrors")
    return {k: int(v) for k, v in zip(rows[0], rows[1], strict=False) if k in wanted}


def _dirty() -> bool | None:
    """Whether the measured code differs from the commit (others may be editing it)."""
    done = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", "dcim", "collectors"],
        capture_output=True,
        text=True,
        check=False,
    )
    return bool(done.stdout.strip()) if done.returncode == 0 else None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _fmt(value: Any, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def _print_phase(phase: str, r: dict[str, Any]) -> None:
    lag = f"lag p50 {_fmt(r.get('lag_p50_s'), '.3f')} s p99 {_fmt(r.get('lag_p99_s'), '.3f')} s"
    print(
        f"{phase:8} {r['devices']:>6} devices: {r['polls']:>7} polls ({r['failed_polls']} failed, "
        f"{r['expected_polls']} due) {r['polls_per_s']:8.1f}/s, "
        f"{_fmt(r['polls_per_cpu_s'])} per CPU-s ({r['cpu_share_of_one_core']:.0%} of a core), "
        f"{lag}, RSS {r['rss_bytes'] / 2**20:.0f} MiB, agent CPU {r['agent_cpu_s']:.1f} s, "
        f"agent queue max {r.get('agent_queue_max_bytes', 0) / 1024:,.0f} KiB",
        flush=True,
    )


def _print_monitor_extras(r: dict[str, Any]) -> None:
    ms = 1000.0
    print(
        f"         points: {_fmt(r['points_written_per_s'])}/s written, "
        f"{_fmt(r['points_landed_per_s'])}/s landed in {r['sink_server']} "
        f"({r['points_lost']} lost, {r['points_dropped_total']} dropped, "
        f"{r['spool_batches']} batches spooled); RSS/device {r['rss_per_device_bytes'] / 1024:.1f} KiB",
        flush=True,
    )
    print(
        f"         events: {r['events_sent']} sent ({r['traps_sent']} traps, {r['mqtt_sent']} MQTT), "
        f"{r['events_decided']} decided, {r['events_notified']} notified; "
        f"send->decision p50 {_fmt(_scaled(r['decision_p50_s'], ms), '.1f')} ms "
        f"p99 {_fmt(_scaled(r['decision_p99_s'], ms), '.1f')} ms; "
        f"send->webhook p50 {_fmt(_scaled(r['webhook_p50_s'], ms), '.1f')} ms "
        f"p99 {_fmt(_scaled(r['webhook_p99_s'], ms), '.1f')} ms",
        flush=True,
    )
    if r.get("sse_clients"):
        print(
            f"         board: {r['sse_clients']} SSE clients, {r['sse_connected_at_end']} connected "
            f"at the end, {r['sse_reconnects']} reconnects, "
            f"{r['sse_events_per_client_min']}-{r['sse_events_per_client_max']} updates each, "
            f"{r.get('board_renders')} renders; history {_fmt(r.get('board_history_bytes', 0) / 2**20, '.1f')} MiB "
            f"now, {_fmt(r.get('board_history_bytes_when_full', 0) / 2**20, '.1f')} MiB when full",
            flush=True,
        )


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def _print_ratios(ratios: dict[str, float | None]) -> None:
    for name, value in ratios.items():
        print(f"{name}: {_fmt(value, '.2f')}x")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    phase, spec = argv[0], json.loads(sys.stdin.readline())  # the monitor reads on after it
    if phase == "monitor":
        from dcim.benchmonitor import monitor_phase

        out = asyncio.run(monitor_phase(spec))
    elif phase == "poll":
        out = asyncio.run(_poll_phase(spec))
    elif phase == "scrape":
        out = asyncio.run(_scrape_phase(spec))
    else:
        raise SystemExit(f"unknown phase {phase}")
    print(json.dumps(out))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `dcim bench snmp`."""
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=30.0, help="poll interval, s")
    parser.add_argument("--duration", type=float, default=60.0, help="measured window, s")
    parser.add_argument("--max-repetitions", type=int, default=25)
    parser.add_argument("--agent-ports", type=int, default=4, help="UDP ports of the simulator")
    parser.add_argument(
        "--agent-procs",
        type=int,
        default=0,
        help="simulator processes (default: one per 2,500 devices, at most one per CPU)",
    )
    parser.add_argument(
        "--phases", default=DEFAULT_PHASES, help=f"comma-separated, of: {', '.join(PHASES)}"
    )
    parser.add_argument("--snmp-version", choices=["v2c", "v3"], default="v2c")
    parser.add_argument(
        "--sink",
        choices=SINKS,
        default="victoria-metrics",
        help="monitor phase: the server its sink writes to (influx1: influxd 1.x)",
    )
    parser.add_argument(
        "--event-rate", type=float, default=4.0, help="monitor phase: traps + MQTT messages/s"
    )
    parser.add_argument(
        "--no-mqtt", dest="mqtt", action="store_false", help="monitor phase: traps only"
    )
    parser.add_argument(
        "--sse-clients",
        type=int,
        default=0,
        metavar="N",
        help="monitor phase: run the board and keep N browsers (SSE clients) on its overview",
    )
    parser.add_argument(
        "--keep-work", action="store_true", help="keep the temp dir (logs, server data)"
    )
    parser.add_argument("--note", help="free text kept in the JSON (e.g. 'shared machine')")


if __name__ == "__main__":
    sys.exit(main())
