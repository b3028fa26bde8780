"""`dcim simulate`: the argparse glue around `simulators.runner.main` and `simulators.site.run_site`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from dcim.errors import DcimError
from simulators.runner import main


def _receivers(specs: list[str]) -> list[tuple[str, int]]:
    out = []
    for spec in specs:
        host, _, port = spec.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"--trap {spec!r}: expected HOST:PORT")
        out.append((host, int(port)))
    return out


def run_simulate(args: argparse.Namespace) -> int:
    """Serve `args.count` UPS units, or with `args.site` a whole site, at `args.speed`.

    Reads `host`, `port`, `count`, `speed` and optional `duration`, `site`,
    `scenario`, `trap`; returns an exit code.
    """
    site = getattr(args, "site", None)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            if site is not None:
                from simulators.site import run_site

                asyncio.run(
                    run_site(
                        site,
                        host=args.host,
                        port=args.port,
                        speed=args.speed,
                        scenario=getattr(args, "scenario", None),
                        trap_receivers=_receivers(getattr(args, "trap", None) or []),
                        duration=getattr(args, "duration", None),
                        out=lambda line: print(line, flush=True),
                    )
                )
            else:
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
    except (DcimError, ValueError) as exc:
        print(f"dcim simulate: {exc}", file=sys.stderr)
        return 2
    return 0
