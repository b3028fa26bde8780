"""Template variables: the datasource picker and the chained inventory scope.

Each level lists the tag values found under the levels above it, so picking a
room narrows rows, racks and devices. "All" is `.*`, which also matches a
missing tag: a room-level UPS has no row or rack tag and must still show.
"""

from __future__ import annotations

from dcim.grafana.influxql import SCOPE, ident, scope_filter
from dcim.grafana.model import DATASOURCE_VAR, Variable
from dcim.grafana.site import Site

LABELS = {"site": "Site", "room": "Room", "row": "Row", "rack": "Rack", "device": "Device"}


def datasource_variable() -> Variable:
    """Any InfluxDB datasource (1.x, 2.x with DBRP, 3.x) answering InfluxQL."""
    return Variable(name=DATASOURCE_VAR, label="InfluxDB", type="datasource", query="influxdb")


def tag_values_query(level: str) -> str:
    """`SHOW TAG VALUES` for one level, filtered by every level above it."""
    above = SCOPE[: SCOPE.index(level)]
    query = f"SHOW TAG VALUES WITH KEY = {ident(level)}"
    return f"{query} WHERE {scope_filter(above)}" if above else query


def scope_variables(site: Site, *, one_device: bool = False) -> tuple[Variable, ...]:
    """datasource, site (this site selected), room, row, rack, device.

    With `one_device` (device detail) the device variable has no All and starts
    on the site's first device.
    """
    out = [datasource_variable()]
    for level in SCOPE:
        if level == "site":
            out.append(
                Variable("site", LABELS[level], query=tag_values_query(level), current=site.id)
            )
        elif level == "device" and one_device:
            first = site.devices[0].device.id if site.devices else None
            out.append(
                Variable("device", LABELS[level], query=tag_values_query(level), current=first)
            )
        else:
            out.append(
                Variable(
                    level,
                    LABELS[level],
                    query=tag_values_query(level),
                    include_all=True,
                    all_value=".*",
                )
            )
    return tuple(out)
