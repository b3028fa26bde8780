"""Generated dashboards: Grafana's model, unique ids, defined variables, determinism, export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dcim.cli import main
from dcim.cli.demo.hall import demo_inventory
from dcim.grafana.build import Generated, build_dashboards
from dcim.grafana.layout import load_inventory
from dcim.grafana.model import GENERATED_MARKER, render_json
from dcim.grafana.site import MAX_UID, Site
from dcim.inventory import Config, iter_devices
from tests.support.grafana.expand import ALIAS_PREFIXES, BUILTINS, strings, used_variables
from tests.support.grafana.model_check import problems
from tests.support.grafana.site import hall_config

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "dcim" / "examples" / "site.yaml"
COMMITTED = ROOT / "dashboards"


def all_inventories() -> dict[str, Config]:
    return {
        "hall": hall_config(),
        "demo": demo_inventory(),
        "example": load_inventory(EXAMPLE),
    }


GENERATED = [
    (name, g) for name, config in all_inventories().items() for g in build_dashboards(config)
]
IDS = [f"{name}:{g.path}" for name, g in GENERATED]


@pytest.mark.parametrize(("inventory", "item"), GENERATED, ids=IDS)
def test_dashboard_fits_grafanas_model(inventory: str, item: Generated) -> None:
    assert problems(item.to_json()) == []


def test_the_model_check_catches_unknown_keys_and_wrong_types() -> None:
    doc = build_dashboards(hall_config())[0].to_json()
    doc["panels"][1]["gridPos"]["h"] = "8"
    doc["panels"][1]["colour"] = "red"
    doc["templating"]["list"][1]["type"] = "tagvalues"
    found = problems(doc)
    assert any(".panels[1].colour: not in Grafana's model" in p for p in found)
    assert any("grid_pos.h: '8' is not int" in p for p in found)
    assert any("'tagvalues' not one of" in p for p in found)


@pytest.mark.parametrize(("inventory", "item"), GENERATED, ids=IDS)
def test_panel_ids_unique_and_variables_defined(inventory: str, item: Generated) -> None:
    doc = item.to_json()
    ids = [panel["id"] for panel in doc["panels"]]
    assert len(ids) == len(set(ids))
    defined = {var["name"] for var in doc["templating"]["list"]}
    undefined = {
        f"{path}: ${name}"
        for path, text in strings(doc)
        for name in used_variables(text)
        if name not in defined
        and name not in BUILTINS
        and not (path.endswith(".alias") and name.startswith(ALIAS_PREFIXES))
    }
    assert undefined == set()
    # every panel's datasource is the variable, so one set works on any InfluxDB
    assert {json.dumps(p["datasource"]) for p in doc["panels"] if "targets" in p} == {
        '{"type": "influxdb", "uid": "${datasource}"}'
    }


def test_uids_unique_across_everything_and_short_enough() -> None:
    # the hall and the demo inventory share site `demo` on purpose: compare within one
    uids = [g.dashboard.uid for name, g in GENERATED if name != "demo"]
    assert len(uids) == len(set(uids))
    assert all(len(uid) <= MAX_UID for _, g in GENERATED for uid in [g.dashboard.uid])
    long = Site("x" * 60, "", ())
    assert len(long.uid("environment")) == MAX_UID
    assert long.uid("environment") != Site("x" * 59 + "y", "", ()).uid("environment")


def test_variables_are_chained_influxql_tag_queries() -> None:
    doc = build_dashboards(hall_config())[0].to_json()
    by_name = {var["name"]: var for var in doc["templating"]["list"]}
    assert by_name["datasource"]["type"] == "datasource"
    assert by_name["datasource"]["query"] == "influxdb"
    assert by_name["site"]["current"]["value"] == "demo"
    assert by_name["rack"]["query"] == (
        'SHOW TAG VALUES WITH KEY = "rack" WHERE "site" =~ /^$site$/ '
        'AND "room" =~ /^$room$/ AND "row" =~ /^$row$/'
    )
    assert by_name["device"]["allValue"] == ".*"


def test_views_follow_the_inventory() -> None:
    hall = {g.view for g in build_dashboards(hall_config())}
    assert hall == {"noc", "power", "thermal", "environment", "device"}
    ups_only = build_dashboards(hall_config(kinds={"ups"}))
    assert {g.view for g in ups_only} == {"noc", "power", "device"}
    power = next(g for g in ups_only if g.view == "power").to_json()
    titles = [p["title"] for p in power["panels"]]
    assert "UPS load" in titles
    assert "PDU power per feed" not in titles  # no PDU there
    demo = {g.view for g in build_dashboards(demo_inventory())}  # UPS, CRAC, meter, sensors
    assert demo == {"noc", "power", "thermal", "environment", "device"}


def test_units_and_thresholds_come_from_the_vocabulary_and_ashrae() -> None:
    thermal = next(g for g in build_dashboards(hall_config()) if g.view == "thermal").to_json()
    heat = next(p for p in thermal["panels"] if p["type"] == "status-history")
    assert heat["fieldConfig"]["defaults"]["unit"] == "celsius"
    steps = [
        (s["color"], s["value"]) for s in heat["fieldConfig"]["defaults"]["thresholds"]["steps"]
    ]
    # ASHRAE A1 as the default pack says it: critical outside 15-32, warning outside 18-27
    assert steps == [("red", None), ("orange", 15), ("green", 18), ("orange", 27), ("red", 32)]
    assert "\"position\" = 'inlet'" in heat["targets"][0]["query"]
    assert 'GROUP BY time($__interval), "row", "rack"' in heat["targets"][0]["query"]


def test_alert_events_are_annotations_on_every_dashboard() -> None:
    for _, item in GENERATED:
        names = [a["name"] for a in item.to_json()["annotations"]["list"]]
        assert {"Critical alerts", "Alerts"} & set(names)
        assert "Device events" in names


def test_output_is_deterministic_and_marked_generated() -> None:
    first = [render_json(g.to_json()) for g in build_dashboards(hall_config())]
    second = [render_json(g.to_json()) for g in build_dashboards(hall_config())]
    assert first == second
    assert all(GENERATED_MARKER in text for text in first)
    assert all(text.endswith("}\n") for text in first)


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text(encoding="utf-8")
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "README.md"
    }


def test_committed_dashboards_are_what_the_example_inventory_generates(tmp_path: Path) -> None:
    """`make dashboards` output is committed; this fails when it was not re-run."""
    assert main(["grafana", "export", str(tmp_path), "--config", str(EXAMPLE)]) == 0
    assert _tree(COMMITTED) == _tree(tmp_path)


def test_export_cli_writes_reports_and_prunes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["grafana", "export", str(tmp_path)]) == 0  # the demo inventory
    first = capsys.readouterr().out
    assert "new       " in first
    files = _tree(tmp_path)
    assert set(files) == {
        "dashboards/demo/noc.json",
        "dashboards/demo/power.json",
        "dashboards/demo/thermal.json",
        "dashboards/demo/environment.json",
        "dashboards/demo/device.json",
        "provisioning/dashboards/dcim.yaml",
        "provisioning/datasources/dcim.yaml",
    }
    assert (
        "path: /var/lib/grafana/dashboards/dcim/demo" in files["provisioning/dashboards/dcim.yaml"]
    )
    assert "type: influxdb" in files["provisioning/datasources/dcim.yaml"]

    stale = tmp_path / "dashboards" / "gone" / "noc.json"
    stale.parent.mkdir()
    stale.write_text(files["dashboards/demo/noc.json"])
    mine = tmp_path / "dashboards" / "demo" / "hand-made.json"
    mine.write_text("{}")
    assert main(["grafana", "export", str(tmp_path)]) == 0
    second = capsys.readouterr().out
    statuses = [line.split()[0] for line in second.splitlines()[:-1]]
    assert sorted(set(statuses)) == ["removed", "unchanged"]
    assert f"removed   {stale}" in second
    assert not stale.exists()
    assert mine.exists()  # not generated by us: left alone


def test_export_without_secrets_on_this_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (
        "DCIM_SNMP_COMMUNITY",
        "DCIM_SNMPV3_AUTH",
        "DCIM_SNMPV3_PRIV",
        "DCIM_INFLUX_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)
    config = load_inventory(EXAMPLE)
    devices = [p.device.id for p in build_dashboards(config)[0].site.devices]
    assert devices == [p.device.id for p in iter_devices(config)]
    assert "ups-a01" in devices  # the SNMPv3 UPS whose keys are secrets
    datasources = (COMMITTED / "provisioning" / "datasources" / "dcim.yaml").read_text()
    assert "${DCIM_INFLUX_PASSWORD}" in datasources  # a reference for Grafana, not a value


def test_export_reports_a_broken_inventory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "sites:\n  - id: s1\n    rooms:\n      - id: r1\n        devices:\n          - id: d1\n            kind: toaster\n"
    )
    assert main(["grafana", "export", str(tmp_path / "out"), "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "kind" in err
    assert "line 7" in err


def _first_panel(doc: dict[str, Any], title: str) -> dict[str, Any]:
    return next(p for p in doc["panels"] if p.get("title") == title)


def test_enum_states_are_mapped_to_text_and_colour() -> None:
    power = next(g for g in build_dashboards(hall_config()) if g.view == "power").to_json()
    source = _first_panel(power, "UPS output source")
    options = source["fieldConfig"]["defaults"]["mappings"][0]["options"]
    assert options["battery"]["text"] == "ON BATTERY"
    assert options["battery"]["color"] == "red"  # critical in rule ups.output_source
    assert options["bypass"]["color"] == "orange"  # warning
    assert options["normal"]["color"] == "green"
    noc = next(g for g in build_dashboards(hall_config()) if g.view == "noc").to_json()
    on_battery = _first_panel(noc, "UPS on battery")
    assert on_battery["options"]["reduceOptions"]["fields"] == "/^matching$/"
    null = on_battery["fieldConfig"]["defaults"]["mappings"][-1]
    assert null["type"] == "special"
    assert null["options"] == {
        "match": "null",
        "result": {"color": "green", "index": 0, "text": "0"},
    }
