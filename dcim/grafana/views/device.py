"""Device detail: one device's readings, one query per measurement and unit, and its health.

For each device kind the site has, a row of panels, one per unit (vocabulary
units: no axis mixes seconds, volts and percent), each one query on that kind's
measurement for the selected device. Table rows of a device (line, phase, branch,
outlet, position...) are separate series.
"""

from __future__ import annotations

from collections.abc import Iterator

from dcim.alerts.scope import ROW_TAGS
from dcim.grafana import states
from dcim.grafana.influxql import by_time, ident, raw, select, series, where
from dcim.grafana.model import Influx
from dcim.grafana.panels import (
    PanelBuilder,
    grafana_unit,
    state_timeline,
    timeseries,
    unit_of,
)
from dcim.grafana.thresholds import OK_ONLY
from dcim.grafana.views import Dashboard, Row, View
from dcim.inventory import DeviceKind
from dcim.vocabulary import MetricSpec, load_vocabulary

NUMERIC = ("float", "int")
UNIT_TITLES = {
    "percent": "Percent",
    "s": "Time",
    "volt": "Voltage",
    "amp": "Current",
    "watt": "Power",
    "voltamp": "Apparent power",
    "hertz": "Frequency",
    "celsius": "Temperature",
    "kwatth": "Energy",
    "none": "Counts and ratios",
}
ROW_ALIAS = "".join(f"$tag_{tag}" for tag in ROW_TAGS)


def numeric_metrics(
    kind: DeviceKind, reported: frozenset[str] | None = None
) -> dict[str, list[MetricSpec]]:
    """Grafana unit -> numeric metrics of a kind's measurement (those `reported`, when known)."""
    out: dict[str, list[MetricSpec]] = {}
    for name, spec in load_vocabulary().metrics.items():
        if reported is not None and name not in reported:
            continue
        if name.split(".", 1)[0] == kind.value and spec.type in NUMERIC:
            out.setdefault(grafana_unit(spec.unit), []).append(spec)
    return out


def unit_query(specs: list[MetricSpec]) -> str:
    fields = ", ".join(f"mean({ident(s.field)}) AS {ident(s.field)}" for s in specs)
    return select(fields, ident(specs[0].measurement), where(), by_time(*ROW_TAGS), "none")


def kind_panels(view: View, kind: DeviceKind) -> Iterator[PanelBuilder]:
    for unit, specs in numeric_metrics(kind, view.site.metrics).items():
        # one metric alone: its rule's colours (several: no one rule speaks for the axis)
        steps = view.colours.steps(specs[0].name, kind.value) if len(specs) == 1 else OK_ONLY
        yield timeseries(
            f"{kind.value.upper()}: {UNIT_TITLES.get(unit, unit)}",
            [Influx(unit_query(specs), alias=f"$col {ROW_ALIAS}")],
            unit,
            steps=steps,
            description="Each numeric reading of the selected device in this unit: "
            + ", ".join(s.name for s in specs),
        )


def build(view: View) -> Dashboard | None:
    from dcim.grafana.views import site_dashboard

    health = Row(
        "Monitoring path",
        [
            state_timeline(
                "Reachable",
                [Influx(raw("device.up", ()), alias="up")],
                states.UP,
            ),
            timeseries(
                "Poll duration",
                [Influx(series("device.poll_duration_s", "max", ()), alias="poll")],
                unit_of("device.poll_duration_s"),
                min=0,
            ),
        ],
    )
    kinds = [k for k in DeviceKind if view.site.has(k)]
    rows = [health]
    rows += [
        Row(f"{kind.value.upper()} readings ($device)", list(kind_panels(view, kind)))
        for kind in kinds
    ]
    return site_dashboard(
        view,
        "device",
        "Device detail",
        "Everything one device reports, one panel per unit.",
        rows,
        one_device=True,
    )
