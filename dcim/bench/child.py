"""Each bench phase runs in a fresh interpreter (`dcim.bench.phases`), so its CPU and memory
are its own."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def run_child(phase: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run one phase in a fresh interpreter; its last stdout line is the result."""
    done = subprocess.run(
        [sys.executable, "-m", "dcim.bench.phases", phase],
        input=json.dumps(spec),  # thousands of targets do not fit on a command line
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{phase} phase failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
