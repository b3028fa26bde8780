"""How enum and boolean values read on a wall screen; their colours come from the rules.

Texts are fixed here; the colour of each value is its severity in the loaded state
rule (`thresholds.RuleColours.state_colour`), green when no rule objects to it,
neutral for values that say nothing (unknown, other).
"""

from __future__ import annotations

from dcim.grafana.model import ValueText
from dcim.grafana.thresholds import GREEN, NEUTRAL, RED, RuleColours

TEXTS: dict[str, tuple[tuple[str, str], ...]] = {
    "ups.output_source": (
        ("normal", "Utility"),
        ("battery", "ON BATTERY"),
        ("bypass", "Bypass"),
        ("booster", "Boost"),
        ("reducer", "Buck"),
        ("none", "NO OUTPUT"),
        ("other", "Other"),
    ),
    "ups.battery_status": (
        ("normal", "Normal"),
        ("low", "LOW"),
        ("depleted", "DEPLETED"),
        ("unknown", "Unknown"),
    ),
    "sensor.smoke_level": (
        ("normal", "Normal"),
        ("alert", "Alert"),
        ("action", "Action"),
        ("fire1", "FIRE 1"),
        ("fire2", "FIRE 2"),
    ),
    "crac.operating_mode": (
        ("cooling", "Cooling"),
        ("standby", "Standby"),
        ("idle", "Idle"),
        ("dehumidifying", "Dehumidifying"),
        ("humidifying", "Humidifying"),
        ("heating", "Heating"),
        ("off", "OFF"),
        ("fault", "FAULT"),
        ("unknown", "Unknown"),
    ),
    "pdu.phase_load_state": (
        ("normal", "Normal"),
        ("low", "Low"),
        ("near_overload", "Near overload"),
        ("overload", "OVERLOAD"),
    ),
    "sensor.leak_detected": (("true", "LEAK"), ("false", "Dry")),
    "sensor.door_open": (("true", "Open"), ("false", "Closed")),
    "sensor.smoke_detected": (("true", "SMOKE"), ("false", "Clear")),
    "pdu.branch_tripped": (("true", "TRIPPED"), ("false", "Closed")),
}
#: Values that say nothing about the equipment's health.
UNINFORMATIVE = frozenset({"unknown", "other"})
#: Monitoring reachability: a device down is the critical `device.down` (stale) rule.
UP = (ValueText("true", "Up", GREEN), ValueText("false", "DOWN", RED))
#: The severity column of the alert views: colour by severity and nothing else.
ALERT_SEVERITY = (
    ValueText("critical", "Critical", RED),
    ValueText("warning", "Warning", "orange"),
    ValueText("info", "Info", "blue"),
)


def mappings(colours: RuleColours, metric: str) -> tuple[ValueText, ...]:
    """Text and rule colour of every value of an enum or boolean metric."""
    return tuple(
        ValueText(
            value,
            text,
            colours.state_colour(metric, value, NEUTRAL if value in UNINFORMATIVE else GREEN),
        )
        for value, text in TEXTS[metric]
    )
