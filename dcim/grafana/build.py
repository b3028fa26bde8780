"""Every dashboard of a config: for each site, each view that has something to show."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dcim.grafana.model import Dashboard
from dcim.grafana.site import Site, sites_of
from dcim.grafana.views import device, environment, noc, power, thermal
from dcim.inventory import Config

#: View name -> builder, in the order the files and folders list them.
VIEWS: tuple[tuple[str, Callable[[Site], Dashboard | None]], ...] = (
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
        return self.dashboard.to_json()


def build_dashboards(config: Config) -> list[Generated]:
    """All dashboards of `config`, in a fixed order (site order, then VIEWS order)."""
    out: list[Generated] = []
    for site in sites_of(config):
        for view, builder in VIEWS:
            dashboard = builder(site)
            if dashboard is not None:
                out.append(Generated(site, view, dashboard))
    return out
