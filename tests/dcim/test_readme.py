"""README stays true: it shows the real example config, which validates."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.registry import check_profiles
from dcim.inventory import iter_devices, load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "dcim" / "examples" / "site.yaml"


def test_readme_starts_with_the_two_setup_commands() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```sh") + 1 : lines.index("```sh") + 3]
    assert block[0].startswith("make demo")
    assert block[1].startswith("make test")
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_shows_the_example_config_unchanged() -> None:
    assert EXAMPLE.read_text().rstrip() in (ROOT / "README.md").read_text()


def test_example_config_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DCIM_SNMP_COMMUNITY",
        "DCIM_SNMPV3_AUTH",
        "DCIM_SNMPV3_PRIV",
        "DCIM_INFLUX_PASSWORD",
        "DCIM_INFLUX_TOKEN",
        "DCIM_MQTT_PASSWORD",
        "DCIM_TRAP_COMMUNITY",
        "DCIM_WEBHOOK_KEY",
        "DCIM_ALERTS_TOKEN",
    ):
        monkeypatch.setenv(name, f"value-of-{name}")
    monkeypatch.setenv("DCIM_PAGERDUTY_KEY", "k" * 32)  # an integration key has 32 characters
    monkeypatch.setenv("DCIM_SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/x")
    config = load_config(EXAMPLE)
    devices = list(iter_devices(config))
    assert [d.device.id for d in devices] == ["ups-a1", "meter-hall-a", "ups-a01", "env-a01"]
    assert check_profiles(devices) == []
