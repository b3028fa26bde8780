"""One thermal pack for ASHRAE A1-A4: each room judged by its own class.

The class is the room's `ashrae_class` in the inventory, else `alerts.ashrae_class`;
the old per-class pack names keep working as that default.
"""

from __future__ import annotations

import logging

import pytest

from dcim.alerts.config import AlertsConfig
from dcim.alerts.engine import RuleEngine
from dcim.alerts.rules import load_pack
from dcim.alerts.service import device_infos
from dcim.clock import ManualClock
from dcim.errors import ConfigError
from dcim.inventory import Config, iter_devices, parse_config
from dcim.reading import Reading

SITE = """
sites:
  - id: par1
    rooms:
      - id: hall-a
        rows:
          - id: r1
            racks:
              - id: a01
                devices: [{id: env-a, kind: sensor, profile: rack-env-json, mqtt: {}}]
      - id: hall-b
        ashrae_class: A3
        rows:
          - id: r1
            racks:
              - id: b01
                devices: [{id: env-b, kind: sensor, profile: rack-env-json, mqtt: {}}]
mqtt: {url: "mqtt://127.0.0.1:1883"}
"""


def inventory(alerts: str = "") -> Config:
    return parse_config(SITE + alerts, "test")


def inlet(config: Config, device: str, value: float, clock: ManualClock) -> Reading:
    placed = next(p for p in iter_devices(config) if p.device.id == device)
    tags = {**placed.tags, "position": "inlet"}
    return Reading(device, "sensor.temp_c", value, "degC", int(clock() * 1e9), tags)


def worst(engine: RuleEngine, device: str) -> str | None:
    found = [
        i.severity.value
        for i in engine.open_incidents
        if i.rule == "ashrae.inlet_temp" and i.labels.get("device") == device
    ]
    return max(found, default=None)


@pytest.mark.parametrize(
    ("alerts", "hall_a"),
    [
        ("", "critical"),  # hall-a names no class: A1, whose allowable maximum is 32 °C
        ("alerts: {ashrae_class: A2}\n", "warning"),  # A2 allows up to 35 °C
    ],
)
def test_each_room_is_judged_by_its_own_class(alerts: str, hall_a: str) -> None:
    config = inventory(alerts)
    clock = ManualClock()
    engine = RuleEngine(load_pack("thermal-ashrae"), clock=clock, devices=device_infos(config))
    for _ in range(4):  # past the rule's for_s
        for device in ("env-a", "env-b"):
            engine.observe(inlet(config, device, 33.5, clock))
        clock.advance(60)
        engine.tick()
    # 33.5 °C: past A1's allowable 32 (critical), inside A3's 40 (recommended 27: warning)
    assert worst(engine, "env-a") == hall_a
    assert worst(engine, "env-b") == "warning"


def test_an_old_class_pack_name_is_the_one_pack_with_that_default_class(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="dcim.alerts.config"):
        settings = AlertsConfig.model_validate({"packs": ["thermal-ashrae-a2", "power"]})
    assert settings.packs == ["thermal-ashrae", "power"]
    assert settings.ashrae_class == "A2"
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "thermal-ashrae-a2 is now the pack thermal-ashrae with alerts.ashrae_class: A2" in (
        warning
    )


def test_two_old_class_packs_are_refused_naming_what_replaced_them() -> None:
    with pytest.raises(ConfigError, match=r"one pack now \(thermal-ashrae\).*ashrae_class"):
        inventory("alerts: {packs: [thermal-ashrae-a1, thermal-ashrae-a3]}\n")
