"""Client of the local alert API, for `dcim alerts list | ack ID | silence SCOPE --for 2h`."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from dcim.errors import DcimError

TOKEN_ENV = "DCIM_ALERTS_TOKEN"  # noqa: S105 - the variable name, not a secret
DEFAULT_URL = "http://127.0.0.1:9180"


class ApiError(DcimError):
    """The alert API refused the call or could not be reached."""


def read_token(token_file: Path | None) -> str:
    """The API token from a file, else from $DCIM_ALERTS_TOKEN (never from the command line)."""
    if token_file is not None:
        return token_file.read_text(encoding="utf-8").strip()
    token = os.environ.get(TOKEN_ENV)
    if not token:
        raise ApiError(f"no API token: set {TOKEN_ENV} or pass --token-file")
    return token


def call(url: str, token: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url.rstrip("/") + path, data=data, method=method)  # noqa: S310 - operator-given URL
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise ApiError(f"{method} {path}: HTTP {exc.code}: {detail}") from None
    except OSError as exc:
        raise ApiError(f"cannot reach the alert API at {url}: {exc}") from None


def format_alerts(alerts: list[dict[str, Any]]) -> str:
    if not alerts:
        return "no open alerts"
    lines = [f"{'ID':12}  {'SEVERITY':8}  {'STATE':8}  {'ACK':5}  SUMMARY"]
    for alert in alerts:
        flags = "".join(
            mark
            for mark, on in (
                (" [stale]", alert.get("stale")),
                (" [flapping]", alert.get("flapping")),
                (" [silenced]", alert.get("silenced_by")),
                (" [grouped]", alert.get("parent")),
            )
            if on
        )
        acked = "yes" if alert.get("acknowledged") else "no"
        lines.append(
            f"{alert['id']:12}  {alert['severity']:8}  {alert['state']:8}  {acked:5}  "
            f"{alert['summary']}{flags}"
        )
    return "\n".join(lines)
