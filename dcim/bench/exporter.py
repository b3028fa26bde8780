"""The `exporter` phase: prometheus-snmp-exporter on the same fleet, scraped on the
poll schedule by a child process; its CPU read from /proc.
"""

from __future__ import annotations

import asyncio
import random
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from dcim.bench.agent import SimulatedFleet
from dcim.bench.child import run_child
from dcim.bench.cpus import pinned_command
from dcim.bench.fleet import v3_credentials
from dcim.bench.measure import (
    PollStats,
    cpu_of,
    cpu_self,
    free_tcp_port,
    percentile,
    rss_of,
)

#: Concurrent scrapes of the exporter phase.
TOTAL_IN_FLIGHT = 100


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


async def scrape_phase(spec: dict[str, Any]) -> dict[str, Any]:
    """Scrape the exporter for every device on the poll schedule; count and time it."""
    import aiohttp

    members = spec["targets"]
    interval, exporter_pid = spec["interval"], spec["exporter_pid"]
    stats = PollStats()
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
        exporter0, self0, wall0 = cpu_of(exporter_pid), cpu_self(), time.perf_counter()
        await asyncio.sleep(spec["duration"])
        exporter_cpu = cpu_of(exporter_pid) - exporter0
        scraper_cpu = cpu_self() - self0
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
        "lag_p50_s": percentile(stats.lags, 0.5),
        "lag_p99_s": percentile(stats.lags, 0.99),
        "poll_duration_p50_s": percentile(stats.durations, 0.5),
        "poll_duration_p99_s": percentile(stats.durations, 0.99),
        "rss_bytes": rss_of(exporter_pid),
    }


def _wait_http(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout_s} s")


def run_exporter(
    binary: str, count: int, spec: dict[str, Any], agents: SimulatedFleet, work: Path
) -> dict[str, Any]:
    config = work / "snmp.yml"
    modules = write_exporter_config(config, count, spec)
    port = free_tcp_port()
    log = (work / "exporter.log").open("w")
    command = [
        binary,
        f"--config.file={config}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    # the process under test gets the measured CPU (the Go runtime sizes itself to it)
    exporter = subprocess.Popen(
        pinned_command(spec.get("measured_cpus") or [], command), stdout=log, stderr=log
    )
    try:
        _wait_http(port, 120)
        ports = spec["ports"]
        targets = [
            (f"127.0.0.1:{ports[n % len(ports)]}", *modules[device_id])
            for n, device_id in enumerate(modules)
        ]
        agent0 = agents.cpu()
        result = run_child(
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
