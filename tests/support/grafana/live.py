"""Every panel's queries against a live InfluxDB, as Grafana would run and shape them.

Used while the monitor runs (tiles read the last few poll intervals, so a check
after the run would find them stale, as Grafana would): which panels come back
without a value, and which table queries Grafana could not merge into one table.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.support.grafana.behaviour import TableShapeError, annotation_query, merge_table
from tests.support.grafana.expand import expand, selection
from tests.support.servers import http


class QueryFailed(AssertionError):
    """InfluxDB rejected a query (Grafana would show the panel's error)."""


@dataclass(frozen=True)
class Influx:
    url: str
    db: str

    def series(self, query: str) -> list[dict[str, Any]]:
        params = urllib.parse.urlencode({"q": query, "db": self.db, "epoch": "ms"})
        status, body = http("POST", f"{self.url}/query?{params}")
        doc = json.loads(body)
        result = doc.get("results", [{}])[0]
        if status != 200 or "error" in doc or "error" in result:
            raise QueryFailed(f"InfluxDB rejected {query!r}: HTTP {status}: {body[:400]!r}")
        found: list[dict[str, Any]] = result.get("series", [])
        return found


def has_values(series: Sequence[Mapping[str, Any]]) -> bool:
    """At least one non-null value outside the time column."""
    for one in series:
        columns = one["columns"]
        for row in one["values"]:
            if any(v is not None for c, v in zip(columns, row, strict=True) if c != "time"):
                return True
    return False


def panels(doc: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    yield from (p for p in doc["panels"] if p["type"] != "row")


@dataclass
class Findings:
    """Panels without a value ("view: title"), table shape errors, active-alert rows."""

    empty: list[str] = field(default_factory=list)
    shapes: list[str] = field(default_factory=list)
    active_alerts: list[dict[str, Any]] = field(default_factory=list)


def check(
    influx: Influx,
    dashboards: Mapping[str, Mapping[str, Any]],
    device_choices: Sequence[str] = (),
) -> Findings:
    """Run every panel; the device view counts as filled when one of `device_choices` fills it."""
    found = Findings()
    for view, doc in dashboards.items():
        choices = [{"device": d} for d in device_choices] if view == "device" else [{}]
        for panel in panels(doc):
            filled = False
            for chosen in choices:
                values = selection(doc, chosen)
                for target in panel["targets"]:
                    series = influx.series(expand(target["query"], values))
                    filled = filled or has_values(series)
                    if target.get("resultFormat") == "table":
                        try:
                            header, rows = merge_table(series)
                        except TableShapeError as exc:
                            found.shapes.append(f"{view}: {panel['title']}: {exc}")
                            continue
                        if panel["title"] == "Active alerts":
                            found.active_alerts = [dict(zip(header, r, strict=True)) for r in rows]
            if not filled:
                found.empty.append(f"{view}: {panel['title']}")
        for annotation in doc["annotations"]["list"]:
            query = annotation_query(annotation)
            if query is not None:
                try:
                    merge_table(influx.series(expand(query, selection(doc, {}))))
                except TableShapeError as exc:
                    found.shapes.append(f"{view}: annotation {annotation['name']}: {exc}")
    return found
