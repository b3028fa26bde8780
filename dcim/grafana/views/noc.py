"""NOC overview of one site: power, cooling and fire at a glance, active alerts, PUE."""

from __future__ import annotations

from dcim.grafana import states
from dcim.grafana.events import active_alerts_panel
from dcim.grafana.influxql import (
    alias,
    by_time,
    ident,
    latest,
    select,
    series,
    stored,
    tag_is,
    where,
)
from dcim.grafana.model import Dashboard, Panel, Row, Target
from dcim.grafana.panels import stat, state_timeline, unit_of
from dcim.grafana.site import Site
from dcim.inventory import DeviceKind

BY_DEVICE = ("device",)


def _now(
    metric: str, by: tuple[str, ...] = BY_DEVICE, *conditions: str, agg: str = "last"
) -> Target:
    return Target(latest(metric, by, conditions, agg=agg), alias=alias(by))


def pue_query() -> str:
    """Facility power over IT power, each summed over its meters per interval."""
    s = stored("meter.power_w")

    def side(scope: str) -> str:
        fields = f"mean({ident(s.field)}) AS {ident(scope)}"
        condition = where(tag_is("scope", scope))
        return select(fields, ident(s.measurement), condition, by_time("device"))

    sources = f"({side('facility')}), ({side('it')})"
    return select('sum("facility") / sum("it") AS "pue"', sources, "$timeFilter", by_time(), "none")


def power_panels(site: Site) -> list[Panel]:
    panels: list[Panel] = []
    if site.has(DeviceKind.UPS):
        panels += [
            stat(
                "UPS source",
                [_now("ups.output_source")],
                mappings=states.UPS_SOURCE,
                text_fields=True,
            ),
            stat(
                "UPS load",
                [_now("ups.load_pct", ("device", "line"))],
                unit_of("ups.load_pct"),
                thresholds=states.UPS_LOAD_PCT,
            ),
            stat(
                "UPS runtime",
                [_now("ups.battery_runtime_s")],
                unit_of("ups.battery_runtime_s"),
                thresholds=states.RUNTIME_S,
            ),
        ]
    if site.has(DeviceKind.PDU):
        panels.append(
            stat(
                "Tripped branches",
                [_now("pdu.branch_tripped", ("device", "branch"))],
                mappings=states.TRIPPED,
                text_fields=True,
            )
        )
    if site.has(DeviceKind.METER):
        # the scope tag may come from the inventory (one meter per scope) or from the
        # profile (one multi-channel meter, as the simulated facility meter): not known here
        panels.append(
            stat(
                "PUE",
                [Target(pue_query(), alias="PUE")],
                thresholds=states.PUE,
                reducer="mean",
                description="meter.power_w tagged scope=facility over scope=it "
                "(inventory tags or meter channels).",
            )
        )
    return panels


def cooling_panels(site: Site) -> list[Panel]:
    panels: list[Panel] = []
    if site.has(DeviceKind.CRAC):
        panels.append(
            stat(
                "CRAC mode",
                [_now("crac.operating_mode")],
                mappings=states.CRAC_MODE,
                text_fields=True,
            )
        )
    if site.has_sensor("env"):
        panels.append(
            stat(
                "Hottest rack inlet",
                [_now("sensor.temp_c", ("room",), tag_is("position", "inlet"), agg="max")],
                unit_of("sensor.temp_c"),
                thresholds=states.ASHRAE_INLET_C,
                description="Highest inlet temperature in the time range, per room; ASHRAE A1 bands.",
            )
        )
    return panels


def fire_panels(site: Site) -> list[Panel]:
    panels: list[Panel] = []
    if site.has_sensor("smoke"):
        panels += [
            stat(
                "VESDA level",
                [_now("sensor.smoke_level")],
                mappings=states.SMOKE_LEVEL,
                text_fields=True,
            ),
            stat(
                "Smoke detectors",
                [_now("sensor.smoke_detected")],
                mappings=states.SMOKE,
                text_fields=True,
            ),
        ]
    if site.has_sensor("leak"):
        panels.append(
            stat("Leak", [_now("sensor.leak_detected")], mappings=states.LEAK, text_fields=True)
        )
    return panels


def build(site: Site) -> Dashboard | None:
    from dcim.grafana.views import site_dashboard

    up = state_timeline(
        "Devices reachable",
        [Target(series("device.up", "last"), alias="$tag_device")],
        states.UP,
        description="1 when the monitor's last poll of the device succeeded.",
        width=24,
        height=6,
    )
    rows = [
        Row("Active alerts", (active_alerts_panel(),)),
        Row("Power", tuple(power_panels(site))),
        Row("Cooling", tuple(cooling_panels(site))),
        Row("Fire and water", tuple(fire_panels(site))),
        Row("Monitoring", (up,)),
    ]
    return site_dashboard(
        site, "noc", "NOC overview", "Power, cooling and fire status of the site.", rows
    )
