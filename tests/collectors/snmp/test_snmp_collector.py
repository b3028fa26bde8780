"""The SNMP collector against a real SNMP agent (the bundled pysnmp simulator on UDP)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from types import MappingProxyType
from typing import Any

import pytest
from pysnmp.proto.rfc1902 import Gauge32, Integer, Integer32, OctetString

from collectors.registry import CollectorFactory
from dcim.clock import SimClock
from dcim.collector import Collector
from dcim.errors import DeviceAuthError, DeviceTimeoutError
from dcim.inventory import DeviceConfig, PlacedDevice
from dcim.poller import DevicePoller, DeviceState
from dcim.reading import Reading
from simulators.mib import OidTable, TableBuilder
from simulators.snmp_agent import SnmpAgent, V3User, serve
from simulators.ups import UpsModel
from simulators.ups_mib import UpsDevice
from tests.support.snmpd import free_udp_port

UPS = (1, 3, 6, 1, 2, 1, 33, 1)


class OddUps:
    """A UPS card with gaps and a scaling bug: no battery temperature, load 4000 %."""

    name = "odd"

    def snapshot(self) -> OidTable:
        t = TableBuilder()
        t.scalar((*UPS, 4, 1), Integer(5))  # on battery
        t.scalar((*UPS, 2, 3), Integer32(12))  # 12 minutes
        t.scalar((*UPS, 2, 4), Integer32(250))  # charge 250 %: impossible
        t.scalar((*UPS, 6, 1), Gauge32(1))
        t.cell((*UPS, 4, 4, 1, 5), (1,), Integer32(4000))  # load 4000 %
        t.cell((*UPS, 4, 4, 1, 2), (1,), Integer32(229))
        t.cell((*UPS, 4, 4, 1, 2), (2,), OctetString(b"231"))  # number as text
        return t.build()


@pytest.fixture
def clock() -> SimClock:
    return SimClock()


@pytest.fixture
def ups(clock: SimClock) -> UpsDevice:
    return UpsDevice("ups1", UpsModel(rated_va=10000.0, rated_w=9000.0, seed=7), clock)


@pytest.fixture
async def agent(ups: UpsDevice) -> AsyncIterator[SnmpAgent]:
    user = V3User("noc", auth_key="auth-pass-123", priv_key="priv-pass-456")
    agent = await serve({"public-ups": ups, "odd": OddUps()}, "127.0.0.1", 0, v3_users=[user])
    yield agent
    agent.close()


@pytest.fixture
async def factory() -> AsyncIterator[CollectorFactory]:
    factory = CollectorFactory()
    yield factory
    factory.close()


def placed(snmp: dict[str, Any], device_id: str = "ups-1") -> PlacedDevice:
    device = DeviceConfig.model_validate(
        {"id": device_id, "kind": "ups", "profile": "ups-mib-rfc1628", "snmp": snmp}
    )
    tags = MappingProxyType({"site": "dc1", "device": device_id, "kind": "ups"})
    return PlacedDevice(device, "dc1", "hall", "", "", tags)


def by_metric(readings: list[Reading]) -> dict[tuple[str, str], Reading]:
    return {(r.metric, r.tags.get("line", "")): r for r in readings}


async def test_poll_reads_every_profile_value_from_the_agent(
    agent: SnmpAgent, ups: UpsDevice, factory: CollectorFactory
) -> None:
    collector = factory.build(
        placed({"host": "127.0.0.1", "port": agent.port, "community": "public-ups"})
    )
    async with collector:
        readings = await collector.poll()
    state = ups.model.state()
    got = by_metric(readings)
    assert got[("ups.output_source", "")].value == "normal"
    assert got[("ups.battery_status", "")].value == "normal"
    assert got[("ups.battery_charge_pct", "")].value == pytest.approx(state.charge_percent, abs=1)
    assert got[("ups.battery_runtime_s", "")].value == pytest.approx(state.runtime_s, abs=60)
    assert got[("ups.battery_runtime_s", "")].unit == "s"
    assert got[("ups.input_voltage_v", "1")].value == pytest.approx(
        state.input_lines[0].voltage_v, abs=1
    )
    assert got[("ups.output_frequency_hz", "")].value == pytest.approx(
        state.output_frequency_hz, abs=0.1
    )
    assert got[("ups.load_pct", "1")].value == pytest.approx(
        state.output_lines[0].percent_load, abs=1
    )
    assert isinstance(got[("ups.alarms_present", "")].value, int)
    # every reading carries the inventory tags, table rows their index
    assert all(r.tags["site"] == "dc1" and r.device_id == "ups-1" for r in readings)
    assert len(readings) == 11 + 4 * len(state.input_lines) + 4 * len(state.output_lines)


async def test_on_battery_shows_in_the_next_poll(
    agent: SnmpAgent, ups: UpsDevice, factory: CollectorFactory
) -> None:
    collector = factory.build(
        placed({"host": "127.0.0.1", "port": agent.port, "community": "public-ups"})
    )
    ups.set_utility(False)
    async with collector:
        got = by_metric(await collector.poll())
    assert got[("ups.output_source", "")].value == "battery"
    assert got[("ups.alarms_present", "")].value >= 1  # type: ignore[operator]


async def test_snmpv3_auth_priv_sha256_aes(
    agent: SnmpAgent, factory: CollectorFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T_AUTH", "auth-pass-123")
    monkeypatch.setenv("T_PRIV", "priv-pass-456")
    v3 = {
        "user": "noc",
        "auth_protocol": "sha256",
        "auth_key": {"env": "T_AUTH"},
        "priv_protocol": "aes128",
        "priv_key": {"env": "T_PRIV"},
    }
    collector = factory.build(
        placed({"host": "127.0.0.1", "port": agent.port, "version": "v3", "v3": v3})
    )
    async with collector:
        got = by_metric(await collector.poll())
    assert got[("ups.output_source", "")].value == "normal"


async def test_snmpv3_wrong_key_is_an_auth_error(
    agent: SnmpAgent, factory: CollectorFactory
) -> None:
    v3 = {
        "user": "noc",
        "auth_protocol": "sha256",
        "auth_key": "wrong-auth-key",
        "priv_protocol": "aes128",
        "priv_key": "priv-pass-456",
    }
    snmp = {
        "host": "127.0.0.1",
        "port": agent.port,
        "version": "v3",
        "v3": v3,
        "timeout_s": 2,
        "retries": 0,
    }
    collector = factory.build(placed(snmp))
    async with collector:
        with pytest.raises(DeviceAuthError) as info:
            await collector.poll()
    assert info.value.device_id == "ups-1"
    assert "wrong-auth-key" not in str(info.value)


async def test_dead_device_times_out(factory: CollectorFactory) -> None:
    snmp = {
        "host": "127.0.0.1",
        "port": free_udp_port(),
        "community": "x",
        "timeout_s": 0.2,
        "retries": 0,
    }
    collector = factory.build(placed(snmp, "dead-ups"))
    async with collector:
        with pytest.raises(DeviceTimeoutError) as info:
            await collector.poll()
    assert "dead-ups" in str(info.value)


async def test_bad_values_are_dropped_and_named_others_kept(
    agent: SnmpAgent, factory: CollectorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    collector = factory.build(
        placed({"host": "127.0.0.1", "port": agent.port, "community": "odd"}, "odd-ups")
    )
    with caplog.at_level(logging.WARNING):
        async with collector:
            got = by_metric(await collector.poll())
            await collector.poll()  # a second poll must not log the same problem again
    assert got[("ups.output_source", "")].value == "battery"
    assert got[("ups.battery_runtime_s", "")].value == 720.0
    assert got[("ups.output_voltage_v", "1")].value == 229.0
    assert got[("ups.output_voltage_v", "2")].value == 231.0
    assert ("ups.load_pct", "1") not in got
    assert ("ups.battery_charge_pct", "") not in got
    assert ("ups.battery_temp_c", "") not in got  # noSuchObject: simply absent
    messages = [r.getMessage() for r in caplog.records]
    load = [m for m in messages if "ups.load_pct" in m]
    assert len(load) == 1, messages
    assert "odd-ups" in load[0]
    assert "1.3.6.1.2.1.33.1.4.4.1.5" in load[0]
    assert "4000" in load[0]


class CountingCollector:
    """Wraps a real collector and records when polls finish (for ordering checks)."""

    def __init__(self, inner: Collector) -> None:
        self.inner = inner
        self.device_id = inner.device_id
        self.tags = inner.tags
        self.finished = 0
        self._changed = asyncio.Event()

    async def wait_for(self, polls: int) -> None:
        """Return once `polls` polls have finished."""
        while self.finished < polls:
            self._changed.clear()
            await self._changed.wait()

    async def __aenter__(self) -> CountingCollector:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.inner.__aexit__(*exc)

    async def poll(self) -> list[Reading]:
        try:
            return await self.inner.poll()
        finally:
            self.finished += 1
            self._changed.set()


async def test_dead_device_is_reported_once_and_never_delays_others(
    agent: SnmpAgent, factory: CollectorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    emitted: list[Reading] = []
    good = CountingCollector(
        factory.build(
            placed({"host": "127.0.0.1", "port": agent.port, "community": "public-ups"}, "good-ups")
        )
    )
    dead = CountingCollector(
        factory.build(
            placed(
                {
                    "host": "127.0.0.1",
                    "port": free_udp_port(),
                    "community": "x",
                    "timeout_s": 1.5,
                    "retries": 0,
                },
                "dead-ups",
            )
        )
    )
    pollers = [
        DevicePoller(good, interval_s=0.2, emit=emitted.extend, spread=0),
        DevicePoller(dead, interval_s=0.2, emit=emitted.extend, spread=0),
    ]
    with caplog.at_level(logging.WARNING):
        tasks = [asyncio.create_task(p.run()) for p in pollers]
        try:
            async with asyncio.timeout(20):
                await good.wait_for(4)
            # the good device polled 4 times while the dead one was still in its first timeout
            assert dead.finished == 0
            async with asyncio.timeout(20):
                await dead.wait_for(2)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    assert pollers[1].state is DeviceState.DOWN
    # weak-security warnings at start are another concern: count the poller's messages
    down = [r for r in caplog.records if "dead-ups" in r.getMessage() and r.name == "dcim.poller"]
    assert len(down) == 1, [r.getMessage() for r in down]
    assert "timeout" in down[0].getMessage()
    ups_up = [r.value for r in emitted if r.metric == "device.up" and r.device_id == "dead-ups"]
    assert ups_up
    assert not any(ups_up)
    good_up = [r.value for r in emitted if r.metric == "device.up" and r.device_id == "good-ups"]
    assert len(good_up) >= 4
    assert all(good_up)


async def test_recovery_is_logged_once(
    factory: CollectorFactory, ups: UpsDevice, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_udp_port()
    emitted: list[Reading] = []
    collector = factory.build(
        placed(
            {"host": "127.0.0.1", "port": port, "community": "ups1", "timeout_s": 0.2, "retries": 0}
        )
    )
    poller = DevicePoller(collector, interval_s=60, emit=emitted.extend)
    with caplog.at_level(logging.WARNING):
        async with collector:
            await poller.poll_once()
            await poller.poll_once()
            assert poller.state is DeviceState.DOWN
            agent = await serve([ups], "127.0.0.1", port)
            try:
                await poller.poll_once()
            finally:
                agent.close()
    final_state: DeviceState = poller.state
    assert final_state is DeviceState.UP
    messages = [
        r.getMessage()
        for r in caplog.records
        if "ups-1" in r.getMessage() and r.name == "dcim.poller"
    ]
    assert len(messages) == 2, messages
    assert "down" in messages[0]
    assert "recovered" in messages[1]
    assert [r.value for r in emitted if r.metric == "device.up"] == [False, False, True]


async def test_snmpv1_walks_tables_with_getnext(
    agent: SnmpAgent, factory: CollectorFactory
) -> None:
    collector = factory.build(
        placed(
            {"host": "127.0.0.1", "port": agent.port, "version": "v1", "community": "public-ups"}
        )
    )
    async with collector:
        got = by_metric(await collector.poll())
    assert got[("ups.output_source", "")].value == "normal"
    assert ("ups.input_voltage_v", "1") in got
    assert ("ups.load_pct", "1") in got


async def test_snmpv1_missing_object_drops_only_that_oid(
    agent: SnmpAgent, factory: CollectorFactory
) -> None:
    # the odd UPS has no battery temperature: v1 answers noSuchName for the whole GET
    collector = factory.build(
        placed(
            {"host": "127.0.0.1", "port": agent.port, "version": "v1", "community": "odd"}, "odd-v1"
        )
    )
    async with collector:
        got = by_metric(await collector.poll())
    assert got[("ups.output_source", "")].value == "battery"
    assert got[("ups.battery_runtime_s", "")].value == 720.0


async def test_poller_reports_error_class_and_partial_trouble(
    agent: SnmpAgent, factory: CollectorFactory
) -> None:
    emitted: list[Reading] = []
    odd = factory.build(
        placed({"host": "127.0.0.1", "port": agent.port, "community": "odd"}, "odd-ups")
    )
    dead = factory.build(
        placed(
            {
                "host": "127.0.0.1",
                "port": free_udp_port(),
                "community": "x",
                "timeout_s": 0.2,
                "retries": 0,
            },
            "dead-ups",
        )
    )
    for collector in (odd, dead):
        async with collector:
            await DevicePoller(collector, interval_s=60, emit=emitted.extend).poll_once()
    health = {(r.device_id, r.metric): r.value for r in emitted if r.metric.startswith("device.")}
    assert health[("odd-ups", "device.error_class")] == "none"
    assert health[("odd-ups", "device.values_invalid")] == 2  # load 4000 %, charge 250 %
    assert int(health[("odd-ups", "device.values_missing")]) >= 1  # no battery temperature
    assert health[("dead-ups", "device.error_class")] == "timeout"
    assert ("dead-ups", "device.values_missing") not in health
