"""`dcim simulate`: serve simulated devices over SNMP (and a site's Modbus and MQTT)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dcim.cli.common import setup_command_logging


def add_parser(sub: Any) -> None:
    from simulators.cli import add_site_arguments

    simulate = sub.add_parser("simulate", help="serve simulated devices over SNMP")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument(
        "--port",
        type=int,
        default=None,
        help="UDP port (default 1161; with --site: each device's port from the inventory)",
    )
    simulate.add_argument("--count", type=int, default=1, help="number of simulated UPS")
    simulate.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    simulate.add_argument("--duration", type=float, help="stop after this many seconds")
    simulate.add_argument(
        "--site", type=Path, help="serve a whole site inventory (see simulators/sites)"
    )
    simulate.add_argument("--scenario", help="with --site: play a scenario (name or file)")
    simulate.add_argument(
        "--trap",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="with --site: send v2c traps here",
    )
    add_site_arguments(simulate)  # --mqtt-url, --mqtt-interval
    simulate.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulators.cli import run_simulate

    setup_command_logging(args, "INFO")
    return run_simulate(args)
