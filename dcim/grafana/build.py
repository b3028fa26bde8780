"""Every dashboard of a config: for each site, each view that has something to show."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dcim.alerts.config import AlertsConfig
from dcim.grafana.site import Profiles, Site, sites_of
from dcim.grafana.thresholds import RuleColours
from dcim.grafana.views import Dashboard, View, device, environment, noc, power, thermal
from dcim.inventory import Config

#: View name -> builder, in the order the files and folders list them.
VIEWS: tuple[tuple[str, Callable[[View], Dashboard | None]], ...] = (
    ("noc", noc.build),
    ("power", power.build),
    ("thermal", thermal.build),
    ("environment", environment.build),
    ("device", device.build),
)


@dataclass(frozen=True, slots=True)
class Generated:
    """One generated dashboard and where it belongs (a folder per site)."""

    site: Site
    view: str
    dashboard: Dashboard

    @property
    def path(self) -> str:
        """Relative file path: `<site>/<view>.json`."""
        return f"{self.site.id}/{self.view}.json"

    def to_json(self) -> dict[str, Any]:
        return self.dashboard.doc


def build_dashboards(config: Config, profiles: Profiles | None = None) -> list[Generated]:
    """All dashboards of `config`, in a fixed order (site order, then VIEWS order).

    `profiles` (from the CLI) tells what the devices' profiles report; without it
    panels cannot be narrowed to the metrics the devices actually have.
    """
    stale_intervals = (config.alerts or AlertsConfig()).stale_intervals
    out: list[Generated] = []
    for site in sites_of(config, profiles):
        colours = RuleColours(config, site.id, site.rooms)
        view = View(site, colours, stale_intervals * site.longest_poll_s)
        for name, builder in VIEWS:
            dashboard = builder(view)
            if dashboard is not None:
                out.append(Generated(site, name, dashboard))
    return out
