"""Every panel's query, variables expanded for a real site, against a real influxd.

InfluxDB is filled the way production fills it, by the monitor
(`dcim.runner.Monitor`) polling simulators and writing through its InfluxDB
sink, with its alert engine (`alerts:`) and trap receiver (`traps:`) on:

- the demo inventory (`dcim demo`: the hall of `simulators/sites/demo-site.yaml`, its
  scenarios playing), site `demo`;
- the small hall site `simulators/sites/small-site.yaml` served by
  `simulators.site.Site` over SNMP, Modbus and MQTT (a real Mosquitto) while
  the utility-outage scenario plays at high speed and the site sends traps
  (`grafana_hall_run`), site `lab`.

Then `dcim grafana export` writes each site's dashboards and every panel query
must return data. The only exceptions are the panels in PENDING, and only
while the profile they wait for is missing.
"""

from __future__ import annotations

import sys
from pathlib import Path

# helper modules (grafana_*.py) sit beside this file; the broker helper beside the MQTT tests
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "collectors" / "mqtt"))

import asyncio
import json
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from grafana_expand import expand, selection
from grafana_hall_run import (
    TRAP_DEVICE,
    HallRun,
    polled_devices,
    run_hall,
    ups_devices,
    write_site,
)
from grafana_site import hall_config
from mosquitto_server import Mosquitto, binary_or_skip
from servers import InfluxDB1, eventually, http, wait_until

from dcim.cli import main
from dcim.grafana.build import Generated, build_dashboards
from dcim.grafana.influxql import measurements_in
from dcim.grafana.layout import demo_inventory
from dcim.inventory import iter_devices
from dcim.runner import Monitor
from dcim.vocabulary import load_vocabulary
from simulators.clock import SimClock
from simulators.snmp_agent import serve
from simulators.ups import UpsModel
from simulators.ups_mib import UpsDevice

pytestmark = pytest.mark.slow

#: Hall panels ("view: title") that may stay empty while the metric they need is absent
#: from the run's data, and why. An entry is excused only while InfluxDB has no such
#: field after the run, so it expires by itself when a profile starts mapping the metric.
#: Empty: the PDU profiles map the breaker and inlet ratings and the site has a point
#: smoke detector, so every hall panel is proven on simulator data.
PENDING: dict[str, tuple[str, str]] = {}
SITE = "demo"
HALL_SITE = "lab"
UPS_COMMUNITIES = ("ups1", "ups2", "ups3", "ups4")
#: Written by the tests on hand-written points; proven on simulator data by the hall test.
HAND_WRITTEN = {"pdu", "crac", "sensor", "meter", "alert", "event"}


@dataclass(frozen=True)
class Filled:
    server: InfluxDB1
    db: str


async def _fill(server: InfluxDB1, db: str, state_dir: Path) -> None:
    clock = SimClock()
    upses = [
        UpsDevice(name, UpsModel(rated_va=10000.0, rated_w=9000.0, seed=n), clock)
        for n, name in enumerate(UPS_COMMUNITIES, start=1)
    ]
    upses[1].set_utility(False)  # one UPS on battery: enum states vary, an alert fires
    agent = await serve(upses, "127.0.0.1", 0)
    sink = {
        "type": "influxdb",
        "url": server.url,
        "api": "v1",
        "database": db,
        "flush_interval_s": 0.2,
    }
    config = hall_config(
        agent.port,
        kinds={"ups"},
        sinks=[sink],
        monitor={"self_metrics_interval_s": 1, "state_dir": str(state_dir)},
        alerts={"startup_grace_s": 1.0, "tick_s": 0.2},
    )
    monitor = Monitor(config)
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))

    async def enough() -> bool:
        ups = await asyncio.to_thread(
            server.query, 'SELECT count("load_pct") FROM "ups" GROUP BY "device"', db
        )
        up = await asyncio.to_thread(server.query, 'SELECT count("up") FROM "dcim_self"', db)
        fired = await asyncio.to_thread(
            server.query,
            """SELECT "event", "device" FROM "alert" WHERE "rule" = 'ups.output_source' AND "event" = 'firing'""",
            db,
        )
        return (
            len(ups) == len(UPS_COMMUNITIES)
            and all(r["count"] >= 2 for r in ups)
            and bool(up)
            and [r["device"] for r in fired] == ["ups-2"]
        )

    try:
        await eventually(enough, 30, "UPS readings, health and the on-battery alert in InfluxDB")
    finally:
        stop.set()
        await task
        agent.close()


@pytest.fixture(scope="module")
def filled(influxdb1: InfluxDB1, tmp_path_factory: pytest.TempPathFactory) -> Filled:
    db = "grafana_panels"
    influxdb1.create_database(db)
    asyncio.run(_fill(influxdb1, db, tmp_path_factory.mktemp("demo-state")))
    return Filled(influxdb1, db)


@dataclass(frozen=True)
class Hall:
    """InfluxDB after the hall run, and the dashboards `dcim grafana export` wrote for it."""

    influx: Filled
    run: HallRun
    dashboards: dict[str, dict[str, Any]]


def _exported(directory: Path) -> dict[str, dict[str, Any]]:
    directory.mkdir()
    site_file = write_site(directory / "site.yaml")
    assert main(["grafana", "export", str(directory), "--config", str(site_file)]) == 0
    folder = directory / "dashboards" / HALL_SITE
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


@pytest.fixture(scope="module")
def hall(influxdb1: InfluxDB1, tmp_path_factory: pytest.TempPathFactory) -> Hall:
    workdir = tmp_path_factory.mktemp("hall")
    broker = Mosquitto(binary_or_skip("mosquitto", "/usr/sbin/mosquitto"), workdir)
    db = "grafana_hall"
    influxdb1.create_database(db)
    sink = {
        "type": "influxdb",
        "url": influxdb1.url,
        "api": "v1",
        "database": db,
        "flush_interval_s": 0.2,
    }

    def query(q: str) -> list[dict[str, Any]]:
        return influxdb1.query(q, db)

    async def on_battery() -> dict[str, set[str]]:
        """UPS id -> the events of its on-battery incident so far."""
        rows = await asyncio.to_thread(
            query, """SELECT "event", "device" FROM "alert" WHERE "rule" = 'ups.output_source'"""
        )
        events: dict[str, set[str]] = {}
        for r in rows:
            events.setdefault(r["device"], set()).add(r["event"])
        seen["on battery"] = events
        return events

    async def outage_seen() -> bool:
        """Every UPS's on-battery alert fired: only then may the outage end."""
        events = await on_battery()
        return all("firing" in events.get(ups, set()) for ups in ups_ids)

    async def done() -> bool:
        """The outage came and went (alerts resolved, restore trap in), every device polled."""
        events = await on_battery()
        traps = await asyncio.to_thread(query, 'SELECT "trap"::field FROM "event"')
        counts = await asyncio.to_thread(
            query, 'SELECT count(*) FROM "ups", "pdu", "crac", "sensor", "meter" GROUP BY "device"'
        )
        # two readings of some field: a time series has a line, a state timeline a band
        polled = {
            r["device"]
            for r in counts
            if max(v or 0 for k, v in r.items() if k.startswith("count_")) >= 2
        }
        seen.update(traps={r["trap"] for r in traps}, unpolled=expected - polled)
        # each UPS's own incident fired and resolved: the device dashboard shows one UPS
        return (
            all(events.get(ups, set()) >= {"firing", "resolved"} for ups in ups_ids)
            and seen["traps"] >= {"on_battery", "alarm_removed"}
            and polled >= expected
        )

    expected = polled_devices()
    ups_ids = ups_devices()
    seen: dict[str, Any] = {}
    broker.start()
    try:
        run = asyncio.run(
            run_hall(broker.url, sink, workdir / "state", done, 60, outage_seen=outage_seen)
        )
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; last seen: {seen}") from None
    finally:
        broker.stop()
    return Hall(Filled(influxdb1, db), run, _exported(workdir / "export"))


def run(filled: Filled, query: str) -> list[dict[str, Any]]:
    """Series of one InfluxQL statement; an error from InfluxDB fails the test with the query."""
    params = urllib.parse.urlencode({"q": query, "db": filled.db, "epoch": "ms"})
    status, body = http("POST", f"{filled.server.url}/query?{params}")
    doc = json.loads(body)
    result = doc.get("results", [{}])[0]
    if status != 200 or "error" in doc or "error" in result:
        pytest.fail(f"InfluxDB rejected {query!r}: HTTP {status}: {body[:400]!r}")
    series: list[dict[str, Any]] = result.get("series", [])
    return series


def has_values(series: list[dict[str, Any]]) -> bool:
    """At least one non-null value outside the time column."""
    for one in series:
        columns = one["columns"]
        for row in one["values"]:
            if any(v is not None for c, v in zip(columns, row, strict=True) if c != "time"):
                return True
    return False


def panels(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from (p for p in doc["panels"] if p["type"] != "row")


def empty_panels(
    filled: Filled, dashboards: dict[str, dict[str, Any]], chosen: dict[str, str]
) -> list[str]:
    """`view: title` of every panel whose queries all come back without a value."""
    empty = []
    for view, doc in dashboards.items():
        values = selection(doc, chosen)
        for panel in panels(doc):
            queries = [expand(t["query"], values) for t in panel["targets"]]
            if not any(has_values(run(filled, q)) for q in queries):
                empty.append(f"{view}: {panel['title']}")
    return empty


def by_view(generated: list[Generated]) -> dict[str, dict[str, Any]]:
    return {g.view: g.to_json() for g in generated}


@pytest.fixture(scope="module")
def demo(influxdb1: InfluxDB1, tmp_path_factory: pytest.TempPathFactory) -> Filled:
    """`dcim demo` itself (its simulators, its embedded broker, its monitor) into influxd."""
    db = "grafana_demo"
    influxdb1.create_database(db)
    workdir = tmp_path_factory.mktemp("demo")
    devices = {p.device.id for p in iter_devices(demo_inventory())}
    # 1 s: the demo also uses its interval for self-metrics, which take no less
    args = ["--influx-url", influxdb1.url, "--database", db, "--interval", "1"]
    args += ["--output", str(workdir / "demo.lp"), "--state-dir", str(workdir / "state")]
    args += ["--view", "terminal"]  # no board port to find: the dashboards are the point here
    with (workdir / "demo.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dcim", "demo", *args], stdout=log, stderr=subprocess.STDOUT
        )
        try:

            def polled() -> bool:
                if proc.poll() is not None:
                    log_text = (workdir / "demo.log").read_text(errors="replace")[-2000:]
                    pytest.fail(f"dcim demo exited with {proc.returncode}:\n{log_text}")
                rows = influxdb1.query(
                    'SELECT count(*) FROM "ups", "pdu", "crac", "sensor", "meter" GROUP BY "device"',
                    db,
                )
                seen = {
                    r["device"]
                    for r in rows
                    if max(v or 0 for k, v in r.items() if k.startswith("count_")) >= 2
                }
                return seen >= devices

            wait_until(polled, 60, "readings of every demo device in InfluxDB", interval=0.2)
        finally:
            proc.send_signal(signal.SIGTERM)  # the demo flushes its sinks and exits
            code = proc.wait(timeout=30)
    assert code == 0, (workdir / "demo.log").read_text()[-2000:]
    return Filled(influxdb1, db)


def test_every_demo_dashboard_panel_returns_data(demo: Filled) -> None:
    """The issue's bar: `dcim grafana export` on the demo inventory, every panel has data.

    The demo plays no incident: an alert may or may not have fired by the time
    every device has data, so only the active-alerts table may be empty.
    """
    dashboards = by_view(build_dashboards(demo_inventory()))
    assert set(dashboards) == {"noc", "power", "thermal", "environment", "device"}
    empty = empty_panels(demo, dashboards, {})
    alerts = demo.server.query('SELECT count("event") FROM "alert"', demo.db)
    assert empty == ([] if alerts else ["noc: Active alerts"])


def test_every_hall_panel_returns_data_after_a_simulator_run(hall: Hall) -> None:
    """small-site.yaml exported, its site simulated and polled: every panel has data.

    Except, while their profile is missing, the panels PENDING names; the list must
    be exact, so a panel that empties for another reason fails here.
    """
    assert set(hall.dashboards) == {"noc", "power", "thermal", "environment", "device"}
    waiting = sorted(
        panel for panel, (metric, _) in PENDING.items() if not stored_field(hall, metric)
    )
    empty = empty_panels(hall.influx, hall.dashboards, {})
    assert sorted(empty) == waiting, f"panels without data: {empty}; unpolled: {hall.run.unpolled}"
    titles = {f"{view}: {p['title']}" for view, doc in hall.dashboards.items() for p in panels(doc)}
    assert set(PENDING) <= titles  # no entry names a panel that does not exist


def stored_field(hall: Hall, metric: str) -> bool:
    """Whether the run wrote any value of a vocabulary metric."""
    spec = load_vocabulary().get(metric)
    keys = hall.influx.server.query(f'SHOW FIELD KEYS FROM "{spec.measurement}"', hall.influx.db)
    return spec.field in {k["fieldKey"] for k in keys}


def test_hall_run_polled_every_protocol_and_played_the_outage(hall: Hall) -> None:
    # SNMP, Modbus and MQTT devices all wrote readings
    rows = hall.influx.server.query(
        'SELECT count("up") FROM "dcim_self" WHERE "up" = true GROUP BY "device"', hall.influx.db
    )
    reachable = {r["device"] for r in rows}
    assert {"ups-a", "pdu-hall-1-A01-a", "meter-1", "crac-hall-1-2", "env-hall-1-B01"} <= reachable
    assert hall.run.traps_sent >= 2  # on battery, then power back
    # what was left out is exactly what has no profile yet, and said why
    assert all("unknown SNMP profile" in why for why in hall.run.unpolled.values())


def test_hall_annotations_show_alert_transitions_and_traps(hall: Hall) -> None:
    for view, doc in hall.dashboards.items():
        values = selection(doc, {})
        found = {}
        for annotation in doc["annotations"]["list"]:
            if "query" not in annotation:
                continue
            series = run(hall.influx, expand(annotation["query"], values))
            columns = series[0]["columns"] if series else []
            found[annotation["name"]] = [
                dict(zip(columns, row, strict=True)) for s in series for row in s["values"]
            ]
            # the columns Grafana is told to read exist in the result
            for key in ("textColumn", "titleColumn"):
                if annotation[key]:
                    assert annotation[key] in columns, (view, annotation["name"], key)
            for tag in filter(None, annotation["tagsColumn"].split(",")):
                assert tag in columns, (view, annotation["name"], tag)
        alerts = found["Alert events"]
        on_battery = {(r["device"], r["event"]) for r in alerts if r["rule"] == "ups.output_source"}
        # a UPS went to battery and came back; the device view shows only its first UPS
        # (ups-a), which is why the run waits for every UPS's own incident
        assert {"firing", "resolved"} <= {event for _, event in on_battery}, _diagnose(
            hall, view, values, found
        )
        assert {device for device, _ in on_battery} <= {"ups-a", "ups-b"}
        traps = [(r["device"], r["trap"]) for r in found["Device events"]]
        assert (TRAP_DEVICE, "on_battery") in traps, view


def _diagnose(
    hall: Hall, view: str, values: dict[str, str], found: dict[str, list[dict[str, Any]]]
) -> str:
    """What a failed annotation check needs next time: its rows, and what influxd holds."""
    everything = hall.influx.server.query(
        'SELECT "event", "rule", "scope", "device", "site", "room", "row", "rack" FROM "alert"',
        hall.influx.db,
    )
    polls = hall.influx.server.query(
        'SELECT "output_source" FROM "ups" GROUP BY "device"', hall.influx.db
    )
    health = hall.influx.server.query(
        """SELECT "up", "poll_duration_s" FROM "dcim_self" WHERE "device" =~ /^ups/ GROUP BY "device" """,
        hall.influx.db,
    )
    return (
        f"view {view}, variables {values}, wall time {time.time():.3f}\n"
        f"UPS output source polls: {json.dumps(polls)}\n"
        f"UPS poll health: {json.dumps(health)}\n"
        f"annotation rows: {json.dumps(found, indent=1)}\n"
        f"every alert point: {json.dumps(everything, indent=1)}"
    )


def test_alert_points_have_the_schema_the_dashboards_read(hall: Hall) -> None:
    """What dcim/alerts/events.py writes, as InfluxDB holds it after the run."""
    db, server = hall.influx.db, hall.influx.server
    fields = {
        r["fieldKey"]: r["fieldType"] for r in server.query('SHOW FIELD KEYS FROM "alert"', db)
    }
    assert fields == {"event": "string"}
    tags = {r["tagKey"] for r in server.query('SHOW TAG KEYS FROM "alert"', db)}
    assert {"rule", "scope", "severity", "state", "incident", "site", "device"} <= tags
    events = {r["event"] for r in server.query('SELECT "event" FROM "alert"', db)}
    assert events <= set(load_vocabulary().get("alert.event").values or ())
    noc = hall.dashboards["noc"]
    table = next(p for p in panels(noc) if p["title"] == "Active alerts")
    series = run(hall.influx, expand(table["targets"][0]["query"], selection(noc, {})))
    rows = [
        {**s["tags"], **dict(zip(s["columns"], row, strict=True))}
        for s in series
        for row in s["values"]
    ]
    assert {"incident", "rule", "scope", "event", "severity", "device"} <= set(rows[0])
    ups = {r["device"]: r["event"] for r in rows if r["rule"] == "ups.output_source"}
    # utility came back: the on-battery incidents' last transition is `resolved`,
    # which the panel's filter hides
    assert set(ups.values()) == {"resolved"}, ups
    hidden = {
        f["config"]["options"]["value"] for f in table["transformations"][0]["options"]["filters"]
    }
    assert hidden == {"pending", "resolved", "cancelled"}
    assert table["transformations"][0]["options"]["type"] == "exclude"


def test_hall_variables_list_the_polled_inventory(hall: Hall) -> None:
    doc = hall.dashboards["power"]
    values = selection(doc, {})
    found = {}
    for var in doc["templating"]["list"]:
        if var["type"] == "query":
            series = run(hall.influx, expand(var["query"], values))
            found[var["name"]] = {row[1] for s in series for row in s["values"]}
    assert found["site"] == {HALL_SITE}
    assert found["room"] == {"hall-1"}
    assert found["row"] == {"hall-1-r1", "hall-1-r2"}
    assert found["rack"] == {"hall-1-A01", "hall-1-A02", "hall-1-B01", "hall-1-B02"}
    assert {"ups-a", "ups-b", "meter-1", "crac-hall-1-2", "leak-hall-1-B02"} <= found["device"]


def test_hall_pue_is_facility_over_it_power(hall: Hall) -> None:
    """Each interval's PUE is that interval's facility power over its IT power."""
    noc = hall.dashboards["noc"]
    pue = next(p for p in panels(noc) if p["title"] == "PUE")
    values = selection(noc, {})
    series = run(hall.influx, expand(pue["targets"][0]["query"], values))
    got = {t: v for s in series for t, v in s["values"] if v is not None}
    sides = {}
    for scope in ("facility", "it"):
        q = f"""SELECT mean("power_w") FROM "meter" WHERE $timeFilter AND "scope" = '{scope}' GROUP BY time($__interval) fill(none)"""  # noqa: S608 - a fixed scope name
        sides[scope] = {t: v for s in run(hall.influx, expand(q, values)) for t, v in s["values"]}
    expected = {
        t: sides["facility"][t] / sides["it"][t] for t in sides["it"] if t in sides["facility"]
    }
    assert got
    assert got.keys() == expected.keys()
    assert all(abs(got[t] - expected[t]) < 1e-9 for t in got), (got, expected)


def test_hall_rating_panels_divide_by_the_polled_ratings(hall: Hall) -> None:
    """Branch load is each branch's current over its breaker rating (20 A in the site file)."""
    db, server = hall.influx.db, hall.influx.server
    ratings = server.query('SELECT "branch_rating_a", "rated_current_a" FROM "pdu"', db)
    assert {r["branch_rating_a"] for r in ratings if r["branch_rating_a"] is not None} == {20.0}
    assert {r["rated_current_a"] for r in ratings if r["rated_current_a"] is not None} == {32.0}
    power = hall.dashboards["power"]
    values = selection(power, {})
    branch = next(p for p in panels(power) if p["title"] == "Branch load vs breaker rating")
    got = {
        (s["tags"]["device"], s["tags"]["branch"], t): v
        for s in run(hall.influx, expand(branch["targets"][0]["query"], values))
        for t, v in s["values"]
        if v is not None
    }
    q = """SELECT mean("branch_current_a") FROM "pdu" WHERE $timeFilter GROUP BY time($__interval), "device", "branch" fill(none)"""
    amps = {
        (s["tags"]["device"], s["tags"]["branch"], t): v
        for s in run(hall.influx, expand(q, values))
        for t, v in s["values"]
    }
    assert got
    assert got.keys() <= amps.keys()
    assert all(abs(v - 100 * amps[k] / 20.0) < 1e-9 for k, v in got.items()), got
    noc = hall.dashboards["noc"]
    smoke = next(p for p in panels(noc) if p["title"] == "Smoke detectors")
    series = run(hall.influx, expand(smoke["targets"][0]["query"], selection(noc, {})))
    latest = {s["tags"]["device"]: v for s in series for _, v in s["values"] if v is not None}
    assert latest == {"smoke-hall-1-A02": False}  # the point detector; no smoke in this run


def test_scope_variables_select_what_they_say(filled: Filled) -> None:
    power = next(g for g in build_dashboards(hall_config()) if g.view == "power")
    load = next(p for p in panels(power.to_json()) if p["title"] == "UPS load")
    query = load["targets"][0]["query"]
    everything = run(filled, expand(query, selection(power.to_json(), {})))
    assert {s["tags"]["device"] for s in everything} == {"ups-1", "ups-2", "ups-3", "ups-r01"}
    one_rack = run(filled, expand(query, selection(power.to_json(), {"rack": "r01"})))
    assert {s["tags"]["device"] for s in one_rack} == {"ups-r01"}
    other_site = run(filled, expand(query, selection(power.to_json(), {"site": "elsewhere"})))
    assert other_site == []


def test_device_detail_shows_the_selected_device(filled: Filled) -> None:
    device = next(g for g in build_dashboards(hall_config()) if g.view == "device")
    doc = device.to_json()
    table = next(p for p in panels(device.to_json()) if p["title"] == "Latest values")
    rows = run(filled, expand(table["targets"][0]["query"], selection(doc, {"device": "ups-2"})))
    assert {s["tags"]["device"] for s in rows} == {"ups-2"}
    latest = {
        c: v
        for s in rows
        for c, v in zip(s["columns"], s["values"][0], strict=True)
        if v is not None
    }
    assert latest["last_output_source"] == "battery"  # the UPS the test runs on battery


def test_variable_queries_list_the_inventory(filled: Filled) -> None:
    doc = build_dashboards(hall_config())[0].to_json()
    values = selection(doc, {})
    found = {}
    for var in doc["templating"]["list"]:
        if var["type"] != "query":
            continue
        series = run(filled, expand(var["query"], values))
        found[var["name"]] = {row[1] for s in series for row in s["values"]}
    assert SITE in found["site"]
    assert found["room"] == {"hall-1"}
    assert found["row"] == {"row-1"}
    assert found["rack"] == {"r01"}
    assert {"ups-1", "ups-2", "ups-3", "ups-r01"} <= found["device"]


def _hand_written_points(now_s: int) -> str:
    """Points shaped like the monitor writes them (vocabulary fields, inventory tags).

    Not a stand-in for the simulators (the hall test runs them): known values
    prove the queries (subqueries, ratios, regex sources) compute the right thing.
    """
    base = "site=demo,room=hall-1"
    lines = []
    for t in range(now_s - 60, now_s, 10):
        ts = f" {t}000000000"
        for rack in ("r01", "r02"):
            for feed, amps in (("A", 8.0), ("B", 6.0)):
                tags = f"{base},row=row-1,rack={rack},device=pdu-{rack}-{feed.lower()},feed={feed}"
                lines.append(f"pdu,{tags} power_w=1000,rated_current_a=16,branch_tripped=false{ts}")
                lines.append(
                    f'pdu,{tags},phase=L1 phase_current_a={amps},phase_load_state="normal"{ts}'
                )
                lines.append(f"pdu,{tags},branch=1 branch_current_a=4,branch_rating_a=16{ts}")
            sensor = f"{base},row=row-1,rack={rack},device=temp-{rack}"
            lines.append(f"sensor,{sensor},position=inlet temp_c=24.5{ts}")
            lines.append(f"sensor,{sensor} humidity_pct=45,dew_point_c=11.8{ts}")
        crac = f"crac,{base},device=crac-1"
        lines.append(
            f'{crac} supply_air_temp_c=18,return_air_temp_c=30,fan_speed_pct=60,cooling_demand_pct=50,operating_mode="cooling"{ts}'
        )
        vesda = f"sensor,{base},device=vesda-1"
        lines.append(
            f'{vesda} smoke_level="normal",smoke_obscuration_pct_m=0.01,smoke_detected=false,leak_detected=false,door_open=false{ts}'
        )
        lines.append(f"meter,{base},device=meter-facility,scope=facility power_w=150000{ts}")
        lines.append(f"meter,{base},device=meter-it,scope=it power_w=100000{ts}")
        lines.append(
            f'alert,{base},device=crac-1,incident=i1,rule=crac.fault,scope=device\\=crac-1,severity=critical,state=firing event="firing"{ts}'
        )
        lines.append(f'event,{base},device=ups-1,trap=upsTrapOnBattery trap="on_battery"{ts}')
    return "\n".join(lines) + "\n"


def test_queries_compute_the_right_thing_on_hand_written_points(filled: Filled) -> None:
    db = "grafana_pending"
    filled.server.create_database(db)
    body = _hand_written_points(int(time.time())).encode()
    status, answer = http("POST", f"{filled.server.url}/write?db={db}", body)
    assert status == 204, answer
    own = Filled(filled.server, db)
    generated = build_dashboards(hall_config())
    for item in generated:
        values = selection(item.to_json(), {})
        for panel in panels(item.to_json()):
            queries = [expand(t["query"], values) for t in panel["targets"]]
            read = set().union(*(measurements_in(q) for q in queries))
            if read and read <= HAND_WRITTEN:
                assert any(has_values(run(own, q)) for q in queries), (
                    f"{item.view}: {panel['title']}"
                )
    noc = next(g for g in generated if g.view == "noc")
    pue = next(p for p in panels(noc.to_json()) if p["title"] == "PUE")
    series = run(own, expand(pue["targets"][0]["query"], selection(noc.to_json(), {})))
    assert {round(v, 3) for s in series for _, v in s["values"] if v is not None} == {1.5}
    power = next(g for g in generated if g.view == "power")
    headroom = next(p for p in panels(power.to_json()) if p["title"] == "2N headroom per rack")
    series = run(own, expand(headroom["targets"][0]["query"], selection(power.to_json(), {})))
    # (8 A + 6 A) of a 16 A PDU: 12.5 % left if a feed fails
    assert {round(v, 2) for s in series for _, v in s["values"] if v is not None} == {12.5}
    branch = next(
        p for p in panels(power.to_json()) if p["title"] == "Branch load vs breaker rating"
    )
    series = run(own, expand(branch["targets"][0]["query"], selection(power.to_json(), {})))
    assert {v for s in series for _, v in s["values"] if v is not None} == {25.0}
