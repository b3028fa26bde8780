"""What Grafana itself would do with the generated dashboards (it cannot run here).

Each test states one of Grafana's own rules (see tests/support/grafana/behaviour.py) and checks every
dashboard generated for the example inventory, the test hall, the `dcim demo`
inventory and the demo hall (simulators/sites/demo-site.yaml) against it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from collectors.registry import profile_metrics, profile_tag_values
from dcim.alerts.config import AlertsConfig
from dcim.alerts.kinds.aggregate import RatioRule
from dcim.alerts.kinds.threshold import ThresholdRule
from dcim.alerts.snapshot import DEFAULT_PERIOD_S
from dcim.cli.demo.hall import demo_inventory
from dcim.grafana.build import build_dashboards
from dcim.grafana.export import datasources_yaml
from dcim.grafana.layout import load_inventory
from dcim.grafana.site import Profiles
from dcim.inventory import Config, iter_devices, parse_config
from tests.support.grafana.behaviour import (
    SEVERITY_COLOUR,
    TableShapeError,
    annotation_query,
    influx_annotations,
    lookback_s,
    mapped_colours,
    merge_table,
    metric_of,
    panel_steps,
    panels,
    place_tags,
    rooms_of,
    rules_of,
    runtime_rule,
    state_rule,
    steps_of,
    threshold_rule,
)
from tests.support.grafana.site import hall_config

ROOT = Path(__file__).resolve().parents[3]
#: What `dcim grafana export` passes in: the devices' profiles read.
PROFILES = Profiles(profile_tag_values, profile_metrics)
EXAMPLE = ROOT / "dcim" / "examples" / "site.yaml"
DEMO_HALL = ROOT / "simulators" / "sites" / "demo-site.yaml"
#: A stat shows the present: its lookback is a few poll intervals, never hours.
MAX_LOOKBACK_POLLS = 10


def inventories() -> dict[str, Config]:
    return {
        "example": load_inventory(EXAMPLE),
        "hall": hall_config(),
        "demo": demo_inventory(),
        "demo-hall": load_inventory(DEMO_HALL),
    }


INVENTORIES = inventories()
DOCS = [
    (name, g.site.id, g.view, g.to_json())
    for name, config in INVENTORIES.items()
    for g in build_dashboards(config, PROFILES)
]
IDS = [f"{name}:{site}/{view}" for name, site, view, _ in DOCS]


def _rooms(config: Config, site: str) -> list[str]:
    return sorted({p.room for p in iter_devices(config) if p.site == site})


def _room_classes(config: Config, site: str) -> dict[str, str]:
    """Each room's ASHRAE class, as the thermal rules judge it."""
    default = (config.alerts or AlertsConfig()).ashrae_class
    return {
        room.id: room.ashrae_class or default
        for s in config.sites
        if s.id == site
        for room in s.rooms
    }


def _longest_poll_s(config: Config) -> float:
    return max(p.device.poll_interval_s for p in iter_devices(config))


@pytest.mark.parametrize(("inventory", "site", "view", "doc"), DOCS, ids=IDS)
def test_every_annotation_has_a_target_grafana_runs(
    inventory: str, site: str, view: str, doc: dict[str, Any]
) -> None:
    annotations = list(influx_annotations(doc))
    assert annotations, "no InfluxDB annotation at all"
    for annotation in annotations:
        assert annotation_query(annotation) is not None, annotation["name"]
        target = annotation["target"]
        assert target["rawQuery"] is True
        assert target.get("textColumn") or target.get("titleColumn"), annotation["name"]


def test_noc_annotates_only_critical_alerts_and_traps_are_opt_in() -> None:
    noc = next(doc for name, _, view, doc in DOCS if name == "hall" and view == "noc")
    by_name = {a["name"]: a for a in influx_annotations(noc)}
    alert_query = annotation_query(by_name["Critical alerts"])
    assert alert_query is not None
    assert "\"severity\" = 'critical'" in alert_query
    assert by_name["Device events"]["enable"] is False  # opt-in: a trap storm must not paint it


@pytest.mark.parametrize(("inventory", "site", "view", "doc"), DOCS, ids=IDS)
def test_present_panels_read_a_bounded_lookback_relative_to_now(
    inventory: str, site: str, view: str, doc: dict[str, Any]
) -> None:
    """Stats, tables and bar gauges show the present: never the time picker's whole range."""
    longest = _longest_poll_s(INVENTORIES[inventory])
    present = [p for p in panels(doc) if p["type"] in ("stat", "table", "bargauge")]
    for panel in present:
        for target in panel["targets"]:
            query = target["query"]
            assert "$timeFilter" not in query, (panel["title"], query)
            bound = lookback_s(query)
            assert bound is not None, (panel["title"], query)
            # open incidents are restated every snapshot period, readings every poll
            most = max(MAX_LOOKBACK_POLLS * longest, 3 * DEFAULT_PERIOD_S)
            assert longest <= bound <= most, (panel["title"], bound)
        assert panel["fieldConfig"]["defaults"].get("noValue"), panel["title"]


def _check_thresholds(inventory: str, site: str, doc: dict[str, Any]) -> dict[str, int]:
    """Compare every panel's thresholds and state colours with the loaded rules."""
    config = INVENTORIES[inventory]
    rules = rules_of(config)
    rooms = _rooms(config, site)
    classes = _room_classes(config, site)
    checked = {"threshold": 0, "state": 0, "ratio": 0, "runtime": 0}
    for panel in panels(doc):
        for target in panel["targets"]:
            query, ref = target["query"], target["refId"]
            steps = panel_steps(panel, ref)
            metric = metric_of(query)
            if metric is not None:
                per_room = {
                    room: threshold_rule(rules, metric, place_tags(site, room, query))
                    for room in rooms_of(query, rooms)
                }
                judged = {
                    r.id + repr(r.levels_for(classes.get(room)))
                    for room, r in per_room.items()
                    if r is not None
                }
                assert len(judged) <= 1, f"{panel['title']} mixes rooms of other classes"
                room, rule = next(
                    ((m, r) for m, r in per_room.items() if r is not None), ("", None)
                )
                if rule is not None:
                    levels = rule.levels_for(classes.get(room))
                    assert steps == steps_of(levels), (panel["title"], ref, rule.id)
                    checked["threshold"] += 1
                states = state_rule(rules, metric)
                colours = mapped_colours(panel)
                if states is not None and colours:
                    for value, colour in colours.items():
                        severity = states.states.get(value)
                        want = SEVERITY_COLOUR[severity.value] if severity else None
                        if want is not None:
                            assert colour == want, (panel["title"], value, colour)
                        else:  # a state no rule objects to is never painted as an alarm
                            assert colour not in ("red", "orange", "dark-red"), (
                                panel["title"],
                                value,
                                colour,
                            )
                    checked["state"] += 1
                runtime = runtime_rule(rules)
                if metric == "ups.battery_runtime_s" and runtime is not None:
                    needed = runtime.generator_start_s_by_site.get(site, runtime.generator_start_s)
                    needed += runtime.margin_s
                    # below it a utility failure now would drop the load: the rule's warning
                    assert steps == [(SEVERITY_COLOUR["warning"], None), ("green", needed)], (
                        panel["title"],
                        steps,
                    )
                    checked["runtime"] += 1
            for other in rules:
                if "count(" in query:
                    continue
                if (
                    isinstance(other, ThresholdRule)
                    and other.ratio_to
                    and re.search(rf'\) / \w+\("{other.ratio_to.split(".")[1]}"\)', query)
                    and f'"{other.metric.split(".")[1]}"' in query
                ) or (
                    isinstance(other, RatioRule)
                    and "'facility'" in query
                    and "'it'" in query
                    and other.numerator.tags.get("scope") == "facility"
                ):
                    assert steps == steps_of(other.levels), (panel["title"], other.id, steps)
                    checked["ratio"] += 1
    return checked


@pytest.mark.parametrize(("inventory", "site", "view", "doc"), DOCS, ids=IDS)
def test_thresholds_and_state_colours_equal_the_rules(
    inventory: str, site: str, view: str, doc: dict[str, Any]
) -> None:
    _check_thresholds(inventory, site, doc)


def test_the_rule_cross_check_covers_every_kind_of_threshold() -> None:
    """On the demo hall every kind of check runs (it would pass vacuously otherwise)."""
    total: dict[str, int] = {}
    for name, site, _, doc in DOCS:
        if name == "demo-hall":
            for kind, count in _check_thresholds(name, site, doc).items():
                total[kind] = total.get(kind, 0) + count
    assert all(count > 0 for count in total.values()), total


def _thermal_highs(name: str, config: Config) -> set[float | None]:
    INVENTORIES[name] = config
    thermal = next(g for g in build_dashboards(config, PROFILES) if g.view == "thermal").to_json()
    _check_thresholds(name, "demo", thermal)
    return {
        step[1]
        for panel in panels(thermal)
        for target in panel["targets"]
        for step in panel_steps(panel, target["refId"])
    }


def test_thermal_class_follows_each_rooms_ashrae_class() -> None:
    """A room of ASHRAE class A3 in the inventory gets A3 colours, the others the default A1."""
    data = yaml.safe_load(DEMO_HALL.read_text())
    rooms = data["sites"][0]["rooms"]
    assert [room["id"] for room in rooms][:2] == ["hall-1", "hall-2"]
    rooms[1]["ashrae_class"] = "A3"
    config = parse_config(yaml.safe_dump(data), f"{DEMO_HALL} with hall-2 on A3")
    assert {32.0, 40.0} <= _thermal_highs("a3-class-hall-2", config)


def test_thermal_class_follows_each_rooms_rule_file(tmp_path: Path) -> None:
    """A room on ASHRAE A3 (site rule file scoped to it) gets A3 colours, the others A1."""
    rules = tmp_path / "hall2-a3.yaml"
    pack = yaml.safe_load((ROOT / "dcim/alerts/rules/thermal-ashrae.yaml").read_text())
    inlet = next(r for r in pack["rules"] if r["id"] == "ashrae.inlet_temp")
    inlet |= {
        "id": "ashrae.inlet_temp.hall-2",
        "scope": {"room": "hall-2", **inlet["scope"]},
        "levels": inlet["levels_by_class"]["A3"],
        "levels_by_class": {},
    }
    rules.write_text(yaml.safe_dump({"rules": [inlet]}))
    data = yaml.safe_load(DEMO_HALL.read_text())
    data["alerts"] = {"rule_files": [str(rules)]}
    config = parse_config(yaml.safe_dump(data), f"{DEMO_HALL} + {rules}")
    # A1 allowable maximum in hall 1, A3 in hall 2
    assert {32.0, 40.0} <= _thermal_highs("a3-hall-2", config)


@pytest.mark.parametrize(("inventory", "site", "view", "doc"), DOCS, ids=IDS)
def test_variables_refresh_on_load_and_scope_is_multi_select(
    inventory: str, site: str, view: str, doc: dict[str, Any]
) -> None:
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    for var in variables.values():
        if var["type"] == "query":
            # SHOW TAG VALUES has no time bound: re-running it on every time change is waste
            assert var["refresh"] == 1, var["name"]
    if view != "device":
        assert variables["room"]["multi"] is True
        assert variables["row"]["multi"] is True
    # Flux and SQL InfluxDB datasources would break every InfluxQL query: only InfluxQL ones
    assert variables["datasource"]["regex"]


def test_datasource_interval_is_the_poll_interval_and_name_fits_the_variable() -> None:
    config = INVENTORIES["example"]
    doc = yaml.safe_load(datasources_yaml(config))
    shortest = min(p.device.poll_interval_s for p in iter_devices(config))
    variable = next(d for _, _, v, d in DOCS if v == "noc")["templating"]["list"][0]
    pattern = variable["regex"].strip("/")
    for source in doc["datasources"]:
        assert source["jsonData"]["timeInterval"] == f"{shortest:g}s"
        assert re.search(pattern, source["name"]), (pattern, source["name"])


def test_pue_only_where_facility_and_it_meters_exist() -> None:
    def titles(inventory: str) -> set[str]:
        return {
            p["title"]
            for name, _, view, doc in DOCS
            if name == inventory and view == "noc"
            for p in panels(doc)
        }

    assert "PUE" not in titles("example")  # its meter has no scope: PUE would say No data
    assert "PUE" in titles("demo-hall")  # a two-channel meter: facility and IT


@pytest.mark.parametrize(("inventory", "site", "view", "doc"), DOCS, ids=IDS)
def test_table_columns_have_a_fixed_order(
    inventory: str, site: str, view: str, doc: dict[str, Any]
) -> None:
    """Grafana puts a table query's tag columns in Go map order, new on every refresh:
    a table grouped by tags needs an `organize` transformation fixing every column's
    place, and `GROUP BY *` (columns unknown until the data comes) has no fixed order."""
    for panel in panels(doc):
        if panel["type"] != "table":
            continue
        order: dict[str, int] = {}
        for t in panel.get("transformations", []):
            if t["id"] == "organize":
                order = t["options"].get("indexByName", {})
        for target in panel["targets"]:
            query = target["query"]
            outer = (
                query.rsplit("GROUP BY ", 1)[1].split(" fill(")[0] if "GROUP BY" in query else ""
            )
            tags = [g.strip().strip('"') for g in outer.split(",") if g.strip()]
            assert "*" not in tags, (panel["title"], target["query"])
            tags = [t for t in tags if not t.startswith("time(")]
            assert set(tags) <= set(order), (panel["title"], tags, order)


def test_the_table_merge_rejects_series_of_other_shapes() -> None:
    good: list[dict[str, Any]] = [
        {"name": "a", "tags": {"d": "1"}, "columns": ["time", "v"], "values": [[1, 2]]},
        {"name": "a", "tags": {"d": "2"}, "columns": ["time", "v"], "values": [[1, 3]]},
    ]
    assert merge_table(good) == (["time", "d", "v"], [[1, "1", 2], [1, "2", 3]])
    bad = [*good, {"name": "b", "tags": {"d": "3"}, "columns": ["time", "w", "x"], "values": []}]
    with pytest.raises(TableShapeError):
        merge_table(bad)
