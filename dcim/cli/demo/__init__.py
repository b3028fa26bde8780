"""`dcim demo`: the simulated data hall, polled by the monitor, on the NOC board.

Modules: `hall` (the site file as simulators serve it and the monitor polls it),
`playlist` (scenarios in a loop), `terminal` (the text view), `run` (wiring).
This is the application layer: it may import simulators; the core may not.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any


def add_parser(sub: Any) -> None:
    from dcim.cli.demo.run import add_arguments

    demo = sub.add_parser(
        "demo", help="the simulated data hall, the monitor and the NOC board; no server needed"
    )
    add_arguments(demo)
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from dcim.cli.common import setup_command_logging
    from dcim.cli.demo.run import run_demo

    setup_command_logging(args, "WARNING")
    return asyncio.run(run_demo(args))
