"""Template variables: the datasource picker and the chained inventory scope.

Each level lists the tag values found under the levels above it, so picking a
room narrows rows, racks and devices. Room and row are multi-select (Grafana
writes several values as `(a|b)` in a regex). "All" is `.*`, which also matches a
missing tag: a room-level UPS has no row or rack tag and must still show.
`SHOW TAG VALUES` has no time bound, so the lists are read when the dashboard
loads, not on every change of the time range.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as model

from dcim.grafana.influxql import SCOPE, ident, scope_filter
from dcim.grafana.model import DATASOURCE_VAR, datasource_ref
from dcim.grafana.site import Site

LABELS = {"site": "Site", "room": "Room", "row": "Row", "rack": "Rack", "device": "Device"}
MULTI = ("room", "row")
#: Grafana can only filter datasources by name: the provisioned ones say InfluxQL in
#: theirs (export.py), so Flux and SQL InfluxDB datasources stay out of the list.
INFLUXQL_NAME = "InfluxQL"

Variable = cogbuilder.Builder[model.VariableModel]


def datasource_variable() -> Variable:
    """InfluxDB datasources (1.x, 2.x with DBRP, 3.x) whose name says they answer InfluxQL."""
    return (
        dashboard_builder.DatasourceVariable(DATASOURCE_VAR)
        .label("InfluxDB (InfluxQL)")
        .type("influxdb")
        .regex(f"/{INFLUXQL_NAME}/")
    )


def tag_values_query(level: str) -> str:
    """`SHOW TAG VALUES` for one level, filtered by every level above it."""
    above = SCOPE[: SCOPE.index(level)]
    query = f"SHOW TAG VALUES WITH KEY = {ident(level)}"
    return f"{query} WHERE {scope_filter(above)}" if above else query


def _option(value: str, text: str | None = None) -> model.VariableOption:
    return model.VariableOption(selected=True, text=text or value, value=value)


def scope_variables(site: Site, *, one_device: bool = False) -> list[Variable]:
    """datasource, site (this site selected), room, row, rack, device.

    With `one_device` (device detail) the device variable has no All and starts
    on the site's first device.
    """
    out: list[Variable] = [datasource_variable()]
    for level in SCOPE:
        var = (
            dashboard_builder.QueryVariable(level)
            .label(LABELS[level])
            .query(tag_values_query(level))
            .datasource(datasource_ref())
            .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
        )
        if level == "site":
            var.current(_option(site.id))
        elif level == "device" and one_device:
            first = site.devices[0].device.id if site.devices else ""
            var.current(_option(first))
        else:
            var.include_all(True).all_value(".*").current(_option("$__all", "All"))
            var.multi(level in MULTI)
        out.append(var)
    return out
