"""The shipped systemd units pass `systemd-analyze verify` and keep their hardening.

`systemd-analyze verify` runs offline (no systemd as PID 1 needed). It checks that
ExecStart= binaries exist, so the copies verified here point at this checkout's
`dcim` instead of /opt/dcim/bin/dcim; nothing else is changed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import require_binary

UNITS = Path(__file__).resolve().parents[3] / "packaging" / "systemd"
INSTALLED = "/opt/dcim/bin/dcim"


def verify(folder: Path, *units: str) -> subprocess.CompletedProcess[str]:
    tool = require_binary("systemd-analyze", "/usr/bin/systemd-analyze", "apt-get install systemd")
    return subprocess.run(
        [tool, "verify", "--man=no", *(str(folder / u) for u in units)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.fixture
def units(tmp_path: Path) -> Path:
    folder = tmp_path / "units"
    shutil.copytree(UNITS, folder)
    dcim = str(Path(sys.executable).with_name("dcim"))
    for unit in ("dcim.service", "dcim@.service"):
        path = folder / unit
        text = path.read_text()
        assert INSTALLED in text
        path.write_text(text.replace(INSTALLED, dcim))
    return folder


def test_units_and_the_port_162_drop_in_verify_cleanly(units: Path) -> None:
    done = verify(units, "dcim.service", "dcim@1-2.service")
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr  # warnings (unknown keys...) count as failures


def test_verify_catches_a_broken_unit(units: Path) -> None:
    drop_in = units / "dcim.service.d" / "trap-port-162.conf"
    drop_in.write_text(drop_in.read_text() + "AmbientCapabilitys=CAP_NET_RAW\n")
    assert "Unknown key 'AmbientCapabilitys'" in verify(units, "dcim.service").stderr


def settings(path: Path) -> list[str]:
    return [
        line.strip()
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith(("#", "["))
    ]


@pytest.mark.parametrize("unit", ["dcim.service", "dcim@.service"])
def test_units_are_notify_type_with_watchdog_and_hardening(unit: str) -> None:
    lines = settings(UNITS / unit)
    for wanted in (
        "Type=notify",
        "WatchdogSec=60",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "DynamicUser=yes",
        "User=dcim",
        "StateDirectory=dcim",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
        "Environment=DCIM_CONFIG=/etc/dcim/dcim.yaml",
    ):
        assert wanted in lines, wanted
    assert not any("CAP_NET_BIND_SERVICE" in line for line in lines)
    run = next(line for line in lines if line.startswith("ExecStart="))
    assert run == (
        f"ExecStart={INSTALLED} run --shard %I" if "@" in unit else f"ExecStart={INSTALLED} run"
    )


def test_only_the_drop_in_grants_the_trap_port_capability() -> None:
    lines = settings(UNITS / "dcim.service.d" / "trap-port-162.conf")
    assert lines == [
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
    ]


def test_the_template_instance_names_the_shard() -> None:
    """`dcim@1-2` is shard 1/2: %I unescapes '-' to '/', which `--shard` parses."""
    from dcim.shard import Shard

    tool = require_binary("systemd-escape", "/usr/bin/systemd-escape", "apt-get install systemd")
    escaped = subprocess.run(
        [tool, "1/2"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert escaped == "1-2"
    unescaped = subprocess.run(
        [tool, "--unescape", escaped], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert Shard.parse(unescaped) == Shard(1, 2)
