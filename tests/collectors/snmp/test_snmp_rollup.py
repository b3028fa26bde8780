"""apc-uio against a real SNMP agent: VESDA stage relays become ONE sensor.smoke_level
(the profile's `rollups`), and a probe that lost communications is a probe status,
never a -1 °C temperature."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import MappingProxyType

import pytest
from pysnmp.proto.rfc1902 import Integer32, OctetString

from collectors.registry import CollectorFactory
from collectors.snmp.profile import parse_snmp_profile
from dcim.errors import ProfileError
from dcim.inventory import DeviceConfig, PlacedDevice
from dcim.reading import Reading, Value
from simulators.mib import OidTable, TableBuilder
from simulators.snmp_agent import SnmpAgent, serve

UIO = (1, 3, 6, 1, 4, 1, 318, 1, 1, 25)
SENSOR, CONTACT = (*UIO, 1, 2, 1), (*UIO, 2, 2, 1)
CLOSED, OPEN, DISABLED = 1, 2, 3


@dataclass
class UioCard:
    """A card's contacts (name -> CurrentState) and probes (name -> (°C, CommStatus))."""

    name: str
    contacts: dict[str, int] = field(default_factory=dict)
    probes: dict[str, tuple[int, int]] = field(default_factory=dict)

    def snapshot(self) -> OidTable:
        t = TableBuilder()
        for n, (label, state) in enumerate(self.contacts.items(), start=1):
            t.cell((*CONTACT, 3), (1, n), OctetString(label))
            t.cell((*CONTACT, 5), (1, n), Integer32(state))
        for port, (label, (temp, comms)) in enumerate(self.probes.items(), start=1):
            t.cell((*SENSOR, 3), (port, 1), OctetString(label))
            t.cell((*SENSOR, 6), (port, 1), Integer32(temp))
            t.cell((*SENSOR, 7), (port, 1), Integer32(-1 if comms != 2 else 40))
            t.cell((*SENSOR, 10), (port, 1), Integer32(comms))
        return t.build()


STAGES = ("VESDA Alert", "VESDA Action", "VESDA Fire 1", "VESDA Fire 2")


@pytest.fixture
def card() -> UioCard:
    return UioCard("uio", contacts=dict.fromkeys(STAGES, OPEN))


@pytest.fixture
async def agent(card: UioCard) -> AsyncIterator[SnmpAgent]:
    agent = await serve({"uio": card}, "127.0.0.1", 0)
    yield agent
    agent.close()


async def poll(agent: SnmpAgent) -> list[Reading]:
    device = DeviceConfig.model_validate(
        {
            "id": "uio-1",
            "kind": "sensor",
            "profile": "apc-uio",
            "snmp": {"host": "127.0.0.1", "port": agent.port, "community": "uio"},
        }
    )
    tags = MappingProxyType({"site": "dc1", "device": "uio-1", "kind": "sensor"})
    factory = CollectorFactory()
    try:
        async with factory.build(PlacedDevice(device, "dc1", "hall", "", "", tags)) as c:
            return await c.poll()
    finally:
        factory.close()


def values(readings: list[Reading], metric: str) -> list[tuple[Value, dict[str, str]]]:
    return [(r.value, dict(r.tags)) for r in readings if r.metric == metric]


@pytest.mark.parametrize(
    ("closed", "level"),
    [
        ((), "normal"),
        (("VESDA Alert",), "alert"),
        (("VESDA Alert", "VESDA Action"), "action"),
        (("VESDA Alert", "VESDA Action", "VESDA Fire 1"), "fire1"),
        (STAGES, "fire2"),
        # the highest closed relay wins, even when a lower one is (mis)wired open
        (("VESDA Fire 1",), "fire1"),
    ],
)
async def test_stage_relays_give_one_smoke_level(
    agent: SnmpAgent, card: UioCard, closed: tuple[str, ...], level: str
) -> None:
    for name in closed:
        card.contacts[name] = CLOSED
    readings = await poll(agent)
    assert [(r.metric, r.value) for r in readings] == [("sensor.smoke_level", level)]
    # the device's reading: no row tags (label, contact) that would split it per relay
    (reading,) = readings
    assert dict(reading.tags) == {"site": "dc1", "device": "uio-1", "kind": "sensor"}


async def test_disabled_relays_say_nothing_and_other_contacts_keep_their_metrics(
    agent: SnmpAgent, card: UioCard
) -> None:
    card.contacts = dict.fromkeys(STAGES, DISABLED)
    card.contacts |= {"Smoke detector": CLOSED, "Rack door": OPEN}
    readings = await poll(agent)
    assert values(readings, "sensor.smoke_level") == []  # no usable stage row: no verdict
    assert [v for v, _ in values(readings, "sensor.smoke_detected")] == [True]
    assert [v for v, _ in values(readings, "sensor.door_open")] == [True]
    card.contacts["VESDA Action"] = CLOSED
    assert [v for v, _ in values(await poll(agent), "sensor.smoke_level")] == ["action"]


async def test_a_probe_that_lost_communications_is_unplugged_not_minus_one(
    agent: SnmpAgent, card: UioCard
) -> None:
    card.contacts = {}
    card.probes = {"Rack Inlet": (-1, 3), "Rack Outlet": (31, 2), "Port 3": (-1, 1)}
    readings = await poll(agent)
    temps = {tags["position"]: v for v, tags in values(readings, "sensor.temp_c")}
    assert temps == {"outlet": 31.0}  # -1 is "invalid reading", never -1 °C
    status = {tags["label"]: v for v, tags in values(readings, "sensor.status")}
    # notInstalled (port 3, no probe) gives nothing; commsLost is an unplugged probe
    assert status == {"Rack Inlet": "unplugged", "Rack Outlet": "normal"}


def test_rollup_is_validated_against_the_label_rules_and_the_vocabulary() -> None:
    base = """
name: t
kind: sensor
tables:
  - name: x
    label_oid: 1.3.6.1.1
    label_rules: [{match: a, tags: {_stage: alert}}]
    rollups:
      - {metric: %s, oid: 1.3.6.1.2, select_tag: %s, order: [%s], otherwise: normal}
"""
    parse_snmp_profile(base % ("sensor.smoke_level", "_stage", "alert"), "ok.yaml")
    with pytest.raises(ProfileError, match="set by no label_rules"):
        parse_snmp_profile(base % ("sensor.smoke_level", "stage", "alert"), "t.yaml")
    with pytest.raises(ProfileError, match=r"\['red'\] are not values of sensor.smoke_level"):
        parse_snmp_profile(base % ("sensor.smoke_level", "_stage", "red"), "t.yaml")
    with pytest.raises(ProfileError, match="enum metric"):
        parse_snmp_profile(base % ("sensor.temp_c", "_stage", "alert"), "t.yaml")
