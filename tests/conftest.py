"""Shared fixtures: real InfluxDB 1.x and VictoriaMetrics servers on free loopback ports
(and, from mosquitto_fixtures, Mosquitto brokers)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.etcd_server import Etcd
from tests.support.servers import InfluxDB1, VictoriaMetrics, require_binary

pytest_plugins = ["tests.support.mosquitto_fixtures"]


@pytest.fixture(scope="session")
def influxdb1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1]:
    """One influxd 1.x for the session; use `influx_db` for a fresh database."""
    server = InfluxDB1(
        require_binary("influxd", "/usr/bin/influxd"), tmp_path_factory.mktemp("influxd")
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def influxdb1_own(tmp_path: Path) -> Iterator[InfluxDB1]:
    """A private influxd the test may stop() and start() (same port, same data)."""
    server = InfluxDB1(require_binary("influxd", "/usr/bin/influxd"), tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def influx_db(influxdb1: InfluxDB1) -> str:
    """A database of its own on the session influxd."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    influxdb1.create_database(name)
    return name


@pytest.fixture(scope="session")
def victoria_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    """One victoria-metrics for the session: give test data its own measurement or tag."""
    server = VictoriaMetrics(
        require_binary("victoria-metrics", "/usr/bin/victoria-metrics"),
        tmp_path_factory.mktemp("vm"),
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def influxdb1_auth(tmp_path: Path) -> Iterator[InfluxDB1]:
    """A private influxd with HTTP auth on; the admin user is `.credentials`."""
    server = InfluxDB1(require_binary("influxd", "/usr/bin/influxd"), tmp_path, auth=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A loopback port that accepts connections and never answers (a hung server)."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    for w in held:
        w.close()
    server.close()
    await server.wait_closed()


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[Etcd]:
    """A private etcd the test may stop() and start() (same ports, same data)."""
    server = Etcd(tmp_path / "etcd-server")
    server.workdir.mkdir()
    server.start()
    yield server
    server.stop()
