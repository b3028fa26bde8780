"""The `dcim` command: one module per command group, each adding its own parser.

    service      run, validate, shards, reload
    poll         poll, discover, walk
    profile      profile lint|test
    simulate     simulate
    alerts       alerts list|ack|silence|unsilence|audit
    demo/        demo
    vocabulary   vocabulary
    bench        bench pipeline|snmp|report
    modbus       modbus preview|poll
    grafana      grafana export|push

This is the application layer: it wires the core (`dcim`) to the protocol
adapters (`collectors`) and the simulators; the core imports none of it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dcim import __version__
from dcim.cli import (
    alerts,
    bench,
    demo,
    grafana,
    modbus,
    poll,
    profile,
    service,
    simulate,
    vocabulary,
)
from dcim.errors import DcimError
from dcim.logsetup import LOG_FORMATS, LOG_LEVELS

#: Command groups in the order `dcim --help` lists them.
GROUPS = (service, poll, profile, simulate, alerts, demo, vocabulary, bench, modbus, grafana)


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Options every command takes, before or after the subcommand.

    Below the top level their default is SUPPRESS: a subcommand that was not given
    the option leaves what the top level parsed in place.
    """
    default = None if top else argparse.SUPPRESS
    parser.add_argument("--log-level", choices=LOG_LEVELS, default=default, help="log level")
    parser.add_argument(
        "--log-format", choices=LOG_FORMATS, default=default, help="log lines as text or JSON"
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_global_options(child, top=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dcim", description="The `dcim` command: run, validate, poll, simulate, demo."
    )
    parser.add_argument("--version", action="version", version=f"dcim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_parser(sub)
    _add_global_options(parser, top=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except DcimError as exc:
        print(f"dcim: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
