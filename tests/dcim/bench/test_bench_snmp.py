"""`dcim bench snmp` keeps working: the monitor phase end to end at a tiny scale, the report.

Speed is not asserted here (the bench measures it, as ratios); these tests only make
sure every figure is produced and nothing is lost on the way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from dcim.bench.exporter import write_exporter_config
from dcim.bench.fleet import fleet_config
from dcim.bench.report import ROWS, markdown
from dcim.cli import main
from tests.support.servers import find_binary


def _need(name: str, default: str) -> None:
    if find_binary(name, default) is not None:
        return
    reason = f"{name} not found ({default}); apt-get install {name}"
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{reason}; CI is set, so a missing server is a failure")
    pytest.skip(reason)


@pytest.mark.slow
def test_monitor_phase_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _need("victoria-metrics", "/usr/bin/victoria-metrics")
    _need("mosquitto", "/usr/sbin/mosquitto")
    out = tmp_path / "bench.json"
    argv = ["bench", "snmp", "--devices", "20", "--interval", "2", "--duration", "4"]
    argv += ["--phases", "monitor", "--event-rate", "3", "--repeat", "2", "--json", str(out)]

    assert main(argv) == 0

    result = json.loads(out.read_text())
    for key in ("commit", "date", "machine", "cpus", "python", "devices", "ratios"):
        assert key in result
    assert len(result["rounds"]) == 2
    assert result["phases"] == result["rounds"][0]["phases"]
    placement = result["cpu_placement"]
    for round_ in result["rounds"]:
        monitor = round_["phases"]["monitor"]
        assert "error" not in monitor, monitor.get("error")
        assert monitor["failed_polls"] == 0
        assert set(monitor["cpu_busy_by_cpu"]) == {str(c) for c in os.sched_getaffinity(0)}
        # the monitor ran on the CPU of the process under test, the fleet elsewhere
        assert monitor["cpus_allowed"] == placement["measured"]
        if len(os.sched_getaffinity(0)) > 1:
            assert placement["pinned"]
            assert set(placement["measured"]).isdisjoint(placement["others"])
    monitor = result["phases"]["monitor"]
    assert "error" not in monitor, monitor.get("error")
    assert monitor["devices"] == 20
    assert monitor["polls"] > 0
    assert monitor["failed_polls"] == 0
    assert monitor["points_landed_in_window"] > 0
    assert monitor["points_lost"] == 0
    assert monitor["traps_sent"] > 0
    assert monitor["mqtt_sent"] > 0
    assert monitor["events_sent"] == monitor["traps_sent"] + monitor["mqtt_sent"]
    assert monitor["events_decided"] == monitor["events_sent"]
    assert monitor["events_notified"] == monitor["events_sent"]
    assert monitor["decision_p50_s"] is not None
    assert monitor["decision_p50_s"] > 0

    table = markdown([result])
    for label, _ in ROWS:
        assert label in table
    assert f"{monitor['events_sent']} / {monitor['events_sent']} / " in table

    capsys.readouterr()
    assert main(["bench", "report", str(out), "--markdown"]) == 0
    assert capsys.readouterr().out == table


def test_report_shows_missing_phases_as_dashes() -> None:
    result: dict[str, Any] = {"devices": 5, "phases": {"exporter": {"error": "boom"}}}

    table = markdown([result, result])

    assert table.startswith("| | 5 devices, v2c, every 0 s | 5 devices, v2c, every 0 s |")
    assert "| failed polls | - | - |" in table


def test_report_shows_every_round_of_a_repeated_run() -> None:
    def round_(polls: int, ratio: float) -> dict[str, Any]:
        monitor = {"polls": polls, "expected_polls": 100, "failed_polls": 0}
        return {
            "phases": {"monitor": monitor},
            "ratios": {"monitor_vs_exporter_polls_per_cpu_s": ratio},
        }

    result: dict[str, Any] = {"devices": 5, "rounds": [round_(99, 1.25), round_(100, 1.5)]}

    table = markdown([result])

    assert "5 devices, v2c, every 0 s, 2 rounds" in table
    assert "| 1.25× · 1.50× |" in table
    assert "| 99 / 100 (99.0%), 0 failed · 100 / 100 (100.0%), 0 failed |" in table


def test_exporter_modules_carry_v3_credentials(tmp_path: Path) -> None:
    # the fast agent's own bench credentials (simulators.fast_agent.BENCH_V3_*)
    spec = {"max_repetitions": 25, "retries": 1, "timeout_s": 2, "snmp_version": "v3"}
    path = tmp_path / "snmp.yml"

    write_exporter_config(path, 20, spec)

    import yaml

    modules = yaml.safe_load(path.read_text())
    ups = modules["ups-00019"]
    assert ups["version"] == 3
    assert ups["auth"] == {
        "security_level": "authPriv",
        "username": "bench",
        "password": "bench-auth-key",
        "auth_protocol": "SHA256",
        "priv_protocol": "AES",
        "priv_password": "bench-priv-key",
        "context_name": "c-ups-00019",
    }
    config = fleet_config(20, [1161], 30.0, 25, "v3")
    device = config["sites"][0]["rooms"][0]["devices"][0]
    assert device["snmp"]["v3"]["context_name"] == device["snmp"]["community"]
