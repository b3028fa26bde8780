"""The links a notification carries: the rule's runbook, and the dashboard and board of its scope.

Resolved when a channel sends (not when the incident is stored), so a corrected
`alerts.links` applies to a backlog too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import urlencode, urljoin

from dcim.alerts.config import AlertLinks
from dcim.alerts.model import Notification

#: Location labels from the widest to the narrowest: the scope of a notification.
PLACES = ("site", "room", "row", "rack", "device")
_URL = re.compile(r"^https?://[^/\s]+")


def is_url(value: object) -> bool:
    """An absolute http(s) URL: what a button, a PagerDuty link or `generatorURL` can take."""
    return isinstance(value, str) and bool(_URL.match(value))


@dataclass(frozen=True, slots=True)
class Links:
    #: Absolute URL; or, without `runbook_base_url`, the pack's path (docs/runbooks.md#...).
    runbook: str = ""
    dashboard: str = ""
    board: str = ""

    def urls(self) -> list[tuple[str, str]]:
        """(label, absolute URL) of each link a button can open, runbook first."""
        named = [("Runbook", self.runbook), ("Dashboard", self.dashboard), ("Board", self.board)]
        return [(label, url) for label, url in named if is_url(url)]


def runbook(notification: Notification, settings: AlertLinks) -> str:
    for pattern, url in settings.runbooks.items():
        if fnmatchcase(notification.rule, pattern):
            return url
    ref = notification.runbook_url
    if not ref or is_url(ref) or settings.runbook_base_url is None:
        return ref
    return urljoin(settings.runbook_base_url.rstrip("/") + "/", ref)


def dashboard(notification: Notification, settings: AlertLinks) -> str:
    """The device's dashboard for a device alert, else the site's NOC overview."""
    labels = notification.labels
    site = labels.get("site")
    if settings.grafana_url is None:
        return ""
    base = settings.grafana_url.rstrip("/")
    if not site:
        return base + "/"  # an alert about no place (a channel failing): Grafana's home
    from dcim.grafana.site import Site  # the uids the generated dashboards have

    view = "device" if labels.get("device") else "noc"
    variables = {f"var-{place}": labels[place] for place in PLACES if labels.get(place)}
    return f"{base}/d/{Site(site, '', ()).uid(view)}?{urlencode(variables)}"


def board(notification: Notification, settings: AlertLinks) -> str:
    if settings.board_url is None:
        return ""
    query = {
        place: notification.labels[place] for place in PLACES if notification.labels.get(place)
    }
    query["incident"] = notification.incident_id
    separator = "&" if "?" in settings.board_url else "?"
    return f"{settings.board_url}{separator}{urlencode(query)}"


def links_for(notification: Notification, settings: AlertLinks) -> Links:
    return Links(
        runbook(notification, settings),
        dashboard(notification, settings),
        board(notification, settings),
    )
