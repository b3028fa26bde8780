"""`dcim demo` (what `make demo` runs) works with no external server, on every protocol."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_demo_polls_snmp_modbus_and_mqtt_devices_into_a_file(tmp_path: Path) -> None:
    out = tmp_path / "demo.lp"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dcim",
            "demo",
            "--duration",
            "9",
            "--interval",
            "1.5",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = out.read_text().splitlines()
    measurements = {line.split(",", 1)[0] for line in lines}
    assert {"ups", "crac", "meter", "sensor", "dcim_self"} <= measurements
    # every protocol delivered: SNMPv3 UPS, Modbus CRAC and meter, MQTT rack sensors
    for device in ("ups-1", "ups-mb", "crac-1", "meter-1", "env-r01", "env-r02"):
        assert any(f"device={device}," in line for line in lines), device
    assert "weak SNMP security" not in result.stderr  # the demo itself uses SNMPv3 authPriv
    final = result.stdout.rsplit("dcim demo:", 1)[0]
    for header in ("ups", "crac", "meter", "sensor", "alerts firing:"):
        assert header in final
    assert f"line protocol in {out}" in result.stdout
