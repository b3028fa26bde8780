"""Shared fixtures: real InfluxDB 1.x and VictoriaMetrics servers on free loopback ports."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from servers import InfluxDB1, VictoriaMetrics, find_binary

# Let `pytest` run from a checkout without installing the package first.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


def _binary(name: str, default: str) -> str:
    """The server binary, or skip (locally) / fail (under CI) with the reason."""
    path = find_binary(name, default)
    if path is not None:
        return path
    reason = f"{name} binary not found ({default}, ${name.upper().replace('-', '_')}_BIN, PATH)"
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{reason}; CI is set, so a missing server is a failure")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def influxdb1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1]:
    """One influxd 1.x for the session; use `influx_db` for a fresh database."""
    server = InfluxDB1(_binary("influxd", "/usr/bin/influxd"), tmp_path_factory.mktemp("influxd"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def influxdb1_own(tmp_path: Path) -> Iterator[InfluxDB1]:
    """A private influxd the test may stop() and start() (same port, same data)."""
    server = InfluxDB1(_binary("influxd", "/usr/bin/influxd"), tmp_path)
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
        _binary("victoria-metrics", "/usr/bin/victoria-metrics"), tmp_path_factory.mktemp("vm")
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def influxdb1_auth(tmp_path: Path) -> Iterator[InfluxDB1]:
    """A private influxd with HTTP auth on; the admin user is `.credentials`."""
    server = InfluxDB1(_binary("influxd", "/usr/bin/influxd"), tmp_path, auth=True)
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
