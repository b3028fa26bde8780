"""The trap receiver against real traps sent by net-snmp's `snmptrap` (v1, v2c, v3 authPriv).

Devices are told apart by source address: on Linux all of 127.0.0.0/8 is
loopback, so `snmptrap --clientaddr=127.0.0.N` stands in for device N.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import statistics
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import pytest

from collectors.snmp.traps import (
    TrapReceiver,
    TrapReceiverConfig,
    load_trap_catalog,
    parse_trap_file,
    trap_readings,
)
from dcim.errors import ProfileError
from dcim.inventory import DeviceConfig, PlacedDevice
from dcim.reading import Reading
from tests.support.snmpd import UsmUser, require_binary, send_trap, snmptrap_args

UPS_IP = "127.0.0.2"
PDU_IP = "127.0.0.3"
STRANGER_IP = "127.0.0.9"
TRAP_USER = UsmUser("trapper", "SHA-256", "trap-auth-key1", "AES", "trap-priv-key1")
SENDER_ENGINE = "0x80001f8804757073303031"


def placed(device_id: str, kind: str, host: str, snmp: dict[str, Any]) -> PlacedDevice:
    device = DeviceConfig.model_validate(
        {
            "id": device_id,
            "kind": kind,
            "profile": "ups-mib-rfc1628",
            "snmp": {"host": host, **snmp},
        }
    )
    tags = MappingProxyType({"site": "dc1", "room": "hall", "device": device_id, "kind": kind})
    return PlacedDevice(device, "dc1", "hall", "", "", tags)


DEVICES = [
    placed("ups-1", "ups", UPS_IP, {"community": "poll-ups"}),
    placed(
        "pdu-1",
        "pdu",
        PDU_IP,
        {
            "version": "v3",
            "v3": {
                "user": "trapper",
                "auth_key": "trap-auth-key1",
                "priv_key": "trap-priv-key1",
            },
        },
    ),
]


class Sink:
    """Collects emitted batches and wakes waiters when a matching reading arrives."""

    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self.arrival: list[float] = []
        self._changed = asyncio.Event()

    def __call__(self, batch: Sequence[Reading]) -> None:
        now = time.monotonic()
        for reading in batch:
            self.readings.append(reading)
            self.arrival.append(now)
        self._changed.set()

    async def wait_for(self, count: int, metric: str = "event.trap", within_s: float = 5.0) -> None:
        async with asyncio.timeout(within_s):
            while len(self.of(metric)) < count:
                self._changed.clear()
                await self._changed.wait()

    def of(self, metric: str) -> list[Reading]:
        return [r for r in self.readings if r.metric == metric]


@dataclass
class Traps:
    """The receiver under test, what it emitted, and `snmptrap` aimed at it."""

    receiver: TrapReceiver
    sink: Sink
    snmptrap: str

    def args(
        self,
        trap_oid: str,
        *,
        version: str = "2c",
        community: str = "trap-community",
        source: str = UPS_IP,
        varbinds: Sequence[tuple[str, str, str]] = (),
        v3: UsmUser | None = None,
        enterprise: str = "",
        specific: int = 0,
    ) -> list[str]:
        """The `snmptrap` argv of one trap; by default v2c from the UPS, the right community."""
        return snmptrap_args(
            self.snmptrap,
            self.receiver.address,
            version=version,
            community=community,
            source=source,
            trap_oid=trap_oid,
            varbinds=varbinds,
            v3=v3,
            engine_id=SENDER_ENGINE if v3 is not None else None,
            enterprise=enterprise,
            specific=specific,
        )

    async def send(self, trap_oid: str, **options: Any) -> None:
        await send(self.args(trap_oid, **options))

    async def event(self, trap_oid: str, **options: Any) -> Reading:
        """Send one trap; the one event reading it became."""
        await self.send(trap_oid, **options)
        await self.sink.wait_for(1)
        (event,) = self.sink.of("event.trap")
        return event


@pytest.fixture
def snmptrap() -> str:
    return require_binary("snmptrap", "/usr/bin/snmptrap")


@pytest.fixture
async def traps(snmptrap: str) -> AsyncIterator[Traps]:
    config = TrapReceiverConfig.model_validate(
        {
            "host": "127.0.0.1",
            "port": 0,
            "communities": ["trap-community"],
            "v3_users": [
                {
                    "user": "trapper",
                    "auth_protocol": "sha256",
                    "auth_key": "trap-auth-key1",
                    "priv_protocol": "aes128",
                    "priv_key": "trap-priv-key1",
                }
            ],
            "stats_interval_s": 0.05,
        }
    )
    trap_receiver = TrapReceiver(config, DEVICES)
    sink = Sink()
    await trap_receiver.start()
    task = asyncio.create_task(trap_receiver.run(sink))
    yield Traps(trap_receiver, sink, snmptrap)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def send(args: list[str]) -> None:
    # snmptrap blocks for a few ms; keep the loop (and the receiver) running meanwhile
    await asyncio.to_thread(send_trap, args)


async def test_v2c_ups_on_battery_becomes_an_event_and_readings(traps: Traps) -> None:
    event = await traps.event(
        "1.3.6.1.2.1.33.2.1",
        varbinds=[
            ("1.3.6.1.2.1.33.1.2.3.0", "i", "12"),  # upsEstimatedMinutesRemaining
            ("1.3.6.1.2.1.33.1.2.2.0", "i", "30"),  # upsSecondsOnBattery
        ],
    )
    assert event.device_id == "ups-1"
    assert event.value == "on_battery"
    assert event.tags["trap"] == "upsTrapOnBattery"
    assert event.tags["site"] == "dc1"
    assert event.tags["trap_oid"] == "1.3.6.1.2.1.33.2.1"
    readings = traps.sink.readings
    runtime = [r for r in readings if r.metric == "ups.battery_runtime_s"]
    assert [(r.device_id, r.value, r.unit) for r in runtime] == [("ups-1", 720.0, "s")]
    assert [r.value for r in readings if r.metric == "ups.on_battery_s"] == [30.0]


async def test_v2c_alarm_added_names_the_alarm(traps: Traps) -> None:
    event = await traps.event(
        "1.3.6.1.2.1.33.2.3",
        varbinds=[
            ("1.3.6.1.2.1.33.1.6.2.1.1.4", "i", "4"),  # upsAlarmId.4
            ("1.3.6.1.2.1.33.1.6.2.1.2.4", "o", "1.3.6.1.2.1.33.1.6.3.3"),  # LowBattery
        ],
    )
    assert event.value == "alarm_added"
    assert event.tags["alarm"] == "upsAlarmLowBattery"
    assert event.tags["alarm_id"] == "4"


async def test_v1_apc_on_battery_trap(traps: Traps) -> None:
    event = await traps.event(
        "",
        version="1",
        enterprise="1.3.6.1.4.1.318",
        specific=5,  # PowerNet-MIB upsOnBattery
        varbinds=[
            (
                "1.3.6.1.4.1.318.2.3.3.0",
                "s",
                "UPS: On battery power in response to an input power problem.",
            )
        ],
    )
    assert event.device_id == "ups-1"
    assert event.value == "on_battery"
    assert event.tags["trap"] == "upsOnBattery"
    assert event.tags["detail"].startswith("UPS: On battery power")


async def test_v3_auth_priv_pdu_overload_trap(traps: Traps) -> None:
    event = await traps.event(
        "1.3.6.1.4.1.318.0.276",  # rPDUOverload
        version="3",
        v3=TRAP_USER,
        source=PDU_IP,
        varbinds=[("1.3.6.1.4.1.318.1.1.12.2.3.1.1.4.1", "i", "2")],
    )
    assert event.device_id == "pdu-1"
    assert event.value == "overload"
    assert event.tags["trap"] == "rPDUOverload"
    assert event.tags["phase"] == "2"
    assert event.tags["kind"] == "pdu"


async def test_unknown_trap_is_an_unknown_event(traps: Traps) -> None:
    event = await traps.event("1.3.6.1.4.1.99999.0.42")
    assert event.value == "unknown"
    assert event.tags["trap_oid"] == "1.3.6.1.4.1.99999.0.42"


async def test_wrong_credentials_and_unknown_sources_are_counted_and_dropped(
    traps: Traps, caplog: pytest.LogCaptureFixture
) -> None:
    trap_receiver, sink = traps.receiver, traps.sink
    on_battery = "1.3.6.1.2.1.33.2.1"
    wrong_user_key = UsmUser("trapper", "SHA-256", "not-the-key1", "AES", "trap-priv-key1")
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            await traps.send(on_battery, community="wrong-community")
        await traps.send(on_battery, source=STRANGER_IP)
        await traps.send(on_battery, version="3", v3=wrong_user_key, source=PDU_IP)
        # a good trap last: once it is here, the bad ones before it were handled
        await traps.send(on_battery)
        await sink.wait_for(1)
        await sink.wait_for(3, metric="device.trap_errors")
    assert [r.device_id for r in sink.of("event.trap")] == ["ups-1"]
    assert trap_receiver.errors == {
        ("ups-1", "wrong_community"): 2,
        ("snmp-trap-receiver", "unknown_source"): 1,
        ("pdu-1", "wrong_auth"): 1,
    }
    counted = {(r.device_id, r.tags["reason"]): r.value for r in sink.of("device.trap_errors")}
    assert counted[("ups-1", "wrong_community")] == 2
    assert counted[("pdu-1", "wrong_auth")] == 1
    messages = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(messages) == 3, messages  # the second wrong community is only counted
    assert not any("wrong-community" in m or "not-the-key1" in m for m in messages)


async def test_malformed_packets_do_not_stop_the_receiver(traps: Traps) -> None:
    garbage = [
        b"",
        b"\x00",
        b"\x30\x82\xff\xff",  # SEQUENCE claiming 64 KiB
        b"\x30\x03\x02\x01\x05",  # version 5
        bytes(range(256)),
        b"\x30\x0a\x02\x01\x01\x04\x05hello",  # truncated v2c
        b"\x30" + b"\x80" * 50,
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((UPS_IP, 0))
        for _ in range(30):
            for packet in garbage:
                sock.sendto(packet, traps.receiver.address)
    assert (await traps.event("1.3.6.1.2.1.33.2.1")).value == "on_battery"
    assert traps.receiver.errors[("ups-1", "malformed")] == 30 * len(garbage)


async def test_trap_latency_median_over_50_traps(traps: Traps) -> None:
    """From starting `snmptrap` to the event reading; printed for the report."""
    args = traps.args("1.3.6.1.4.1.318.0.7")
    latencies = []
    for count in range(1, 51):
        started = time.monotonic()
        await send(args)
        await traps.sink.wait_for(count)
        latencies.append(traps.sink.arrival[-1] - started)
    median = statistics.median(latencies)
    print(
        f"trap latency over {len(latencies)}: median {median * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
    )
    assert median < 0.5  # well under any poll interval


def test_shipped_trap_maps_load_and_cover_the_issue() -> None:
    catalog = load_trap_catalog()
    expected = {
        "1.3.6.1.2.1.33.2.1": "on_battery",
        "1.3.6.1.2.1.33.2.2": "self_test_completed",
        "1.3.6.1.2.1.33.2.3": "alarm_added",
        "1.3.6.1.2.1.33.2.4": "alarm_removed",
        "1.3.6.1.4.1.318.0.5": "on_battery",
        "1.3.6.1.4.1.318.0.7": "battery_low",
        "1.3.6.1.4.1.318.0.9": "power_restored",
        "1.3.6.1.4.1.318.0.274": "overload",
        "1.3.6.1.4.1.318.0.276": "overload",
        "1.3.6.1.4.1.318.0.521": "env_alarm",
    }
    for oid, event in expected.items():
        rule = catalog.get(tuple(int(p) for p in oid.split(".")))
        assert rule is not None, oid
        assert rule.event == event


def test_trap_map_with_an_unknown_event_is_rejected() -> None:
    text = "mib: X\ntraps:\n  - {oid: 1.3.6.1.4.1.1.0.1, name: t, event: on_fire}\n"
    with pytest.raises(ProfileError, match=r"bad\.yaml.*on_fire"):
        parse_trap_file(text, "bad.yaml")


def test_test_completed_result_is_looked_up() -> None:
    readings = trap_readings(
        "ups-1",
        {"device": "ups-1"},
        [
            ((1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0), "1.3.6.1.2.1.33.2.2"),
            ((1, 3, 6, 1, 2, 1, 33, 1, 7, 3, 0), 3),
        ],
        load_trap_catalog(),
        1,
    )
    assert readings[0].value == "self_test_completed"
    assert readings[0].tags["result"] == "doneError"


async def test_sender_addresses_numbers_at_once_names_looked_up() -> None:
    from collectors.snmp.traps import _resolve_all

    found = await _resolve_all({"127.0.0.1", "::1", "localhost", "no-such-host.invalid"})
    assert found["127.0.0.1"] == "127.0.0.1"
    assert found["::1"] == "::1"
    assert found["localhost"] in ("127.0.0.1", "::1")
    assert found["no-such-host.invalid"] is None  # its traps count as unknown, logged once
