"""The simulated fleet of `dcim bench snmp`: one or more fast-agent processes.

Each process serves the whole fleet (a device is found by its community or v3
context) on its own ports; the fleet config spreads devices over all ports, so K
processes share the answering. One Python process answers on one core: at
thousands of devices on a busy host it falls behind, its socket queues fill past
the pollers' timeout and every poll fails (see `dcim.bench.udp`); a second process
keeps the simulator from being what the bench measures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

#: Devices one agent process is given (at most one process per CPU).
DEVICES_PER_PROCESS = 2500


def default_processes(devices: int) -> int:
    return max(1, min(os.cpu_count() or 1, -(-devices // DEVICES_PER_PROCESS)))


class SimulatedFleet:
    """`processes` fast agents for `devices` devices; `ports` once started."""

    def __init__(
        self,
        devices: int,
        *,
        processes: int,
        ports_per_process: int,
        cache_s: float,
        v3: bool,
        work: Path,
    ) -> None:
        self.devices = devices
        self.work = work
        self.ports: list[int] = []
        self._procs: list[subprocess.Popen[str]] = []
        self._logs = [work / f"agent-{n}.log" for n in range(processes)]
        self._command = [sys.executable, "-m", "simulators.fast_agent", "--devices", str(devices)]
        self._command += ["--ports", str(ports_per_process), "--cache-s", f"{cache_s:g}"]
        if v3:
            self._command.append("--v3")

    def start(self) -> None:
        for log in self._logs:
            with log.open("w") as err:
                proc = subprocess.Popen(
                    self._command, stdout=subprocess.PIPE, stderr=err, text=True
                )
            self._procs.append(proc)
        for proc in self._procs:  # they build the fleet in parallel
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"a fast agent exited at start; see {self.work}/agent-*.log")
            self.ports += json.loads(line)["ports"]

    def stop(self) -> None:
        for proc in self._procs:
            proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def cpu(self) -> float:
        from dcim.bench.measure import cpu_of

        return sum(cpu_of(pid) for pid in self.pids)

    def rss(self) -> int:
        from dcim.bench.measure import rss_of

        return sum(rss_of(pid) for pid in self.pids)

    def stats(self) -> dict[str, Any] | None:
        """Requests received and answered, summed over the agents (their last stderr line)."""
        total: dict[str, Any] = {}
        for log in self._logs:
            try:
                lines = log.read_text().splitlines()
            except OSError:
                return None
            found = [ln for ln in lines if ln.startswith('{"stats"')]
            if not found:
                return None
            for key, value in json.loads(found[-1])["stats"].items():
                total[key] = total.get(key, 0) + value
        return total
