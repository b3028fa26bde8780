"""`dcim walk` recordings of our own simulated devices, replayed by snmpsim, identified, polled.

The small site runs with a hand-driven clock, so nothing moves between the walk,
the replay and the direct poll. Each device is recorded through the production
SNMP client (`dcim walk`'s code, and once the command itself), then its recording
is edited as a device nobody here has seen would differ: the sysObjectID becomes
an unseen one of the same vendor, or, for a UPS-MIB UPS, one of an enterprise no
profile knows. snmpsim (the simulator LibreNMS uses, written by others) serves the
recordings; identification must still choose the device's profile, and polling
the replay must give exactly the readings a poll of the simulator itself gives.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import pytest

from collectors.snmp.client import SnmpHost
from collectors.snmp.collector import SnmpCollector
from collectors.snmp.discovery import discover
from collectors.snmp.plan import plan_profile
from collectors.snmp.profile import load_snmp_profile
from collectors.snmp.record import snmprec_line, walk
from dcim.clock import ManualClock, SimClock
from dcim.inventory import DeviceConfig, PlacedDevice, SnmpConfig, iter_devices, load_config
from simulators.site import Site
from tests.support.snmpsim_server import Snmpsim, start_snmpsim

ROOT = Path(__file__).resolve().parents[2]
SITE_FILE = ROOT / "simulators" / "sites" / "small-site.yaml"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"

#: device -> the sysObjectID its recording gets: unseen models of the same vendor,
#: and (ups-a, a UPS-MIB UPS) an enterprise number no profile or table knows.
UNSEEN: dict[str, str] = {
    "pdu-hall-1-A01-a": "1.3.6.1.4.1.318.1.3.4.977",  # APC, rPDU2 tables
    "pdu-hall-1-A01-b": "1.3.6.1.4.1.13742.6.99",  # Raritan, PDU2-MIB tables
    "crac-hall-1-1": "1.3.6.1.4.1.476.1.99.7",  # Liebert, lgpEnvironmental
    "vesda-hall-1": "1.3.6.1.4.1.318.1.3.88.2",  # APC, universal I/O contacts
    "ups-a": "1.3.6.1.4.1.64999.1.2",  # unknown vendor, standard UPS-MIB only
}

Key = tuple[str, tuple[tuple[str, str], ...]]
_T = TypeVar("_T")


@dataclasses.dataclass
class Recorded:
    site: Site
    snmpsim: Snmpsim
    #: device id -> its SNMP settings on the live simulator
    live: dict[str, SnmpConfig]
    #: device id -> the inventory's profile
    profiles: dict[str, str]


async def record(config: SnmpConfig, sys_object_id: str) -> list[str]:
    """Walk one device through the production client: its snmprec lines."""
    host = SnmpHost()
    lines: list[str] = []
    try:
        session = await host.session("walk", config)
        async for vb in walk(session):
            line = snmprec_line(vb)
            assert line is not None
            if line.startswith(SYS_OBJECT_ID + "|"):
                line = f"{SYS_OBJECT_ID}|6|{sys_object_id}"
            lines.append(line)
    finally:
        host.close()
    return lines


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    """The site serving from its own loop in a thread (the tests' loops come and go)."""
    time = ManualClock(0.0)
    folder = tmp_path_factory.mktemp("recordings")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="site", daemon=True)
    thread.start()

    def in_site(coro: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=120)

    site = Site(load_config(SITE_FILE), clock=SimClock(now_fn=time), seed=7)
    in_site(site.start("127.0.0.1", 0))
    live: dict[str, SnmpConfig] = {}
    profiles: dict[str, str] = {}
    try:
        for placed in iter_devices(site.config):
            device = placed.device
            if device.id not in UNSEEN or device.snmp is None:
                continue
            host, port, community = site.address_of(device.id)
            live[device.id] = SnmpConfig.model_validate(
                {"host": host, "port": port, "community": community, "timeout_s": 5}
            )
            profiles[device.id] = device.profile
            lines = asyncio.run(record(live[device.id], UNSEEN[device.id]))
            assert len(lines) > 10, f"{device.id}: only {len(lines)} objects walked"
            text = "\n".join(lines) + "\n"
            (folder / f"{device.id}.snmprec").write_text(text, encoding="ascii")
        assert set(live) == set(UNSEEN)
        server = start_snmpsim(folder.glob("*.snmprec"), "ups-a")
        try:
            yield Recorded(site, server, live, profiles)
        finally:
            server.stop()
    finally:
        in_site(site.aclose())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


async def poll(device_id: str, profile: str, config: SnmpConfig) -> dict[Key, object]:
    spec = load_snmp_profile(profile)
    device = DeviceConfig.model_validate(
        {"id": device_id, "kind": spec.kind, "profile": profile, "snmp": config.model_dump()}
    )
    placed = PlacedDevice(device, "lab", "", "", "", MappingProxyType({"device": device_id}))
    host = SnmpHost()
    try:
        async with SnmpCollector(placed, plan_profile(spec), host, config) as collector:
            readings = await collector.poll()
    finally:
        host.close()
    return {(r.metric, tuple(sorted(r.tags.items()))): r.value for r in readings}


@pytest.mark.parametrize("device_id", sorted(UNSEEN))
async def test_recording_of_an_unseen_model_is_identified_and_polls_like_the_device(
    recorded: Recorded, device_id: str
) -> None:
    replay = recorded.snmpsim.config(device_id)
    found = await discover(replay, poll=False)
    assert found.profiles[:1] == (recorded.profiles[device_id],), found.reason
    assert found.profile is not None
    from_replay = await poll(device_id, found.profile, replay)
    # the live device runs on a hand-driven clock: nothing moved since the walk
    from_device = await poll(device_id, found.profile, recorded.live[device_id])
    assert from_replay, f"{device_id}: no readings from the replay"
    assert from_replay == from_device


def test_walk_command_writes_what_snmpsim_serves(
    recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dcim.cli import main

    live = recorded.live["pdu-hall-1-A01-a"]
    out = tmp_path / "pdu.snmprec"
    args = ["walk", live.host, "--port", str(live.port), "--output", str(out)]
    assert live.community is not None
    code = main([*args, "--community", live.community.get_secret_value()])
    _, err = capsys.readouterr()
    assert code == 0, err
    lines = out.read_text().splitlines()
    assert f"dcim walk: {len(lines)} objects" in err
    oids = [tuple(int(p) for p in line.split("|", 1)[0].split(".")) for line in lines]
    assert oids == sorted(oids)
    assert len(set(oids)) == len(oids)
    types = {line.split("|")[1] for line in lines}
    assert {"2", "4", "6"} <= types  # integers, strings, the sysObjectID
