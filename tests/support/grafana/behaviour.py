"""What Grafana 10/11 itself does with a dashboard, from its documented behaviour and source.

Grafana cannot run here, so the tests check the generated JSON against the rules
Grafana applies when it loads and draws a dashboard:

- InfluxDB annotations: the datasource's `prepareAnnotation` migrates a legacy
  annotation (query and columns at the top level) only when the annotation already
  has a `target`; without one the annotation has no query and draws nothing.
- Table result format: the InfluxQL backend (`transformRowsForTable`) merges every
  series into ONE frame with the first series' value columns and tag keys, so every
  series must have the same columns and tag keys or the table misaligns or fails;
  the tag columns come out in Go map order (random), so a fixed column order needs
  an `organize` transformation.
- Stats that must show the present read `time > now() - <lookback>`, not the time
  picker's `$timeFilter`.
- Thresholds: a step colours values from its value up; colours by severity.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from dcim.alerts.config import AlertsConfig
from dcim.alerts.kinds.base import Levels, LevelSpec
from dcim.alerts.kinds.correlation import UpsRuntimeRule
from dcim.alerts.kinds.state import StateRule
from dcim.alerts.kinds.threshold import ThresholdRule
from dcim.alerts.rules import Rule
from dcim.alerts.service import load_rules
from dcim.inventory import Config
from dcim.vocabulary import load_vocabulary

#: Colour of each severity; "ok" is the colour of a value no rule objects to.
SEVERITY_COLOUR = {"critical": "red", "warning": "orange", "info": "blue", "ok": "green"}
NOW_BOUND = re.compile(r"time\s*>\s*now\(\)\s*-\s*(\d+)([smh])")
UNITS_S = {"s": 1, "m": 60, "h": 3600}
FIELD_OF = re.compile(r'\b(?:last|mean|max|min|first|sum|count)\("([^"]+)"\)')
RAW_FIELD = re.compile(r'^SELECT "([^"]+)" FROM')
MEASUREMENT = re.compile(r'FROM "([^"]+)"')
ROOM_FILTER = re.compile(r'"room" =~ /\^\(([^)]*)\)\$/')
TAG_IS = re.compile(r'"(\w+)" = \'([^\']*)\'')
#: Panel types that show the present (one value per series or a table of now).
PRESENT_TYPES = ("stat", "table", "bargauge")


# --- annotations ---------------------------------------------------------------------------


def annotation_query(annotation: Mapping[str, Any]) -> str | None:
    """The InfluxQL Grafana 10/11 runs for an annotation, or None (nothing is drawn)."""
    if annotation.get("builtIn"):
        return None
    target = annotation.get("target")
    if not isinstance(target, Mapping):
        return None  # prepareAnnotation migrates only annotations that have a target
    query = target.get("query")
    return query if isinstance(query, str) and query else None


def influx_annotations(doc: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for annotation in doc["annotations"]["list"]:
        if annotation.get("datasource", {}).get("type") == "influxdb":
            yield annotation


# --- table merge ---------------------------------------------------------------------------


class TableShapeError(AssertionError):
    """The series of a table query would not merge into one consistent table."""


def merge_table(series: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """The one table Grafana's InfluxQL backend makes of `series` (columns, rows).

    Grafana takes the first series' columns and tag keys for everyone; a series with
    other columns or tags would be misread, so that is an error here.
    """
    if not series:
        return [], []
    first = series[0]
    columns, tags = list(first["columns"]), sorted(first.get("tags") or {})
    for one in series[1:]:
        if list(one["columns"]) != columns or sorted(one.get("tags") or {}) != tags:
            raise TableShapeError(
                f"series {one.get('name')} {one.get('tags')} has columns {one['columns']}, "
                f"the first series {first.get('name')} {first.get('tags')} has {columns}"
            )
    header = [columns[0], *tags, *columns[1:]]
    rows = [
        [values[0], *(one["tags"][t] for t in tags), *values[1:]]
        for one in series
        for values in one["values"]
    ]
    return header, rows


# --- panels and queries -------------------------------------------------------------------


def panels(doc: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every panel that has queries, row panels' collapsed children included."""
    for panel in doc["panels"]:
        if panel["type"] == "row":
            yield from (p for p in panel.get("panels", []) if "targets" in p)
        elif "targets" in panel:
            yield panel


def lookback_s(query: str) -> float | None:
    """The `time > now() - N` bound of a query in seconds (the widest), or None."""
    found = [int(n) * UNITS_S[unit] for n, unit in NOW_BOUND.findall(query)]
    return max(found) if found else None


def metric_of(query: str) -> str | None:
    """The one vocabulary metric a simple query shows (`last("load_pct") FROM "ups"`)."""
    fields = set(FIELD_OF.findall(query)) | set(RAW_FIELD.findall(query))
    measurements = set(MEASUREMENT.findall(query))
    if len(fields) != 1 or len(measurements) != 1 or "count(" in query:
        return None
    field, measurement = fields.pop(), measurements.pop()
    for name, spec in load_vocabulary().metrics.items():
        if spec.measurement == measurement and spec.field == field:
            return name
    return None


def rooms_of(query: str, all_rooms: Sequence[str]) -> list[str]:
    match = ROOM_FILTER.search(query)
    if match is None:
        return list(all_rooms)
    return [re.sub(r"\\(.)", r"\1", r) for r in match.group(1).split("|")]


# --- rules -----------------------------------------------------------------------------------


def rules_of(config: Config) -> list[Rule]:
    """The rules the monitor loads for this inventory (its packs and rule files)."""
    return load_rules(config.alerts or AlertsConfig())


def _value(spec: float | LevelSpec | None) -> float | None:
    if spec is None:
        return None
    return spec.value if isinstance(spec, LevelSpec) else float(spec)


def steps_of(levels: Levels) -> list[tuple[str, float | None]]:
    """Grafana threshold steps (colour, from value) that say what the levels say."""
    lc, lw = _value(levels.low_critical), _value(levels.low_warning)
    hw, hc = _value(levels.high_warning), _value(levels.high_critical)
    ok, warn, crit = (SEVERITY_COLOUR[s] for s in ("ok", "warning", "critical"))
    base = crit if lc is not None else warn if lw is not None else ok
    steps: list[tuple[str, float | None]] = [(base, None)]
    if lc is not None:
        steps.append((warn if lw is not None else ok, lc))
    if lw is not None:
        steps.append((ok, lw))
    if hw is not None:
        steps.append((warn, hw))
    if hc is not None:
        steps.append((crit, hc))
    return steps


def place_tags(site: str, room: str, query: str) -> dict[str, str]:
    """What a rule's scope can judge of a query's series: site, room, kind and fixed tags."""
    tags = {"site": site, "room": room}
    tags.update(TAG_IS.findall(query))
    for measurement in MEASUREMENT.findall(query):
        if measurement in ("ups", "pdu", "crac", "sensor", "meter"):
            tags["kind"] = measurement
    return tags


def threshold_rule(
    rules: Sequence[Rule], metric: str, tags: Mapping[str, str]
) -> ThresholdRule | None:
    """The threshold rule judging `metric` at this place: the most specific matching scope."""
    found = [
        r
        for r in rules
        if isinstance(r, ThresholdRule)
        and r.metric == metric
        and r.ratio_to is None
        and r.scope.matches(tags)
    ]
    found.sort(key=lambda r: len(r.scope.model_dump(exclude_defaults=True)), reverse=True)
    return found[0] if found else None


def state_rule(rules: Sequence[Rule], metric: str) -> StateRule | None:
    return next((r for r in rules if isinstance(r, StateRule) and r.metric == metric), None)


def runtime_rule(rules: Sequence[Rule]) -> UpsRuntimeRule | None:
    return next((r for r in rules if isinstance(r, UpsRuntimeRule)), None)


def panel_steps(panel: Mapping[str, Any], ref_id: str) -> list[tuple[str, float | None]]:
    """The threshold steps Grafana applies to the frames of query `ref_id`."""
    steps = panel["fieldConfig"]["defaults"].get("thresholds", {}).get("steps", [])
    for override in panel["fieldConfig"].get("overrides", []):
        matcher = override["matcher"]
        if matcher["id"] == "byFrameRefID" and matcher["options"] == ref_id:
            for prop in override["properties"]:
                if prop["id"] == "thresholds":
                    steps = prop["value"]["steps"]
    return [(s["color"], s["value"]) for s in steps]


def mapped_colours(panel: Mapping[str, Any]) -> dict[str, str]:
    """Raw value -> colour of the panel's value mappings (defaults and overrides)."""
    found: dict[str, str] = {}
    mapping_lists = [panel["fieldConfig"]["defaults"].get("mappings", [])]
    for override in panel["fieldConfig"].get("overrides", []):
        mapping_lists += [p["value"] for p in override["properties"] if p["id"] == "mappings"]
    for mappings in mapping_lists:
        for mapping in mappings:
            if mapping.get("type") == "value":
                for value, result in mapping["options"].items():
                    if "color" in result:
                        found[value] = result["color"]
    return found
