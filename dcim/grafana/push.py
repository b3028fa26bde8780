"""`dcim grafana push --url URL`: the generated dashboards into Grafana over its HTTP API.

Idempotent: a folder per site (fixed uid), each dashboard under its fixed uid,
written only when what Grafana holds differs from what was generated (ignoring
the `id` and `version` Grafana assigns). Every action is reported, so a second
push of the same inventory reports everything unchanged and writes nothing.
The token comes from an environment variable or a file and is never printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dcim.errors import DcimError
from dcim.grafana.build import Generated

#: Keys Grafana sets itself on a stored dashboard; they say nothing about its content.
SERVER_KEYS = ("id", "version")
TIMEOUT_S = 10.0


class PushError(DcimError):
    """Grafana refused or could not be reached; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Change:
    """What push did to one object: created, updated or unchanged."""

    kind: str  # folder | dashboard
    uid: str
    title: str
    action: str

    def __str__(self) -> str:
        return f"{self.action:9} {self.kind:9} {self.uid}  {self.title}"


def _api(url: str, token: str) -> Any:
    from grafana_client.api import GrafanaApi

    return GrafanaApi.from_url(url, credential=token, timeout=TIMEOUT_S)


def _explain(exc: Exception, url: str, doing: str) -> PushError:
    """A message an operator can act on; never includes the token."""
    from grafana_client.client import GrafanaClientError, GrafanaException
    from niquests.exceptions import ConnectionError as NiquestsConnectionError

    status = getattr(exc, "status_code", None)
    if status == 401:
        return PushError(f"Grafana at {url} rejected the token (HTTP 401) while {doing}")
    if status == 403:
        return PushError(
            f"the token may not do this at {url} (HTTP 403) while {doing}: it needs the Editor role"
        )
    if isinstance(exc, NiquestsConnectionError | OSError):
        return PushError(f"cannot reach Grafana at {url} while {doing}: {type(exc).__name__}")
    if isinstance(exc, GrafanaClientError | GrafanaException):
        return PushError(
            f"Grafana at {url} answered HTTP {status} while {doing}: {exc} (is this Grafana's URL?)"
        )
    return PushError(f"unexpected answer from {url} while {doing}: {type(exc).__name__}: {exc}")


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in SERVER_KEYS}


def _ensure_folders(api: Any, generated: list[Generated]) -> list[Change]:
    existing = {f["uid"]: f for f in api.folder.get_all_folders()}
    changes = []
    for site in {g.site.id: g.site for g in generated}.values():
        uid, title = site.folder_uid, site.title
        if uid not in existing:
            api.folder.create_folder(title, uid=uid)
            changes.append(Change("folder", uid, title, "created"))
        elif existing[uid].get("title") != title:
            api.folder.update_folder(uid, title=title, overwrite=True)
            changes.append(Change("folder", uid, title, "updated"))
        else:
            changes.append(Change("folder", uid, title, "unchanged"))
    return changes


def _stored(api: Any, uid: str) -> dict[str, Any] | None:
    from grafana_client.client import GrafanaClientError

    try:
        found: dict[str, Any] = api.dashboard.get_dashboard(uid)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise
    return found


def _push_dashboard(api: Any, item: Generated, message: str) -> Change:
    doc = item.to_json()
    folder = item.site.folder_uid
    stored = _stored(api, item.dashboard.uid)
    if stored is not None:
        same_content = _comparable(stored.get("dashboard", {})) == _comparable(doc)
        same_folder = stored.get("meta", {}).get("folderUid") == folder
        if same_content and same_folder:
            return Change("dashboard", item.dashboard.uid, item.dashboard.title, "unchanged")
    api.dashboard.update_dashboard(
        {"dashboard": doc, "folderUid": folder, "overwrite": True, "message": message}
    )
    action = "created" if stored is None else "updated"
    return Change("dashboard", item.dashboard.uid, item.dashboard.title, action)


def push(
    generated: list[Generated], url: str, token: str, message: str = "dcim grafana push"
) -> list[Change]:
    """Make Grafana at `url` hold exactly the generated folders and dashboards."""
    from grafana_client.client import GrafanaException
    from niquests.exceptions import RequestException

    api = _api(url, token)
    doing = "listing folders"
    try:
        changes = _ensure_folders(api, generated)
        for item in generated:
            doing = f"writing dashboard {item.dashboard.uid}"
            changes.append(_push_dashboard(api, item, message))
    except (GrafanaException, RequestException, OSError) as exc:
        raise _explain(exc, url, doing) from None
    return changes
