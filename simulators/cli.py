"""`dcim simulate`: the argparse glue around `simulators.runner.main`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from simulators.runner import main


def run_simulate(args: argparse.Namespace) -> int:
    """Serve `args.count` UPS units on `args.host:args.port` at `args.speed`.

    Reads `host`, `port`, `count`, `speed` and optional `duration`; returns an exit code.
    """
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                main(
                    host=args.host,
                    port=args.port,
                    count=args.count,
                    speed=args.speed,
                    duration=getattr(args, "duration", None),
                )
            )
    except OSError as exc:  # typically the port is taken or the address is not local
        print(f"dcim simulate: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
