"""`dcim vocabulary`: the metric vocabulary as a Markdown table."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    vocabulary = sub.add_parser("vocabulary", help="print the metric vocabulary (Markdown)")
    vocabulary.set_defaults(func=cmd_vocabulary)


def cmd_vocabulary(args: argparse.Namespace) -> int:
    from dcim.vocabulary import load_vocabulary

    del args
    print("| metric | type | unit | InfluxDB measurement.field | meaning |")
    print("|---|---|---|---|---|")
    for spec in load_vocabulary().metrics.values():
        kind = spec.type + (f" ({', '.join(spec.values)})" if spec.values else "")
        print(
            f"| `{spec.name}` | {kind} | {spec.unit or ''} | "
            f"`{spec.measurement}.{spec.field}` | {spec.description} |"
        )
    return 0
