"""`dcim alerts list | ack | silence | unsilence | audit`, against the running monitor's API.

Who acts is the API token's identity (`alerts.api.tokens`), never a name given here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dcim.alerts.client import DEFAULT_URL, TOKEN_ENV, ApiError, call, format_alerts, read_token


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    alerts = sub.add_parser(
        "alerts", help="list, acknowledge or silence alerts of a running monitor; its audit log"
    )
    alerts.add_argument("--url", default=DEFAULT_URL, help=f"alert API (default {DEFAULT_URL})")
    alerts.add_argument("--token-file", type=Path, help=f"API token file (default: ${TOKEN_ENV})")
    actions = alerts.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="open alerts")
    listing.add_argument("--json", action="store_true")
    ack = actions.add_parser("ack", help="acknowledge an alert (as your token's identity)")
    ack.add_argument("id")
    ack.add_argument("--comment", default="")
    silence = actions.add_parser(
        "silence", help="silence alerts by scope, e.g. room=hall-a; later: a maintenance window"
    )
    silence.add_argument(
        "scope", help="NAME=GLOB[,NAME=GLOB...] over rule, site, room, row, rack, device, kind"
    )
    silence.add_argument("--for", dest="duration", required=True, help="e.g. 30m, 2h, 1d")
    silence.add_argument(
        "--starts-in", help="a maintenance window starting this much later (e.g. 30m, 1d)"
    )
    silence.add_argument("--comment", default="")
    unsilence = actions.add_parser("unsilence", help="end a silence or maintenance window")
    unsilence.add_argument("id")
    audit = actions.add_parser("audit", help="the audit log: who did what, from where, when")
    audit.add_argument(
        "--file", type=Path, help="read this audit file instead of asking the API (offline)"
    )
    audit.add_argument("--limit", type=int, default=100, help="newest N entries (default 100)")
    audit.add_argument("--json", action="store_true", help="JSON lines as stored")
    alerts.set_defaults(func=cmd_alerts)


def cmd_alerts(args: argparse.Namespace) -> int:
    try:
        if args.action == "audit" and args.file is not None:
            return _print_audit_file(args.file, args.limit, as_json=args.json)
        token = read_token(args.token_file)
        if args.action == "list":
            alerts = call(args.url, token, "GET", "/api/v1/alerts")["alerts"]
            print(json.dumps(alerts, indent=2) if args.json else format_alerts(alerts))
        elif args.action == "ack":
            body = {"comment": args.comment}
            alert = call(args.url, token, "POST", f"/api/v1/alerts/{args.id}/ack", body)
            by = alert["acknowledged"]["by"]
            print(f"acknowledged {alert['id']} as {by}: {alert['summary']}")
        elif args.action == "silence":
            body = {"scope": args.scope, "duration": args.duration, "comment": args.comment}
            if args.starts_in:
                body["starts_in"] = args.starts_in
            silence = call(args.url, token, "POST", "/api/v1/silences", body)
            print(
                f"silence {silence['id']} for {args.scope} by {silence['created_by']}: "
                f"{_when(silence['starts_at'])} to {_when(silence['ends_at'])}"
            )
        elif args.action == "unsilence":
            silence = call(args.url, token, "DELETE", f"/api/v1/silences/{args.id}")
            print(f"silence {silence['id']} ended")
        else:
            entries = call(args.url, token, "GET", f"/api/v1/audit?limit={args.limit}")["entries"]
            _print_entries(entries, as_json=args.json)
    except (ApiError, OSError) as exc:
        print(f"dcim alerts: {exc}", file=sys.stderr)
        return 1
    return 0


def _when(at: float) -> str:
    from dcim.alerts.api import epoch_text

    return epoch_text(at)


def _print_audit_file(path: Path, limit: int, *, as_json: bool) -> int:
    from dcim.audit import read_audit

    if not path.exists():
        print(f"dcim alerts audit: {path}: no such file", file=sys.stderr)
        return 1
    entries = [json.loads(e.to_json()) for e in read_audit(path)][-max(limit, 1) :]
    _print_entries(entries, as_json=as_json)
    return 0


def _print_entries(entries: list[dict[str, Any]], *, as_json: bool) -> None:
    if as_json:
        for entry in entries:
            print(json.dumps(entry, sort_keys=True))
        return
    if not entries:
        print("no audit entries")
        return
    for e in entries:
        detail = " ".join(f"{k}={v}" for k, v in sorted(e.get("detail", {}).items()) if v != "")
        print(
            f"{_when(e['at'])}  {e['actor']:<16} {e['source']:<15} {e['action']:<12} "
            f"{e['target']:<24} {e['result']:<8} {detail}".rstrip()
        )
