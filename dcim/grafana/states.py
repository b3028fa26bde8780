"""Thresholds and state colours shared by the views: one meaning, one colour everywhere.

Temperature and humidity bands are ASHRAE TC 9.9 class A1 (recommended
18-27 °C, dew point -9..15 °C, up to 60 % RH; allowable 15-32 °C, 8-80 % RH,
dew point up to 17 °C). A step colours values from its value up.
"""

from __future__ import annotations

from dcim.grafana.model import Threshold, ValueText
from dcim.grafana.panels import BLUE, DARK_RED, GREEN, ORANGE, RED, YELLOW, bool_states

# --- thresholds -----------------------------------------------------------------

#: Rack inlet air: blue below allowable, yellow/orange in allowable only, red above allowable.
ASHRAE_INLET_C = (
    Threshold(BLUE),
    Threshold(YELLOW, 15.0),
    Threshold(GREEN, 18.0),
    Threshold(ORANGE, 27.0),
    Threshold(RED, 32.0),
)
ASHRAE_DEW_POINT_C = (
    Threshold(RED),
    Threshold(YELLOW, -12.0),
    Threshold(GREEN, -9.0),
    Threshold(ORANGE, 15.0),
    Threshold(RED, 17.0),
)
ASHRAE_HUMIDITY_PCT = (
    Threshold(RED),
    Threshold(GREEN, 8.0),
    Threshold(ORANGE, 60.0),
    Threshold(RED, 80.0),
)
UPS_LOAD_PCT = (Threshold(GREEN), Threshold(ORANGE, 80.0), Threshold(RED, 90.0))
RUNTIME_S = (Threshold(RED), Threshold(ORANGE, 300.0), Threshold(GREEN, 900.0))
CHARGE_PCT = (Threshold(RED), Threshold(ORANGE, 50.0), Threshold(GREEN, 90.0))
#: Breakers carry 80 % continuously (NEC 210.20): past that a branch is near trip.
BRANCH_PCT = (Threshold(GREEN), Threshold(ORANGE, 80.0), Threshold(RED, 100.0))
#: Headroom of one feed if the other fails: below zero a feed loss overloads it.
HEADROOM_PCT = (Threshold(RED), Threshold(ORANGE, 0.0), Threshold(GREEN, 20.0))
PUE = (Threshold(GREEN), Threshold(ORANGE, 1.5), Threshold(RED, 2.0))
#: Typical aspirating-detector factory levels (%/m): Alert, Action, Fire 1, Fire 2.
VESDA_PCT_M = (
    Threshold(GREEN),
    Threshold(YELLOW, 0.08),
    Threshold(ORANGE, 0.14),
    Threshold(RED, 0.2),
    Threshold(DARK_RED, 2.0),
)
ALARM_COUNT = (Threshold(GREEN), Threshold(RED, 1.0))

# --- value mappings ----------------------------------------------------------------

UPS_SOURCE = (
    ValueText("normal", "Utility", GREEN),
    ValueText("battery", "ON BATTERY", RED),
    ValueText("bypass", "Bypass", ORANGE),
    ValueText("booster", "Boost", YELLOW),
    ValueText("reducer", "Buck", YELLOW),
    ValueText("none", "NO OUTPUT", DARK_RED),
    ValueText("other", "Other", YELLOW),
)
BATTERY_STATUS = (
    ValueText("normal", "Normal", GREEN),
    ValueText("low", "LOW", ORANGE),
    ValueText("depleted", "DEPLETED", RED),
    ValueText("unknown", "Unknown", YELLOW),
)
SMOKE_LEVEL = (
    ValueText("normal", "Normal", GREEN),
    ValueText("alert", "Alert", YELLOW),
    ValueText("action", "Action", ORANGE),
    ValueText("fire1", "FIRE 1", RED),
    ValueText("fire2", "FIRE 2", DARK_RED),
)
CRAC_MODE = (
    ValueText("cooling", "Cooling", GREEN),
    ValueText("standby", "Standby", BLUE),
    ValueText("idle", "Idle", BLUE),
    ValueText("dehumidifying", "Dehumidifying", GREEN),
    ValueText("humidifying", "Humidifying", GREEN),
    ValueText("heating", "Heating", YELLOW),
    ValueText("off", "OFF", ORANGE),
    ValueText("fault", "FAULT", RED),
    ValueText("unknown", "Unknown", YELLOW),
)
LOAD_STATE = (
    ValueText("normal", "Normal", GREEN),
    ValueText("low", "Low", BLUE),
    ValueText("near_overload", "Near overload", ORANGE),
    ValueText("overload", "OVERLOAD", RED),
)
ALERT_SEVERITY = (
    ValueText("critical", "Critical", RED),
    ValueText("warning", "Warning", ORANGE),
    ValueText("info", "Info", BLUE),
)
UP = bool_states("Up", GREEN, "DOWN", RED)
LEAK = bool_states("LEAK", RED, "Dry", GREEN)
DOOR = bool_states("Open", ORANGE, "Closed", GREEN)
SMOKE = bool_states("SMOKE", RED, "Clear", GREEN)
ALARM = bool_states("ALARM", RED, "OK", GREEN)
TRIPPED = bool_states("TRIPPED", RED, "Closed", GREEN)
