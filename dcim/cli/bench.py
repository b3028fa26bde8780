"""`dcim bench pipeline|snmp|report`: measure the pipeline and SNMP polling at scale."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from dcim.cli.common import setup_command_logging


def add_parser(sub: Any) -> None:
    from dcim.bench.report import add_arguments as add_report_arguments
    from dcim.bench.snmp import add_arguments as add_snmp_arguments

    benches = sub.add_parser("bench", help="measure the pipeline or SNMP polling at scale")
    bench_sub = benches.add_subparsers(dest="what", required=True)
    snmp_bench = bench_sub.add_parser("snmp", help="poll a simulated fleet; vs snmp_exporter")
    add_snmp_arguments(snmp_bench)
    snmp_bench.add_argument("--json", metavar="FILE", help="write the results here")
    snmp_bench.set_defaults(func=cmd_bench_snmp)
    report = bench_sub.add_parser("report", help="render `bench snmp --json` results as a table")
    add_report_arguments(report)
    report.set_defaults(func=cmd_bench_report)
    pipeline = bench_sub.add_parser("pipeline", help="readings/s through the bus into a sink")
    pipeline.add_argument("--readings", type=int, default=200_000)
    pipeline.add_argument("--batch-size", type=int, default=5000)
    pipeline.add_argument("--influx-url", help="also write to this InfluxDB")
    pipeline.add_argument("--influx-api", choices=["v1", "v2"], default="v1")
    pipeline.add_argument("--database", default="dcim_bench")
    pipeline.add_argument("--bucket", default="dcim_bench")
    pipeline.add_argument("--org", default="")
    pipeline.add_argument("--token-env", help="environment variable holding the v2 token")
    pipeline.add_argument("--json", action="store_true")
    pipeline.set_defaults(func=cmd_bench_pipeline)


def cmd_bench_pipeline(args: argparse.Namespace) -> int:
    from dcim.bench.pipeline import run_bench

    setup_command_logging(args, "WARNING")
    return asyncio.run(run_bench(args))


def cmd_bench_snmp(args: argparse.Namespace) -> int:
    from dcim.bench.snmp import run_bench

    setup_command_logging(args, "WARNING")
    return run_bench(args)


def cmd_bench_report(args: argparse.Namespace) -> int:
    from dcim.bench.report import run_report

    return run_report(args)
