"""`dcim validate` and `dcim run` on what used to slip through or flood the screen:
an unusable state dir, duplicate YAML keys, an error in `defaults:` repeated per
device, duplicates and unknown profiles without a line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dcim.cli import build_parser, main
from dcim.errors import ConfigError
from dcim.inventory import parse_config
from tests.support.smallfs import small_fs

SITE = textwrap.dedent(
    """\
    monitor:
      state_dir: {state_dir}
    defaults:
      poll_interval_s: {interval}
      snmp: {{host: 127.0.0.1, community: public}}
    sites:
      - id: dc1
        rooms:
          - id: hall-a
            devices:
              - {{id: ups-1, kind: ups, profile: ups-mib-rfc1628, snmp: {{port: 1161}}}}
              - {{id: ups-2, kind: ups, profile: {profile}, snmp: {{port: 1162}}}}
              - {{id: ups-3, kind: ups, profile: ups-mib-rfc1628, snmp: {{port: 1163}}}}
    sinks:
      - {{type: file, path: {state_dir}/out.lp}}
    """
)


def write(tmp_path: Path, **values: object) -> Path:
    fields = {"state_dir": tmp_path / "state", "interval": 30, "profile": "ups-mib-rfc1628"}
    fields.update(values)
    path = tmp_path / "site.yaml"
    path.write_text(SITE.format(**fields))
    return path


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "site.yaml")
    return info.value.problems


def test_duplicate_yaml_keys_are_errors_with_both_lines() -> None:
    text = "monitor:\n  log_level: INFO\n  log_level: DEBUG\nsites:\n  - id: dc1\n"
    assert problems_of(text) == [
        "monitor.log_level: key given twice (first at line 2); "
        "YAML would silently keep only the last (line 3)"
    ]


def test_an_error_in_defaults_is_reported_once_at_its_own_line(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, interval=-5).read_text())
    assert problems == [
        "defaults.poll_interval_s: Input should be greater than or equal to 0.1 (line 4)"
    ]


def test_device_values_still_point_at_the_device() -> None:
    text = textwrap.dedent(
        """\
        defaults:
          poll_interval_s: 30
        sites:
          - id: dc1
            rooms:
              - id: hall-a
                devices:
                  - {id: ups-1, kind: ups, profile: p, poll_interval_s: -1, snmp: {host: h, community: c}}
        """
    )
    assert problems_of(text) == [
        "sites[0].rooms[0].devices[0].poll_interval_s: "
        "Input should be greater than or equal to 0.1 (line 8)"
    ]


def test_duplicate_device_ids_and_sink_names_name_their_lines() -> None:
    text = textwrap.dedent(
        """\
        sites:
          - id: dc1
            rooms:
              - id: hall-a
                devices:
                  - {id: ups-1, kind: ups, profile: p, snmp: {host: h, community: c}}
                  - {id: ups-1, kind: ups, profile: p, snmp: {host: h2, community: c}}
        sinks:
          - {type: file, path: a.lp}
          - {type: file, path: b.lp}
        """
    )
    assert problems_of(text) == [
        "sites[0].rooms[0].devices[1].id: device id 'ups-1' is used twice (also at line 6) (line 7)",
        "sinks[1]: sink name 'file' is used twice (also at line 9) (line 10)",
    ]


def test_validate_reports_unknown_profile_and_unusable_state_dir_at_their_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    config = write(tmp_path, state_dir=blocker / "state", profile="no-such-profile")
    assert main(["validate", str(config)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith("2 problem(s):")
    assert err[1].startswith("  device ups-2: profile: ")
    assert err[1].endswith("(line 12)")
    assert err[2] == (
        f"  monitor.state_dir: {blocker / 'state'} cannot be created: {blocker} is a file (line 2)"
    )


def test_validate_and_run_on_a_read_only_state_dir(tmp_path: Path) -> None:
    with small_fs(tmp_path / "ro", 64) as fs:
        if not fs.mounted:
            pytest.skip("needs a tmpfs to remount read-only (root); CI runs as root")
        fs.read_only(True)
        config = write(tmp_path, state_dir=fs.path / "state")
        validate = subprocess.run(
            [sys.executable, "-m", "dcim", "validate", str(config)],
            capture_output=True,
            text=True,
            check=False,
        )
        run = subprocess.run(
            [sys.executable, "-m", "dcim", "run", str(config), "--duration", "5"],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        fs.read_only(False)
    assert validate.returncode == 2
    assert f"monitor.state_dir: {fs.path / 'state'} cannot be created" in validate.stderr
    assert "read-only filesystem" in validate.stderr
    assert run.returncode == 1
    # one line naming the setting, not a traceback
    assert run.stderr.strip().splitlines() == [
        f"dcim: monitor.state_dir: {fs.path / 'state'}: Read-only file system"
    ]


def test_simulate_site_keeps_the_inventory_ports() -> None:
    args = build_parser().parse_args(["simulate", "--site", "x.yaml"])
    assert args.port is None  # None: every device on the port its inventory entry names
    assert build_parser().parse_args(["simulate"]).port is None
