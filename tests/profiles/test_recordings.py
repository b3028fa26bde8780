"""Profiles proven on recordings written from vendor MIBs, for lines no capture covers.

tests/profiles/recordings/<name>.snmprec is a small recording written from the MIB's
object definitions (snmprec: `OID|type|value`); <name>.yaml names the profiles
identification must choose and a few readings the poll must give, as
`metric{tag=value,...}: value`, or `null` where the device's sentinel (an unplugged
probe, "not measured") must give no reading. The values exercise scaling and a sentinel.
One snmpsim serves them all (community = file name); identification and the poll
run through the production client, as for the captures of real devices.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from collectors.snmp.client import SnmpHost
from collectors.snmp.collector import SnmpCollector
from collectors.snmp.discovery import discover
from collectors.snmp.plan import plan_profile
from collectors.snmp.profile import load_snmp_profile
from dcim.inventory import DeviceConfig, PlacedDevice
from dcim.reading import Reading, Value
from tests.support.snmpsim_server import Snmpsim, start_snmpsim

RECORDINGS = Path(__file__).parent / "recordings"
NAMES = sorted(path.stem for path in RECORDINGS.glob("*.snmprec"))
#: `pdu.phase_current_a{unit=1,phase=2}`: a metric and the tags that pick one reading.
SELECTOR = re.compile(r"^(?P<metric>[a-z_]+\.[a-z0-9_]+)(?:\{(?P<tags>[^}]*)\})?$")


class RecordingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profiles: list[str] = Field(min_length=1)
    #: selector -> value; None: the row holds a sentinel and must give no reading.
    expect: dict[str, Value | None] = Field(min_length=1)


@pytest.fixture(scope="module")
def snmpsim() -> Iterator[Snmpsim]:
    server = start_snmpsim(RECORDINGS.glob("*.snmprec"), NAMES[0])
    yield server
    server.stop()


async def _poll(server: Snmpsim, name: str, profile: str) -> list[Reading]:
    config = server.config(name)
    spec = load_snmp_profile(profile)
    device = DeviceConfig.model_validate(
        {"id": name, "kind": spec.kind, "profile": profile, "snmp": config.model_dump()}
    )
    placed = PlacedDevice(device, "lab", "", "", "", MappingProxyType({"device": name}))
    host = SnmpHost()
    try:
        async with SnmpCollector(placed, plan_profile(spec), host, config) as collector:
            return await collector.poll()
    finally:
        host.close()


def _pick(readings: list[Reading], selector: str) -> list[Reading]:
    found = SELECTOR.match(selector)
    assert found, f"bad selector {selector!r}"
    tags = dict(
        part.strip().split("=", 1) for part in (found["tags"] or "").split(",") if part.strip()
    )
    return [
        r
        for r in readings
        if r.metric == found["metric"] and all(r.tags.get(k) == v for k, v in tags.items())
    ]


@pytest.mark.parametrize("name", NAMES)
async def test_recording_is_identified_and_read(snmpsim: Snmpsim, name: str) -> None:
    spec = RecordingSpec.model_validate(
        yaml.safe_load((RECORDINGS / f"{name}.yaml").read_text(encoding="utf-8"))
    )
    found = await discover(snmpsim.config(name), poll=False)
    assert list(found.profiles) == spec.profiles, found.reason
    readings = await _poll(snmpsim, name, "+".join(spec.profiles))
    assert any(v is not None for v in spec.expect.values()), "expect at least one value"
    for selector, want in spec.expect.items():
        hits = _pick(readings, selector)
        if want is None:
            assert not hits, f"{selector}: a sentinel gave {hits}"
            continue
        assert len(hits) == 1, f"{selector}: {len(hits)} readings: {hits}"
        got = hits[0].value
        if isinstance(want, bool | str):
            assert got == want, selector
        else:
            assert not isinstance(got, bool | str), selector
            assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-6), (selector, got, want)


@pytest.mark.parametrize("name", NAMES)
def test_recording_is_in_oid_order(name: str) -> None:
    """snmpsim answers GETNEXT/GETBULK by position in the file: records out of OID
    order end a walk early (endOfMibView), which would hide readings."""
    oids = [
        tuple(int(part) for part in line.split("|", 1)[0].split("."))
        for line in (RECORDINGS / f"{name}.snmprec").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    assert oids == sorted(oids), "sort the records by OID"
    assert len(set(oids)) == len(oids), "an OID is recorded twice"
