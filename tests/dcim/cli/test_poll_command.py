"""`dcim poll DEVICE --config FILE --explain`: the plan, then one poll of an inventory device."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from dcim.clock import SimClock
from simulators.modbus_server import demo_units
from simulators.modbus_server import serve as serve_modbus
from simulators.snmp_agent import serve
from simulators.ups import UpsModel
from simulators.ups_mib import UpsDevice

pytestmark = pytest.mark.slow


async def dcim(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "dcim",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_poll_inventory_devices_with_their_plans(tmp_path: Path) -> None:
    agent = await serve([UpsDevice("ups1", UpsModel(rated_va=6000.0, rated_w=5400.0), SimClock())])
    modbus = await serve_modbus(demo_units(), "127.0.0.1", 0)
    config = tmp_path / "site.yaml"
    config.write_text(f"""
sites:
  - id: dc1
    rooms:
      - id: hall
        devices:
          - {{id: ups-1, kind: ups, profile: ups-mib-rfc1628,
             snmp: {{host: 127.0.0.1, port: {agent.port}, community: ups1}}}}
          - {{id: crac-1, kind: crac, profile: sim-crac,
             modbus: {{host: 127.0.0.1, port: {modbus.port}, unit_id: 1}}}}
""")
    try:
        code, out = await dcim("poll", "ups-1", "--config", str(config), "--explain")
        assert code == 0, out
        assert "GET 1:" in out
        assert "GETBULK walk output" in out
        assert "ups.output_source" in out
        assert "normal" in out
        code, out = await dcim("poll", "crac-1", "--config", str(config), "--explain")
        assert code == 0, out
        assert "profile sim-crac" in out
        assert "crac.supply_air_temp_c" in out
        code, out = await dcim("poll", "nope", "--config", str(config))
        assert code == 2
        assert "no device 'nope'" in out
    finally:
        agent.close()
        await modbus.close()
