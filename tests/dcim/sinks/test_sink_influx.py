"""InfluxDB writers against real servers: influxd 1.x and VictoriaMetrics (v2 API)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from pydantic import SecretStr

from dcim.errors import SinkRejectedError, SinkUnavailableError
from dcim.reading import Reading, Value
from dcim.sinks.file import FileWriter
from dcim.sinks.influx import InfluxRejectedError, InfluxV1Writer, InfluxV2Writer, check_status
from dcim.sinks.lineprotocol import LineEncoder
from tests.support.servers import InfluxDB1, VictoriaMetrics, free_port
from tests.support.waiting import wait_until

ENC = LineEncoder()
TS_MS = 1_700_000_000_123


def body(*readings: Reading) -> bytes:
    return ENC.encode_batch(readings)[0]


def reading(metric: str, value: Value, ts_ms: int, **tags: str) -> Reading:
    return Reading("ups-1", metric, value, None, ts_ms * 1_000_000 + 456, MappingProxyType(tags))


async def test_v1_write_and_query_back(influxdb1: InfluxDB1, influx_db: str) -> None:
    tags = {"site": "dc 1", "rack": "r,1"}
    async with InfluxV1Writer(influxdb1.url, influx_db) as writer:
        await writer.write(
            body(
                reading("ups.load_pct", 41.5, TS_MS, **tags),
                reading("ups.load_pct", 42.25, TS_MS + 1, **tags),
                reading("ups.output_source", "on battery", TS_MS, **tags),
                reading("ups.alarms_present", 3, TS_MS, **tags),
                reading("ups.test_flag", True, TS_MS, **tags),
            )
        )
    rows = influxdb1.query('SELECT * FROM "ups" GROUP BY *', influx_db)
    assert rows == [
        {
            "site": "dc 1",
            "rack": "r,1",
            "time": TS_MS,
            "load_pct": 41.5,
            "output_source": "on battery",
            "alarms_present": 3,
            "test_flag": True,
        },
        {
            "site": "dc 1",
            "rack": "r,1",
            "time": TS_MS + 1,
            "load_pct": 42.25,
            "output_source": None,
            "alarms_present": None,
            "test_flag": None,
        },
    ]


async def test_v1_bad_line_is_rejected_with_the_line_and_later_batches_work(
    influxdb1: InfluxDB1, influx_db: str
) -> None:
    good = body(reading("ups.load_pct", 1.0, TS_MS))
    async with InfluxV1Writer(influxdb1.url, influx_db) as writer:
        with pytest.raises(InfluxRejectedError) as info:
            await writer.write(good + b"\nups load_pct=oops 1700000000124")
        assert "ups load_pct=oops 1700000000124" in str(info.value)
        assert info.value.dropped_points == 1
        await writer.write(body(reading("ups.load_pct", 2.0, TS_MS + 2)))
    rows = influxdb1.query('SELECT "load_pct" FROM "ups"', influx_db)
    assert [(r["time"], r["load_pct"]) for r in rows] == [(TS_MS, 1.0), (TS_MS + 2, 2.0)]


async def test_v1_missing_database_is_retryable(influxdb1: InfluxDB1) -> None:
    async with InfluxV1Writer(influxdb1.url, "no_such_db") as writer:
        with pytest.raises(SinkUnavailableError, match="database not found"):
            await writer.write(body(reading("ups.load_pct", 1.0, TS_MS)))


async def test_v1_refused_connection_is_unavailable_and_hides_the_password() -> None:
    password = SecretStr("hunter2-very-secret")
    writer = InfluxV1Writer(f"http://127.0.0.1:{free_port()}", "db", "admin", password, 2.0)
    async with writer:
        with pytest.raises(SinkUnavailableError) as info:
            await writer.write(b"m v=1 1")
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in repr(writer)


@pytest.mark.parametrize("version", [1, 2])
async def test_hung_server_times_out_as_unavailable(silent_port: int, version: int) -> None:
    url = f"http://127.0.0.1:{silent_port}"
    writer = (
        InfluxV1Writer(url, "db", timeout_s=0.3)
        if version == 1
        else InfluxV2Writer(url, "b", "o", SecretStr("tok-secret"), timeout_s=0.3)
    )
    started = time.monotonic()
    async with writer:
        with pytest.raises(SinkUnavailableError, match="timed out"):
            await writer.write(b"m v=1 1")
    assert time.monotonic() - started < 3.0


def exported(vm: VictoriaMetrics, run: str) -> list[dict[str, Any]]:
    return vm.export(f'{{run="{run}"}}')


async def test_v2_write_to_victoria_metrics(victoria_metrics: VictoriaMetrics) -> None:
    run = uuid.uuid4().hex
    m = f"t{run}"  # a measurement of its own: the session server is shared with other tests
    now_ms = int(time.time() * 1000)
    async with InfluxV2Writer(
        victoria_metrics.url, "bucket", "org", SecretStr("token-secret")
    ) as writer:
        await writer.write(
            body(
                reading(f"{m}.load_pct", 41.5, now_ms, run=run, site="t 1"),
                reading(f"{m}.load_pct", 42.0, now_ms + 1, run=run, site="t 1"),
                reading(f"{m}.power_w", 7, now_ms, run=run, site="t 1"),
            )
        )
        assert "token-secret" not in repr(writer)
    wait_until(lambda: len(exported(victoria_metrics, run)) == 2, 10.0, "exported series")
    series = {s["metric"]["__name__"]: s for s in exported(victoria_metrics, run)}
    assert series[f"{m}_load_pct"]["metric"] == {
        "__name__": f"{m}_load_pct",
        "run": run,
        "site": "t 1",
    }
    assert series[f"{m}_load_pct"]["values"] == [41.5, 42.0]
    assert series[f"{m}_load_pct"]["timestamps"] == [now_ms, now_ms + 1]
    assert series[f"{m}_power_w"]["values"] == [7]


async def test_v2_refused_connection_is_unavailable() -> None:
    async with InfluxV2Writer(f"http://127.0.0.1:{free_port()}", "b", "o") as writer:
        with pytest.raises(SinkUnavailableError):
            await writer.write(b"m v=1 1")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, SinkUnavailableError),
        (503, SinkUnavailableError),
        (429, SinkUnavailableError),
        (401, SinkUnavailableError),
        (400, SinkRejectedError),
        (413, SinkRejectedError),
        (422, SinkRejectedError),
    ],
)
def test_status_classification(status: int, error: type[Exception]) -> None:
    with pytest.raises(error, match="the server said so"):
        check_status("sink", status, b'{"code":"x","message":"the server said so"}')
    check_status("sink", 204, b"")


async def test_file_writer_appends_lines(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "out.lp"
    async with FileWriter(path) as writer:
        await writer.write(b"a v=1 1\nb v=2 2")
        await writer.write(b"c v=3 3")
    async with FileWriter(path) as writer:
        await writer.write(b"d v=4 4")
    assert path.read_bytes() == b"a v=1 1\nb v=2 2\nc v=3 3\nd v=4 4\n"


async def test_v1_basic_auth(influxdb1_auth: InfluxDB1) -> None:
    server = influxdb1_auth
    user, password = server.credentials
    server.query('CREATE DATABASE "authdb"', "")
    async with InfluxV1Writer(server.url, "authdb", user, SecretStr("wrong-secret")) as bad:
        with pytest.raises(SinkUnavailableError, match="HTTP 401") as info:
            await bad.write(body(reading("ups.load_pct", 1.0, TS_MS)))
        assert "wrong-secret" not in str(info.value)
    async with InfluxV1Writer(server.url, "authdb", user, SecretStr(password)) as good:
        await good.write(body(reading("ups.load_pct", 1.0, TS_MS)))
    server.stop()
    server.start()  # the admin user already exists: start() must cope
    assert server.query('SELECT "load_pct" FROM "ups"', "authdb") == [
        {"time": TS_MS, "load_pct": 1.0}
    ]
