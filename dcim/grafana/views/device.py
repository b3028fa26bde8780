"""Device detail: every numeric metric of one device, and how the monitor reaches it."""

from __future__ import annotations

from dcim.grafana import states
from dcim.grafana.influxql import by_time, ident, select, series
from dcim.grafana.model import Dashboard, Row, Target
from dcim.grafana.panels import state_timeline, table, timeseries, unit_of
from dcim.grafana.site import Site
from dcim.vocabulary import load_vocabulary

ONE_DEVICE = '"device" =~ /^$device$/'


def device_measurements() -> str:
    """`/^(ups|pdu|...)$/`: every measurement devices write (not the monitor's own)."""
    names = sorted(
        {m for g, m in load_vocabulary().measurements.items() if g not in ("device", "dcim")}
    )
    return f"/^({'|'.join(names)})$/"


def build(site: Site) -> Dashboard | None:
    from dcim.grafana.views import site_dashboard

    measurements = device_measurements()
    everything = Target(
        select("mean(*)", measurements, f"$timeFilter AND {ONE_DEVICE}", [*by_time(), "*"], "none"),
        alias="$col",
    )
    now = Target(
        select("last(*)", measurements, f"$timeFilter AND {ONE_DEVICE}", ["*"]),
        result_format="table",
    )
    health = Row(
        "Monitoring path",
        (
            state_timeline(
                "Reachable", [Target(series("device.up", "last", ()), alias="up")], states.UP
            ),
            timeseries(
                "Poll duration",
                [Target(series("device.poll_duration_s", "max", ()), alias="poll")],
                unit_of("device.poll_duration_s"),
                min=0,
            ),
        ),
    )
    values = Row(
        "Readings",
        (
            timeseries(
                "All numeric readings",
                [everything],
                "none",
                description="Every numeric field of the device, one series per field and table row.",
                width=24,
                height=12,
            ),
            table(
                "Latest values",
                [now],
                description=f"Last value of every field ({ident('device')} tag = $device).",
            ),
        ),
    )
    return site_dashboard(
        site,
        "device",
        "Device detail",
        "Everything one device reports.",
        [health, values],
        one_device=True,
    )
