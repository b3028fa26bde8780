"""Every panel's query, variables expanded for a real site, against a real influxd.

InfluxDB is filled the way production fills it, by the monitor
(`dcim.runner.Monitor`) polling simulators and writing through its InfluxDB
sink, with its alert engine (`alerts:`) and trap receiver (`traps:`) on:

- the demo hall `simulators/sites/demo-site.yaml` (the inventory `dcim demo`
  plays) served by `simulators.site.Site` over SNMP, Modbus and MQTT (a real
  Mosquitto) while a utility outage whose generator fails to start plays at high
  speed and the site sends traps (`tests.support.grafana.hall_run`), site `demo`.

`dcim grafana export` writes each site's dashboards; while the monitor and its
alert engine run, with the on-battery incidents open, every panel query must
return data and every table query must merge into one table as Grafana merges
it (`tests.support.grafana.live`). The only exceptions are the panels in PENDING, and only
while the profile they wait for is missing.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from collectors.registry import CollectorFactory
from dcim.cli import main
from dcim.clock import SimClock
from dcim.grafana.build import Generated, build_dashboards
from dcim.grafana.influxql import measurements_in
from dcim.inventory import iter_devices
from dcim.runner import Monitor
from dcim.vocabulary import load_vocabulary
from simulators.snmp_agent import serve
from simulators.ups import UpsModel
from simulators.ups_mib import UpsDevice
from tests.support.grafana.behaviour import TableShapeError, annotation_query, merge_table
from tests.support.grafana.expand import expand, selection
from tests.support.grafana.hall_run import (
    NOT_SAMPLED,
    TRAP_DEVICE,
    HallRun,
    polled_devices,
    run_hall,
    site_config,
    ups_devices,
    write_site,
)
from tests.support.grafana.live import Findings, Influx, check
from tests.support.grafana.site import hall_config
from tests.support.mosquitto_server import Mosquitto, binary_or_skip
from tests.support.servers import InfluxDB1, http
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

#: Hall panels ("view: title") that may stay empty while the metric they need is absent
#: from the run's data, and why. An entry is excused only while InfluxDB has no such
#: field after the run, so it expires by itself when a profile starts mapping the metric.
#: Empty: the PDU profiles map the breaker and inlet ratings and the site has a point
#: smoke detector, so every hall panel is proven on simulator data.
PENDING: dict[str, tuple[str, str]] = {}
#: Panels that have no data while the utility is out: a meter reads no frequency then.
OUTAGE_ONLY = {"device: METER: Frequency"}
#: Panels a profile of the hall reads where the device has the part, but no simulated
#: device of the hall serves: panel -> why. Such a panel shows NO DATA on the demo hall.
NOT_SIMULATED: dict[str, str] = {
    "device: SENSOR: velocityms": (
        "raritan-pdu2 reads a PDU's airflow sensor; the simulated Raritan PDUs have none"
    ),
}
SITE = "demo"
HALL_SITE = "demo"
#: Seconds between two runs of every panel while the hall runs.
LIVE_CHECK_EVERY_S = 3.0
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
    monitor = Monitor(config, collectors=CollectorFactory.for_config(config))
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
    """InfluxDB after the hall run, the dashboards `dcim grafana export` wrote for it, and
    what the panels showed while the monitor ran with the on-battery incidents open."""

    influx: Filled
    run: HallRun
    dashboards: dict[str, dict[str, Any]]
    live: Findings


def _exported(directory: Path) -> dict[str, dict[str, Any]]:
    directory.mkdir()
    site_file = write_site(directory / "site.yaml")
    assert main(["grafana", "export", str(directory), "--config", str(site_file)]) == 0
    folder = directory / "dashboards" / HALL_SITE
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def device_choices() -> list[str]:
    """The first polled device of each profile: the device view is proven on each."""
    first: dict[str, str] = {}
    polled = polled_devices()
    for placed in iter_devices(site_config()):
        if placed.device.id in polled:
            first.setdefault(placed.device.profile, placed.device.id)
    return list(first.values())


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
    dashboards = _exported(workdir / "export")
    live = Influx(influxdb1.url, db)
    choices = device_choices()

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
        if not events:  # say why next time: what the UPS units reported
            sources = await asyncio.to_thread(
                query, 'SELECT last("output_source") FROM "ups" GROUP BY "device"'
            )
            seen["ups sources"] = {r["device"]: r["last"] for r in sources}
        return events

    async def outage_seen() -> bool:
        """Every UPS's on-battery alert fired and, while they are open, every panel has data."""
        events = await on_battery()
        if not all("firing" in events.get(ups, set()) for ups in ups_ids):
            return False
        # every panel's queries are many: at a pace that leaves the machine to the monitor
        await asyncio.sleep(max(0.0, seen.get("next check", 0.0) - time.monotonic()))
        seen["next check"] = time.monotonic() + LIVE_CHECK_EVERY_S
        findings = await asyncio.to_thread(check, live, dashboards, choices)
        seen["live"] = findings
        # a meter reads no frequency with the utility gone: checked again once it is back
        waiting = {p for p, (metric, _) in PENDING.items()} | OUTAGE_ONLY | set(NOT_SIMULATED)
        return set(findings.empty) <= waiting and bool(findings.active_alerts)

    async def done() -> bool:
        """The outage came and went (alerts resolved, restore trap in), every device polled."""
        events = await on_battery()
        traps = await asyncio.to_thread(query, 'SELECT "trap"::field FROM "event"')
        counts = await asyncio.to_thread(
            query,
            'SELECT count(*) FROM "ups", "pdu", "crac", "sensor", "meter", "generator", "battery" GROUP BY "device"',
        )
        # two readings of some field: a time series has a line, a state timeline a band
        polled = {
            r["device"]
            for r in counts
            if max(v or 0 for k, v in r.items() if k.startswith("count_")) >= 2
        }
        seen.update(traps={r["trap"] for r in traps}, unpolled=expected - polled)
        # each UPS's own incident fired and resolved: the device dashboard shows one UPS
        # every profile polled (some hall-2 PDUs of the simulated hall never answer under
        # this load), and a UPS's on-battery incident fired and resolved
        profiles = {profile_of[d] for d in polled if d in profile_of}
        over = (
            any(events.get(ups, set()) >= {"firing", "resolved"} for ups in ups_ids)
            and seen["traps"] >= {"on_battery", "alarm_removed"}
            and profiles >= {profile_of[d] for d in expected}
        )
        if not over:
            return False
        # utility back: what only a live feed shows (a meter's frequency) comes with the
        # meter's next poll after the restore, which may be a poll interval away
        seen["after"] = after = await asyncio.to_thread(check, live, dashboards, choices)
        return not set(after.empty) & OUTAGE_ONLY

    expected = polled_devices()
    profile_of = {p.device.id: p.device.profile for p in iter_devices(site_config())}
    ups_ids = ups_devices()
    seen: dict[str, Any] = {}
    broker.start()
    try:
        run = asyncio.run(
            run_hall(broker.url, sink, workdir / "state", done, 120, outage_seen=outage_seen)
        )
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; last seen: {seen}") from None
    finally:
        broker.stop()
    during, after = seen["live"], seen["after"]
    live_findings = Findings(
        empty=[p for p in during.empty if p in after.empty],
        shapes=during.shapes + after.shapes,
        active_alerts=during.active_alerts,
    )
    return Hall(Filled(influxdb1, db), run, dashboards, live_findings)


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


def test_every_hall_panel_returns_data_while_an_incident_is_open(hall: Hall) -> None:
    """The demo hall exported, simulated and polled; with the on-battery incidents open
    and the alert engine running, every panel of every view has data and every table
    query has one shape (Grafana's merge).

    Except, while their profile is missing, the panels PENDING names; the list must
    be exact, so a panel that empties for another reason fails here.
    """
    assert set(hall.dashboards) == {"noc", "power", "thermal", "environment", "device"}
    waiting = sorted(
        {panel for panel, (metric, _) in PENDING.items() if not stored_field(hall, metric)}
        | set(NOT_SIMULATED)
    )
    assert sorted(hall.live.empty) == waiting, (
        f"panels without data: {hall.live.empty}; unpolled: {hall.run.unpolled}"
    )
    assert hall.live.shapes == []
    titles = {f"{view}: {p['title']}" for view, doc in hall.dashboards.items() for p in panels(doc)}
    assert set(PENDING) | set(NOT_SIMULATED) <= titles  # no entry names a missing panel
    # the open incidents, most urgent first, each with its severity (the only colour)
    rows = hall.live.active_alerts
    on_battery = [r for r in rows if r["rule"] == "ups.output_source"]
    assert on_battery, rows
    assert all(r["severity"] == "critical" and r["urgency"] >= 25 for r in on_battery)


def test_every_table_query_has_one_shape_over_the_time_range(hall: Hall) -> None:
    """After the run, over the whole time range: what Grafana's table merge needs."""
    problems = []
    for view, doc in hall.dashboards.items():
        choices = [{}] if view != "device" else [{"device": d} for d in device_choices()]
        for chosen in choices:
            values = selection(doc, chosen)
            queries = [
                (p["title"], t["query"])
                for p in panels(doc)
                for t in p["targets"]
                if t.get("resultFormat") == "table"
            ]
            queries += [
                (a["name"], q) for a in doc["annotations"]["list"] if (q := annotation_query(a))
            ]
            for title, query in queries:
                try:
                    merge_table(run(hall.influx, expand(query, values)))
                except TableShapeError as exc:
                    problems.append(f"{view}: {title} ({chosen}): {exc}")
    assert problems == []


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
    assert all(
        "unknown SNMP profile" in why or why == NOT_SAMPLED for why in hall.run.unpolled.values()
    )


def test_hall_annotations_show_alert_transitions_and_traps(hall: Hall) -> None:
    rows = hall.influx.server.query(
        """SELECT "event", "device" FROM "alert" WHERE "rule" = 'ups.output_source' AND "event" = 'resolved'""",
        hall.influx.db,
    )
    resolved = sorted({r["device"] for r in rows})
    assert resolved
    for view, doc in hall.dashboards.items():
        # the device view shows one device: a UPS whose on-battery incident came and went
        values = selection(doc, {"device": resolved[0]} if view == "device" else {})
        found = {}
        for annotation in doc["annotations"]["list"]:
            query = annotation_query(annotation)
            if query is None:
                continue
            series = run(hall.influx, expand(query, values))
            columns = series[0]["columns"] if series else []
            found[annotation["name"]] = [
                dict(zip(columns, row, strict=True)) for s in series for row in s["values"]
            ]
            if not series:
                continue  # nothing to mark for this selection (checked where there is)
            # the columns Grafana is told to read exist in the result
            target = annotation["target"]
            for key in ("textColumn", "titleColumn"):
                if target[key]:
                    assert target[key] in columns, (view, annotation["name"], key)
            for tag in filter(None, target["tagsColumn"].split(",")):
                assert tag in columns, (view, annotation["name"], tag)
        alerts = found["Critical alerts" if view == "noc" else "Alerts"]
        on_battery = {(r["device"], r["event"]) for r in alerts if r["rule"] == "ups.output_source"}
        # a UPS went to battery and came back; the device view shows only its first UPS
        # (ups-a), which is why the run waits for every UPS's own incident
        assert {"firing", "resolved"} <= {event for _, event in on_battery}, _diagnose(
            hall, view, values, found
        )
        assert {device for device, _ in on_battery} <= {"ups-a", "ups-b"}
        traps = [(r["device"], r["trap"]) for r in found.get("Device events", [])]
        if view != "device" or resolved[0] == TRAP_DEVICE:
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
    # the periodic statement of open incidents (dcim/alerts/snapshot.py)
    fields = {
        r["fieldKey"]: r["fieldType"] for r in server.query('SHOW FIELD KEYS FROM "alert_open"', db)
    }
    assert fields == {"urgency": "integer"}
    rows = server.query(
        """SELECT "urgency", "state", "incident" FROM "alert_open" WHERE "rule" = 'ups.output_source'""",
        db,
    )
    # each on-battery incident was stated firing (critical) and then closed (0) at once
    by_incident: dict[str, list[int]] = {}
    for r in rows:
        by_incident.setdefault(r["incident"], []).append(r["urgency"])
    assert by_incident
    assert all(30 in u for u in by_incident.values()), by_incident
    assert any(u[-1] == 0 for u in by_incident.values()), by_incident  # resolved: 0 at once
    beats = server.query("""SELECT count("urgency") FROM "alert_open" WHERE "incident" = '-'""", db)
    assert beats  # the engine's heartbeat: NO DATA means it is silent
    assert beats[0]["count"] >= 1


def test_hall_variables_list_the_polled_inventory(hall: Hall) -> None:
    doc = hall.dashboards["power"]
    values = selection(doc, {})
    found = {}
    for var in doc["templating"]["list"]:
        if var["type"] == "query":
            series = run(hall.influx, expand(var["query"], values))
            found[var["name"]] = {row[1] for s in series for row in s["values"]}
    assert found["site"] == {HALL_SITE}
    assert found["room"] == {"hall-1", "hall-2"}
    assert {"hall-1-r1", "hall-1-r2"} <= found["row"]
    assert {"hall-1-A01", "hall-2-B02"} <= found["rack"]
    assert {"ups-a", "ups-b", "meter-1", "crac-hall-1-2"} <= found["device"]
    # multi-select: Grafana writes two rooms as (a|b) into /^$room$/
    two = run(
        hall.influx,
        expand(doc["templating"]["list"][3]["query"], {**values, "room": "(hall-1|hall-2)"}),
    )
    assert {row[1] for s in two for row in s["values"]} == found["row"]


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
    titles = [p["title"] for p in panels(doc)]
    assert "Latest values" not in titles  # no GROUP BY * table mixing measurements
    percent = next(p for p in panels(doc) if p["title"] == "UPS: Percent")
    assert percent["fieldConfig"]["defaults"]["unit"] == "percent"
    query = percent["targets"][0]["query"]
    assert query.count(" FROM ") == 1  # one query per measurement and unit
    assert "GROUP BY *" not in query
    series = run(filled, expand(query, selection(doc, {"device": "ups-2"})))
    assert series
    columns = {c for s in series for c in s["columns"]}
    assert {"load_pct", "battery_charge_pct"} <= columns
    assert not {"battery_runtime_s", "input_voltage_v"} & columns  # seconds and volts elsewhere
    power = next(g for g in build_dashboards(hall_config()) if g.view == "power").to_json()
    source = next(p for p in panels(power) if p["title"] == "UPS output source")
    states = run(
        filled, expand(source["targets"][0]["query"], selection(power, {"device": "ups-2"}))
    )
    assert {s["tags"]["device"] for s in states} == {"ups-2"}
    assert "battery" in {v for s in states for _, v in s["values"]}  # the UPS run on battery


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
    # 30 s polls: the present-time tiles look back 90 s, over the points just written
    generated = build_dashboards(hall_config(poll_s=30))
    for item in generated:
        if item.view == "device":
            continue  # one device at a time: proven per profile by the hall run
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
    feeds = next(
        p for p in panels(power.to_json()) if p["title"] == "A+B load per rack (% of one feed)"
    )
    series = run(own, expand(feeds["targets"][0]["query"], selection(power.to_json(), {})))
    # (8 A + 6 A) on a 16 A PDU: 87.5 % of one feed, what it carries alone if the other fails
    assert {round(v, 2) for s in series for _, v in s["values"] if v is not None} == {87.5}
    on_battery = next(p for p in panels(noc.to_json()) if p["title"] == "Hottest rack inlet")
    series = run(own, expand(on_battery["targets"][0]["query"], selection(noc.to_json(), {})))
    assert {v for s in series for _, v in s["values"]} == {24.5}
    branch = next(
        p for p in panels(power.to_json()) if p["title"] == "Branch load vs breaker rating"
    )
    series = run(own, expand(branch["targets"][0]["query"], selection(power.to_json(), {})))
    assert {v for s in series for _, v in s["values"] if v is not None} == {25.0}
