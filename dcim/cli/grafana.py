"""`dcim grafana export|push`: argument parsing and output (kept import-light)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dcim.errors import ConfigError

TOKEN_ENV = "GRAFANA_TOKEN"  # noqa: S105 - the name of a variable, not a token


def add_parser(sub: Any) -> None:
    """Register `grafana export` and `grafana push` on the main parser's subcommands.

    The devices' profiles tell what each device reports (`Profiles`: without them
    only inventory tags would count, e.g. for PUE meters).
    """
    from collectors.registry import profile_metrics, profile_tag_values
    from dcim.grafana.site import Profiles

    profiles = Profiles(profile_tag_values, profile_metrics)
    grafana = sub.add_parser("grafana", help="generate Grafana dashboards from the inventory")
    actions = grafana.add_subparsers(dest="grafana_command", required=True)
    config_help = "inventory file (default: the `dcim demo` inventory)"

    export = actions.add_parser("export", help="write dashboard JSON and provisioning YAML to DIR")
    export.add_argument("dir", type=Path)
    export.add_argument("--config", type=Path, help=config_help)
    export.add_argument(
        "--dashboards-path",
        default=None,
        help="where Grafana sees DIR/dashboards (default /var/lib/grafana/dashboards/dcim)",
    )
    export.add_argument(
        "--influx-url",
        default=None,
        help="InfluxDB URL as Grafana reaches it (default: each sink's url; from inside a "
        "container 127.0.0.1 is the container itself)",
    )
    export.set_defaults(func=cmd_export)

    push = actions.add_parser("push", help="create or update the dashboards through Grafana's API")
    push.add_argument("--url", required=True, help="Grafana base URL, e.g. http://grafana:3000")
    push.add_argument("--config", type=Path, help=config_help)
    token = push.add_mutually_exclusive_group()
    token.add_argument(
        "--token-env", default=TOKEN_ENV, help=f"variable holding the token (default {TOKEN_ENV})"
    )
    token.add_argument("--token-file", type=Path, help="file holding the token")
    push.set_defaults(func=cmd_push)
    grafana.set_defaults(profiles=profiles)


def _generated(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    from dcim.cli.demo.hall import demo_inventory
    from dcim.grafana.build import build_dashboards
    from dcim.grafana.layout import load_inventory

    config = load_inventory(args.config) if args.config else demo_inventory()
    return config, build_dashboards(config, getattr(args, "profiles", None))


def _config_problem(exc: ConfigError) -> int:
    print(f"{exc.source}: {len(exc.problems)} problem(s):", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)
    return 2


def cmd_export(args: argparse.Namespace) -> int:
    from dcim.grafana.export import DASHBOARDS_PATH, export

    try:
        config, generated = _generated(args)
    except ConfigError as exc:
        return _config_problem(exc)
    written = export(
        config, generated, args.dir, args.dashboards_path or DASHBOARDS_PATH, args.influx_url
    )
    for item in written:
        print(f"{item.status:9} {item.path}")
    changed = sum(item.status != "unchanged" for item in written)
    print(f"{len(generated)} dashboard(s) in {args.dir}; {changed} file(s) written or removed")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from dcim.grafana.push import push
    from dcim.secret import SecretRef

    ref = SecretRef(file=args.token_file) if args.token_file else SecretRef(env=args.token_env)
    try:
        token = ref.resolve()
    except ValueError as exc:
        print(f"dcim: Grafana token: {exc}", file=sys.stderr)
        return 2
    try:
        _, generated = _generated(args)
    except ConfigError as exc:
        return _config_problem(exc)
    changes = push(generated, args.url, token.get_secret_value())
    for change in changes:
        print(change)
    touched = sum(c.action != "unchanged" for c in changes)
    print(f"{len(generated)} dashboard(s) at {args.url}; {touched} change(s)")
    return 0
