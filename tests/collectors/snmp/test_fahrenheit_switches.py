"""Several profiles of one device, each switching °F by its own scalar.

An APC AP9340 EMU serves its probes twice: in the mem group (unit scalar
memSensorsStatusSysTempUnits) and in the older ems group (emsStatusSysTempUnits).
Composed, each profile's fields keep their own switch; a fixed-°F field of a third
profile stays fixed. The per-poll decision is exercised end to end by the recording
tests/profiles/recordings/apc-emu-ap9340-fahrenheit; this checks the plan.
"""

from __future__ import annotations

from collectors.snmp.plan import plan_profile
from collectors.snmp.profile import compose_profiles, parse_snmp_profile
from collectors.snmp.types import parse_oid

FIRST = """
name: first
kind: sensor
priority: 10
fahrenheit_when: {oid: 1.3.6.1.4.1.99.1.0, values: [2]}
scalars:
  - {metric: sensor.temp_c, oid: 1.3.6.1.4.1.99.2.0, fahrenheit: true}
  - {metric: sensor.humidity_pct, oid: 1.3.6.1.4.1.99.3.0}
"""
SECOND = """
name: second
kind: sensor
priority: 5
fahrenheit_when: {oid: 1.3.6.1.4.1.98.1.0, values: [1]}
tables:
  - name: probes
    columns:
      - {metric: sensor.temp_c, oid: 1.3.6.1.4.1.98.2.1.1, fahrenheit: true}
"""
FIXED = """
name: fixed
kind: sensor
scalars:
  - {metric: sensor.dew_point_c, oid: 1.3.6.1.4.1.97.1.0, fahrenheit: true}
"""


def test_each_composed_profile_keeps_its_own_fahrenheit_switch() -> None:
    profiles = [
        parse_snmp_profile(text, f"{n}.yaml") for n, text in enumerate((FIRST, SECOND, FIXED))
    ]
    composed = compose_profiles(profiles)
    assert composed.fahrenheit_when is None  # the switches travel with the fields
    plan = plan_profile(composed)
    assert plan.fahrenheit_switches == (
        (parse_oid("1.3.6.1.4.1.99.1.0"), frozenset({2})),
        (parse_oid("1.3.6.1.4.1.98.1.0"), frozenset({1})),
    )
    first_temp, first_rh, fixed_dew = (s.output for s in plan.scalars)
    assert first_temp.fahrenheit_switch == 0
    assert first_rh.fahrenheit_switch is None  # not a temperature
    assert fixed_dew.fahrenheit_switch is None  # always °F: converted whatever the switches
    assert fixed_dew.convert(212, 1.0, False) == 100.0
    (second_temp,) = (c.output for t in plan.tables for c in t.columns)
    assert second_temp.fahrenheit_switch == 1
    # the switch scalars are fetched with the poll's GETs
    asked = {oid for batch in plan.get_batches for oid in batch}
    assert {oid for oid, _ in plan.fahrenheit_switches} <= asked
    # a field follows its switch only: raw 212 is °F when told, °C otherwise
    assert first_temp.convert(212, 1.0, True) == 100.0
    assert first_temp.convert(21, 1.0, False) == 21.0


def test_a_single_profile_keeps_its_profile_wide_switch() -> None:
    plan = plan_profile(parse_snmp_profile(FIRST, "first.yaml"))
    assert plan.fahrenheit_switches == ((parse_oid("1.3.6.1.4.1.99.1.0"), frozenset({2})),)
    assert plan.scalars[0].output.fahrenheit_switch == 0
