"""`python -m dcim.bench.phases PHASE`: one bench phase, its spec (JSON) on stdin.

Started by `dcim.bench.child.run_child`; the last stdout line is the phase's result.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence

#: Phases whose process is the one measured (the scrape loop only drives the exporter).
UNDER_TEST = frozenset({"monitor", "poll"})


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    phase, spec = argv[0], json.loads(sys.stdin.readline())  # the monitor reads on after it
    if phase in UNDER_TEST and spec.get("measured_cpus"):
        from dcim.bench.cpus import pin

        pin(spec["measured_cpus"])
    if phase == "monitor":
        from dcim import eventloop
        from dcim.bench.monitor import monitor_phase

        out = eventloop.run(monitor_phase(spec))
    elif phase == "poll":
        from dcim import eventloop
        from dcim.bench.pollers import poll_phase

        out = eventloop.run(poll_phase(spec))
    elif phase == "scrape":
        from dcim.bench.exporter import scrape_phase

        out = asyncio.run(scrape_phase(spec))
    else:
        raise SystemExit(f"unknown phase {phase}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
