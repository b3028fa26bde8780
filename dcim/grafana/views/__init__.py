"""One module per dashboard view; each `build(site)` returns a Dashboard, or None when the
site has nothing that view shows (a UPS-only site gets no thermal dashboard)."""

from __future__ import annotations

from dcim.grafana.events import event_annotations
from dcim.grafana.model import Dashboard, Row
from dcim.grafana.site import Site
from dcim.grafana.variables import scope_variables


def site_dashboard(
    site: Site,
    view: str,
    title: str,
    summary: str,
    rows: list[Row],
    *,
    one_device: bool = False,
) -> Dashboard | None:
    """The common frame: uid, tags, scope variables, event annotations, view links."""
    rows = [row for row in rows if row.panels]
    if not rows:
        return None
    return Dashboard(
        uid=site.uid(view),
        title=f"{site.title} - {title}",
        summary=summary,
        tags=("dcim", "generated", site.link_tag),
        rows=tuple(rows),
        variables=scope_variables(site, one_device=one_device),
        annotations=event_annotations(),
        link_tags=(site.link_tag,),
    )
