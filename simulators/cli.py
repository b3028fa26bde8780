"""`dcim simulate`: the argparse glue around `simulators.runner.main` and `simulators.site.run_site`.

`python -m simulators.cli --site FILE [--scenario NAME] [--speed N] [--mqtt-url URL]`
serves a site the same way; `add_site_arguments` adds the MQTT options to any
`simulate` parser (the `dcim` one included).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path

from dcim.errors import DcimError
from simulators.runner import main

#: UDP port of `dcim simulate` without a site (a site serves its inventory's ports).
DEFAULT_PORT = 1161


def _receivers(specs: list[str]) -> list[tuple[str, int]]:
    out = []
    for spec in specs:
        host, _, port = spec.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"--trap {spec!r}: expected HOST:PORT")
        out.append((host, int(port)))
    return out


def add_site_arguments(parser: argparse.ArgumentParser) -> None:
    """The options only a whole site uses, beyond those `dcim simulate` always had."""
    parser.add_argument(
        "--mqtt-url",
        metavar="URL",
        help="with --site: publish the MQTT sensors to this broker (mqtt://HOST:PORT)",
    )
    parser.add_argument(
        "--mqtt-interval",
        type=float,
        metavar="SECONDS",
        help="with --site: wall seconds between a sensor's messages "
        "(default: its poll interval in simulated time)",
    )


def run_simulate(args: argparse.Namespace) -> int:
    """Serve `args.count` UPS units, or with `args.site` a whole site, at `args.speed`.

    Reads `host`, `port`, `count`, `speed` and optional `duration`, `site`,
    `scenario`, `trap`, `mqtt_url`, `mqtt_interval`; returns an exit code.
    """
    site = getattr(args, "site", None)
    if site is None and args.port is None:
        args.port = DEFAULT_PORT
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
                        mqtt_url=getattr(args, "mqtt_url", None),
                        mqtt_interval_s=getattr(args, "mqtt_interval", None),
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


def site_main(argv: Sequence[str] | None = None) -> int:
    """`python -m simulators.cli`: serve a site inventory (SNMP, Modbus, MQTT)."""
    parser = argparse.ArgumentParser(
        prog="python -m simulators.cli", description="Serve a simulated site inventory."
    )
    parser.add_argument("--site", type=Path, required=True, help="site inventory YAML")
    parser.add_argument("--scenario", help="play a scenario (name or file)")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    parser.add_argument("--host", help="serve on this address instead of the inventory's")
    parser.add_argument(
        "--port", type=int, help="every SNMP device on this UDP port (0: free ports everywhere)"
    )
    parser.add_argument("--trap", action="append", default=[], metavar="HOST:PORT")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    add_site_arguments(parser)
    args = parser.parse_args(argv)
    args.count = 1
    return run_simulate(args)


if __name__ == "__main__":
    raise SystemExit(site_main())
