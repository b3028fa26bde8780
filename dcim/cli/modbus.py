"""`dcim modbus preview|poll`: a Modbus device's registers through a map, once."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from dcim.cli.common import setup_command_logging


def add_parser(sub: Any) -> None:
    from collectors.modbus.preview import add_parser as add_modbus_parser

    add_modbus_parser(sub)
    sub.choices["modbus"].set_defaults(func=cmd_modbus)


def cmd_modbus(args: argparse.Namespace) -> int:
    from collectors.modbus.preview import run_poll, run_preview

    setup_command_logging(args, "WARNING")
    return asyncio.run(run_preview(args) if args.modbus_command == "preview" else run_poll(args))
