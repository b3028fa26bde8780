"""One module per dashboard view; each `build(view)` returns a Dashboard, or None when the
site has nothing that view shows (a UPS-only site gets no thermal dashboard)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.models import dashboard as model

from dcim.grafana.events import event_annotations
from dcim.grafana.model import GENERATED_MARKER, JSON, dashboard_json
from dcim.grafana.panels import PanelBuilder
from dcim.grafana.site import Site
from dcim.grafana.thresholds import RuleColours
from dcim.grafana.variables import scope_variables

#: The first dashboard load shows this much history; tiles show the present regardless.
TIME_FROM = "now-6h"
REFRESH = "30s"


@dataclass(frozen=True, slots=True)
class View:
    """What every view of one site needs: the site, the rules' colours, the present's lookback."""

    site: Site
    colours: RuleColours
    #: Seconds back a tile still calls "now": the alert engine's stale intervals x the
    #: longest poll interval (a reading older than that is what `device.down` fires on).
    lookback_s: float

    def uid(self, view: str) -> str:
        return self.site.uid(view)

    def url(self, view: str, **variables: str) -> str:
        """A link to another view of the site, keeping the time range."""
        query = "".join(f"&var-{name}={value}" for name, value in variables.items())
        return f"/d/{self.uid(view)}?var-site={self.site.id}{query}&${{__url_time_range}}"


@dataclass(frozen=True, slots=True)
class Row:
    """A titled band of panels; `repeat` repeats it for each selected value of a variable."""

    title: str
    panels: Sequence[PanelBuilder]
    repeat: str | None = None


@dataclass(frozen=True, slots=True)
class Dashboard:
    uid: str
    title: str
    doc: JSON


def site_dashboard(
    view: View,
    name: str,
    title: str,
    summary: str,
    rows: Sequence[Row],
    *,
    one_device: bool = False,
    critical_only: bool = False,
) -> Dashboard | None:
    """The common frame: uid, tags, scope variables, event annotations, view links."""
    rows = [row for row in rows if row.panels]
    if not rows:
        return None
    site = view.site
    builder = (
        dashboard_builder.Dashboard(f"{site.title} - {title}")
        .uid(view.uid(name))
        .description(f"{summary} {GENERATED_MARKER}")
        .tags(["dcim", "generated", site.link_tag])
        .readonly()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .time(TIME_FROM, "now")
        .refresh(REFRESH)
        .timezone("browser")
        .variables(scope_variables(site, one_device=one_device))
        .annotations(event_annotations(critical_only=critical_only))
        .link(
            dashboard_builder.DashboardLink("Views")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags([site.link_tag])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
            .icon("external link")
        )
    )
    for row in rows:
        band = dashboard_builder.Row(row.title)
        if row.repeat:
            band.repeat(row.repeat)
        for panel in row.panels:
            band.with_panel(panel)
        # expanded on a wall screen; dashboard_json moves its panels after it, as Grafana keeps them
        builder.with_row(band.collapsed(False))
    built = builder.build()
    return Dashboard(view.uid(name), built.title or "", dashboard_json(built))
