"""`dcim alerts list | ack ID | silence SCOPE --for 2h`, against the running monitor's API."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from dcim.alerts.client import DEFAULT_URL, TOKEN_ENV, ApiError, call, format_alerts, read_token


def add_alerts_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    alerts = sub.add_parser(
        "alerts", help="list, acknowledge or silence alerts of a running monitor"
    )
    alerts.add_argument("--url", default=DEFAULT_URL, help=f"alert API (default {DEFAULT_URL})")
    alerts.add_argument("--token-file", type=Path, help=f"API token file (default: ${TOKEN_ENV})")
    actions = alerts.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="open alerts")
    listing.add_argument("--json", action="store_true")
    ack = actions.add_parser("ack", help="acknowledge an alert")
    ack.add_argument("id")
    ack.add_argument("--comment", default="")
    ack.add_argument("--by", default=None, help="who (default: your login name)")
    silence = actions.add_parser("silence", help="silence alerts by scope, e.g. room=hall-a")
    silence.add_argument(
        "scope", help="NAME=GLOB[,NAME=GLOB...] over rule, site, room, row, rack, device, kind"
    )
    silence.add_argument("--for", dest="duration", required=True, help="e.g. 30m, 2h, 1d")
    silence.add_argument("--comment", default="")
    silence.add_argument("--by", default=None)
    alerts.set_defaults(func=cmd_alerts)


def cmd_alerts(args: argparse.Namespace) -> int:
    try:
        token = read_token(args.token_file)
        if args.action == "list":
            alerts = call(args.url, token, "GET", "/api/v1/alerts")["alerts"]
            print(json.dumps(alerts, indent=2) if args.json else format_alerts(alerts))
        elif args.action == "ack":
            by = args.by or getpass.getuser()
            body = {"by": by, "comment": args.comment}
            alert = call(args.url, token, "POST", f"/api/v1/alerts/{args.id}/ack", body)
            print(f"acknowledged {alert['id']} as {by}: {alert['summary']}")
        else:
            body = {
                "scope": args.scope,
                "duration": args.duration,
                "by": args.by or getpass.getuser(),
                "comment": args.comment,
            }
            silence = call(args.url, token, "POST", "/api/v1/silences", body)
            print(
                f"silence {silence['id']} for {args.scope} until {silence['ends_at']:.0f} (epoch s)"
            )
    except (ApiError, OSError) as exc:
        print(f"dcim alerts: {exc}", file=sys.stderr)
        return 1
    return 0
