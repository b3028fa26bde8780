"""End to end on real parts: simulated UPS (SNMP over UDP) -> dcim -> real InfluxDB.

InfluxDB 1.x (`influxd`) takes the v1 path, VictoriaMetrics the v2 `/api/v2/write`
path; both are started by the fixtures on free loopback ports.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from collectors.registry import CollectorFactory
from dcim.clock import SimClock
from dcim.inventory import parse_config
from dcim.runner import Monitor
from simulators.snmp_agent import SnmpAgent, serve
from simulators.ups import UpsModel
from simulators.ups_mib import UpsDevice
from tests.support.servers import InfluxDB1, VictoriaMetrics
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


@pytest.fixture
def upses() -> list[UpsDevice]:
    clock = SimClock()
    return [
        UpsDevice(f"ups{n}", UpsModel(rated_va=10000.0, rated_w=9000.0, seed=n), clock)
        for n in (1, 2)
    ]


@pytest.fixture
async def agent(upses: list[UpsDevice]) -> AsyncIterator[SnmpAgent]:
    agent = await serve(upses, "127.0.0.1", 0)
    yield agent
    agent.close()


def site_yaml(port: int, sinks: str, state_dir: Path, interval: float = 0.5) -> str:
    return textwrap.dedent(
        f"""\
        monitor:
          state_dir: {state_dir}
          self_metrics_interval_s: 1
        defaults:
          poll_interval_s: {interval}
          snmp: {{host: 127.0.0.1, port: {port}, timeout_s: 1, retries: 1}}
        sites:
          - id: dc1
            rooms:
              - id: hall-a
                devices:
                  - id: ups-a
                    kind: ups
                    vendor: Simulated
                    profile: ups-mib-rfc1628
                    snmp: {{community: ups1}}
                rows:
                  - id: row-1
                    racks:
                      - id: r01
                        devices:
                          - id: ups-b
                            kind: ups
                            profile: ups-mib-rfc1628
                            snmp: {{community: ups2}}
        sinks:
        """
    ) + textwrap.indent(textwrap.dedent(sinks), "  ")


async def query(server: InfluxDB1, influxql: str, db: str) -> list[dict[str, object]]:
    return await asyncio.to_thread(server.query, influxql, db)


async def test_dcim_run_writes_simulated_ups_to_influxdb1(
    agent: SnmpAgent, upses: list[UpsDevice], influxdb1: InfluxDB1, influx_db: str, tmp_path: Path
) -> None:
    upses[1].set_utility(False)  # ups-b runs on battery
    sinks = f"""\
        - type: influxdb
          url: {influxdb1.url}
          api: v1
          database: {influx_db}
          flush_interval_s: 0.2
        - type: file
          path: {tmp_path / "copy.lp"}
          flush_interval_s: 0.2
        """
    config = tmp_path / "site.yaml"
    config.write_text(site_yaml(agent.port, sinks, tmp_path / "state"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dcim",
        "run",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )

    async def both_devices_written() -> bool:
        if proc.returncode is not None:
            output = await proc.stdout.read() if proc.stdout else b""
            pytest.fail(f"dcim run exited early ({proc.returncode}): {output.decode()}")
        rows = await query(
            influxdb1, 'SELECT count("load_pct") FROM ups GROUP BY device', influx_db
        )
        return len(rows) == 2 and all(int(str(r["count"])) >= 3 for r in rows)

    try:
        await eventually(both_devices_written, 30, "UPS points in InfluxDB")
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = await proc.communicate()
    assert proc.returncode == 0, output.decode()

    rows = await query(
        influxdb1,
        'SELECT last("output_source") AS src, last("battery_charge_pct") AS charge FROM ups GROUP BY device, site, room, "row", rack, vendor',
        influx_db,
    )
    by_device = {r["device"]: r for r in rows}
    assert by_device["ups-a"]["src"] == "normal"
    assert by_device["ups-b"]["src"] == "battery"
    assert by_device["ups-a"]["site"] == "dc1"
    assert by_device["ups-a"]["room"] == "hall-a"
    assert by_device["ups-a"]["vendor"] == "Simulated"
    assert by_device["ups-a"]["rack"] == ""  # room-level device: no rack tag
    assert by_device["ups-b"]["row"] == "row-1"
    assert by_device["ups-b"]["rack"] == "r01"
    # values are the simulator's: charge falls on battery, stays full on utility
    assert by_device["ups-a"]["charge"] == pytest.approx(
        upses[0].model.state().charge_percent, abs=1
    )
    assert float(str(by_device["ups-b"]["charge"])) <= 100

    lines = await query(influxdb1, 'SELECT "voltage_v" FROM ups LIMIT 1', influx_db)
    assert lines == [] or "voltage_v" in lines[0]
    volts = await query(
        influxdb1, 'SELECT last("output_voltage_v") FROM ups GROUP BY device, line', influx_db
    )
    assert {(r["device"], r["line"]) for r in volts} == {("ups-a", "1"), ("ups-b", "1")}
    assert all(200 <= float(str(r["last"])) <= 260 for r in volts)

    health = await query(influxdb1, 'SELECT last("up") FROM dcim_self GROUP BY device', influx_db)
    assert {r["device"]: r["last"] for r in health if r["device"] != "dcim"} == {
        "ups-a": True,
        "ups-b": True,
    }

    # shutdown flushed everything: InfluxDB has exactly what the file sink saw
    file_counts = Counter(
        line.split(",device=")[1].split(",")[0]
        for line in (tmp_path / "copy.lp").read_text().splitlines()
        if line.startswith("ups,") and " load_pct=" in line
    )
    counted = await query(influxdb1, 'SELECT count("load_pct") FROM ups GROUP BY device', influx_db)
    assert {r["device"]: r["count"] for r in counted} == dict(file_counts)


async def test_v2_write_path_into_victoria_metrics(
    agent: SnmpAgent, victoria_metrics: VictoriaMetrics, tmp_path: Path
) -> None:
    sinks = f"""\
        - type: influxdb
          url: {victoria_metrics.url}
          api: v2
          bucket: dcim
          org: noc
          flush_interval_s: 0.2
        """
    config = parse_config(site_yaml(agent.port, sinks, tmp_path / "state"))
    monitor = Monitor(config, collectors=CollectorFactory.for_config(config))
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))

    async def written() -> bool:
        series = await asyncio.to_thread(
            victoria_metrics.export, '{__name__="ups_load_pct",site="dc1"}'
        )
        return len(series) == 2

    try:
        await eventually(written, 30, "UPS series in VictoriaMetrics")
    finally:
        stop.set()
        await task
    series = await asyncio.to_thread(
        victoria_metrics.export, '{__name__="ups_load_pct",site="dc1"}'
    )
    labels = sorted((s["metric"]["device"], s["metric"].get("rack", "")) for s in series)
    assert labels == [("ups-a", ""), ("ups-b", "r01")]
    assert all(0 < value < 200 for s in series for value in s["values"])


async def test_influxdb_outage_loses_nothing_and_duplicates_nothing(
    agent: SnmpAgent, influxdb1_own: InfluxDB1, tmp_path: Path
) -> None:
    server = influxdb1_own
    db = "outage"
    await asyncio.to_thread(server.create_database, db)
    sinks = f"""\
        - type: influxdb
          url: {server.url}
          api: v1
          database: {db}
          flush_interval_s: 0.2
          timeout_s: 2
        - type: file
          path: {tmp_path / "truth.lp"}
          flush_interval_s: 0.2
        """
    config = parse_config(site_yaml(agent.port, sinks, tmp_path / "state", interval=0.3))
    monitor = Monitor(config, collectors=CollectorFactory.for_config(config))
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))
    influx = monitor.sinks["influxdb"]

    async def some_written() -> bool:
        return influx.stats.points_written > 0

    async def spooled_a_lot() -> bool:
        return influx.stats.spool_batches >= 5

    async def spool_drained() -> bool:
        return influx.stats.spool_batches == 0

    try:
        await eventually(some_written, 30, "first points written")
        await asyncio.to_thread(server.stop)
        await eventually(spooled_a_lot, 30, "batches spooled during the outage")
        await asyncio.to_thread(server.start)
        await eventually(spool_drained, 60, "spool replayed")
    finally:
        stop.set()
        await task
    # every (device, line, timestamp) of load_pct the monitor produced is in InfluxDB once
    truth: Counter[tuple[str, str]] = Counter()
    for line in (tmp_path / "truth.lp").read_text().splitlines():
        if line.startswith("ups,") and " load_pct=" in line:
            device = line.split(",device=")[1].split(",")[0]
            truth[(device, line.rsplit(" ", 1)[1])] += 1
    assert truth
    assert max(truth.values()) == 1
    rows = await query(server, 'SELECT "load_pct" FROM ups GROUP BY device', db)
    stored = Counter((str(r["device"]), str(r["time"])) for r in rows)
    assert stored == truth
