"""Where the bench's processes run: the process under test on a CPU of its own.

On a small machine the simulated fleet, the time-series server and the process under
test share the cores; then a phase measures contention as much as the process. With
two CPUs or more, the process under test (the monitor, the pollers alone, or
snmp_exporter) gets one CPU (`measured`) and everything else (the fleet, servers, load
generators, this parent) the others, by CPU affinity. What each CPU was busy with
during a phase is read from /proc/stat, so a starved fleet shows in the results.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Placement:
    """CPUs of the process under test and of everything else (equal when not pinned)."""

    measured: tuple[int, ...]
    others: tuple[int, ...]

    @property
    def pinned(self) -> bool:
        return set(self.measured).isdisjoint(self.others)

    def describe(self) -> dict[str, object]:
        return {"pinned": self.pinned, "measured": list(self.measured), "others": list(self.others)}


def plan(pin: bool) -> Placement:
    """One CPU (the last this process may use) for the process under test, the rest
    for the others; no pinning when asked not to or with a single CPU."""
    cpus = tuple(sorted(os.sched_getaffinity(0)))
    if not pin or len(cpus) < 2:
        return Placement(cpus, cpus)
    return Placement(cpus[-1:], cpus[:-1])


def pin(cpus: Sequence[int]) -> None:
    """Run this process (and what it starts later) on `cpus` only."""
    os.sched_setaffinity(0, set(cpus))


def pinned_command(cpus: Sequence[int], argv: Sequence[str]) -> list[str]:
    """`argv` started on `cpus` only, by util-linux `taskset`, so every thread of it is
    (a program such as snmp_exporter sizes its thread pool to the CPUs it may use);
    `argv` unchanged when taskset is missing."""
    taskset = shutil.which("taskset")
    if taskset is None or not cpus:
        return list(argv)
    return [taskset, "--cpu-list", ",".join(str(c) for c in cpus), *argv]


def cpu_times() -> dict[int, tuple[int, int]]:
    """Per CPU: (busy, total) clock ticks since boot, from /proc/stat."""
    out: dict[int, tuple[int, int]] = {}
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        ticks = [int(f) for f in fields[:8]]
        idle = ticks[3] + ticks[4]  # idle + iowait
        out[int(name[3:])] = (sum(ticks) - idle, sum(ticks))
    return out


def busy_shares(
    before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]
) -> dict[str, float]:
    """How busy each CPU was between two `cpu_times` readings (0..1), by CPU number."""
    shares: dict[str, float] = {}
    for cpu, (busy1, total1) in after.items():
        busy0, total0 = before.get(cpu, (0, 0))
        if total1 > total0:
            shares[str(cpu)] = round((busy1 - busy0) / (total1 - total0), 3)
    return shares
