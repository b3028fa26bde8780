"""`dcim bench snmp`: SNMP polling at scale, side by side with prometheus-snmp-exporter.

One run, one machine, one simulated fleet (`simulators.fast_agent.fleet`: rack
PDUs with outlet tables on the APC rPDU2 MIB, UPS on the UPS-MIB, AKCP
probes) served by fast-agent processes (`dcim.bench.agent`). Then, one after the
other, each in its own process so CPU and memory are its own:

- monitor (the main phase): the real `dcim.runner.Monitor` with a real sink
  (VictoriaMetrics or influxd 1.x), the trap receiver, MQTT and the alert
  engine, while traps and MQTT messages cross rules (`dcim.bench.drive`);
- fast: the monitor's collectors (`CollectorFactory`, `DevicePoller`, the
  SNMP client) poll every device every `--interval` seconds;
- exporter: prometheus-snmp-exporter (Debian package) with a generated
  `snmp.yml` walking the same OIDs, scraped by a load loop in another
  process on the same schedule; its CPU is read from /proc.

Every phase first polls for one interval (the monitor 1.3: past its first round and
the heap freeze after it) to warm up (sessions, caches), then
measures for `--duration` seconds. A poll counts when it returns readings
(or, for the exporter, an HTTP 200 with samples). Results are ratios taken
in the same run: monitor and fast vs exporter polls per CPU-second.
`--json FILE` keeps everything; `dcim bench report FILE` renders it as a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from dcim.bench.agent import SimulatedFleet, default_processes
from dcim.bench.child import run_child
from dcim.bench.cpus import Placement, busy_shares, cpu_times, pin, plan
from dcim.bench.exporter import TOTAL_IN_FLIGHT, run_exporter
from dcim.bench.fleet import v3_credentials
from dcim.bench.servers import SINKS
from dcim.bench.udp import QueueWatch

PHASES = ("monitor", "fast", "exporter")
DEFAULT_PHASES = "monitor,exporter"


# --- the orchestrating parent ----------------------------------------------------


def run_bench(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="dcim-bench-snmp-"))
    if args.snmp_version == "v3":
        v3_credentials()  # fail before anything starts if the agent cannot speak it
    placement = plan(args.pin)
    allowed = os.sched_getaffinity(0)
    if placement.pinned:
        pin(placement.others)  # the fleet, servers and load generators start from here
    try:
        return _bench(args, work, placement)
    finally:
        pin(sorted(allowed))  # a caller in this process (a test) gets its CPUs back


def _bench(args: argparse.Namespace, work: Path, placement: Placement) -> int:
    # each poll's requests must find the snapshot its first request built: with the 1 s
    # default, a busy agent whose queue delays requests rebuilds it for every request,
    # gets busier and no answer comes in time any more (every poll fails); below the
    # interval, each poll still sees fresh values
    cache_s = min(10.0, args.interval / 3)
    processes = args.agent_procs or min(
        default_processes(args.devices), max(1, len(placement.others))
    )
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
        "cpu_placement": placement.describe(),
        "repeat": args.repeat,
        "phases": {},
        "rounds": [],
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
        spec["measured_cpus"] = list(placement.measured)
        phases = [p.strip() for p in args.phases.split(",") if p.strip()]
        unknown = [p for p in phases if p not in PHASES]
        if unknown:
            raise SystemExit(f"unknown phase {unknown[0]!r} (choose from {', '.join(PHASES)})")
        for number in range(1, args.repeat + 1):
            if args.repeat > 1:
                print(f"round {number} of {args.repeat}", flush=True)
            done = _run_round(phases, args, spec, agents, work, placement=placement)
            result["rounds"].append({"phases": done, "ratios": _ratios(done)})
            _print_ratios(result["rounds"][-1]["ratios"])
        result["agent_rss_bytes"] = agents.rss()
    finally:
        agents.stop()
    result["agent_stats"] = agents.stats()
    if result["rounds"]:
        # the first round stays the phases of record; every round is kept beside it
        result["phases"] = result["rounds"][0]["phases"]
        result["ratios"] = result["rounds"][0]["ratios"]
    if len(result["rounds"]) > 1:
        result["spread"] = _spread(result["rounds"])
        for name, (low, high) in result["spread"].items():
            print(f"spread over {len(result['rounds'])} rounds, {name}: {low:.2f}x .. {high:.2f}x")
    if args.keep_work or any("error" in out for out in result["phases"].values()):
        print(f"logs and server data kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        print(f"results written to {args.json}")
    return 0


def _run_round(
    phases: list[str],
    args: argparse.Namespace,
    spec: dict[str, Any],
    agents: SimulatedFleet,
    work: Path,
    *,
    placement: Placement,
) -> dict[str, dict[str, Any]]:
    """Every phase once, one after the other: phase -> its figures."""
    done: dict[str, dict[str, Any]] = {}
    for phase in phases:
        agent0, udp0, load0 = agents.cpu(), udp_counters(), os.getloadavg()[0]
        cpus0, started = cpu_times(), time.monotonic()
        watch = QueueWatch(agents.ports)
        try:
            with watch:
                out = _run_phase(phase, args, spec, agents, work)
        except Exception as exc:  # the other phases' results still count
            print(f"{phase} phase failed: {exc} (logs in {work})")
            failed = {"error": f"{type(exc).__name__}: {exc}", **watch.figures()}
            failed["loadavg_1m_before_after"] = [load0, os.getloadavg()[0]]
            done[phase] = failed
            continue
        if out is None:
            continue
        phase_s = time.monotonic() - started
        fleet_cpu = agents.cpu() - agent0
        out.setdefault("agent_cpu_s", round(fleet_cpu, 3))
        # what the fleet and each CPU got over the whole phase (start and warm-up too): a
        # starved fleet or a shared core shows here
        out["phase_s"] = round(phase_s, 2)
        out["agent_cpu_share_of_phase"] = round(fleet_cpu / phase_s, 3) if phase_s else None
        out["cpu_busy_by_cpu"] = busy_shares(cpus0, cpu_times())
        out["cpu_placement"] = placement.describe()
        # the host's UDP drops and load: polls failing in bulk are explained here
        out["udp_errors"] = {k: v - udp0.get(k, 0) for k, v in udp_counters().items()}
        out["loadavg_1m_before_after"] = [load0, os.getloadavg()[0]]
        out.update(watch.figures())
        done[phase] = out
        _print_phase(phase, out)
        if phase == "monitor":
            _print_monitor_extras(out)
        if out.get("errors"):
            print(f"         errors: {out['errors']}")
    return done


def _spread(rounds: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """Lowest and highest of each ratio over the rounds that have it."""
    out: dict[str, tuple[float, float]] = {}
    for name in rounds[0]["ratios"]:
        values = [r["ratios"][name] for r in rounds if r["ratios"].get(name) is not None]
        if values:
            out[name] = (min(values), max(values))
    return out


def _run_phase(
    phase: str, args: argparse.Namespace, spec: dict[str, Any], agents: SimulatedFleet, work: Path
) -> dict[str, Any] | None:
    """One phase's figures; None when it cannot run here (its tool is not installed)."""
    if phase == "monitor":
        from dcim.bench.drive import run_monitor_phase

        return run_monitor_phase(args, spec, work)
    if phase == "fast":
        return run_child("poll", {**spec, "mode": "fast", "devices": args.devices})
    binary = shutil.which("prometheus-snmp-exporter")
    if binary is None:
        print(
            "prometheus-snmp-exporter not installed: skipping (apt-get install -y prometheus-snmp-exporter)"
        )
        return None
    return run_exporter(binary, args.devices, spec, agents, work)


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
        f"{r['expected_polls']} due, {r.get('skipped_overload', 0)} skipped by overload) "
        f"{r['polls_per_s']:8.1f}/s, "
        f"{_fmt(r['polls_per_cpu_s'])} per CPU-s ({r['cpu_share_of_one_core']:.0%} of a core; "
        f"over the phase: fleet {r.get('agent_cpu_share_of_phase') or 0:.0%}, CPUs busy "
        f"{_busy(r)}), "
        f"{lag}, RSS {r['rss_bytes'] / 2**20:.0f} MiB, agent CPU {r['agent_cpu_s']:.1f} s, "
        f"agent queue max {r.get('agent_queue_max_bytes', 0) / 1024:,.0f} KiB",
        flush=True,
    )


def _busy(r: dict[str, Any]) -> str:
    shares = r.get("cpu_busy_by_cpu") or {}
    return " ".join(f"#{cpu} {share:.0%}" for cpu, share in shares.items()) or "-"


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
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        metavar="N",
        help="run every phase N times (rounds), to show the spread (default 2)",
    )
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not give the process under test a CPU of its own",
    )
    parser.add_argument("--note", help="free text kept in the JSON (e.g. 'shared machine')")
