"""`number_in_text`: ratings that devices send as text with the unit in it.

Raritan PDU2-MIB inletRatedCurrent and overCurrentProtectorRatedCurrent are
DisplayStrings such as "16A"; the profile reads the number inside.
"""

from __future__ import annotations

import pytest

from collectors.snmp.decode import DecodeError, compile_converter
from collectors.snmp.profile import Conversion, load_snmp_profile, parse_snmp_profile
from dcim.errors import ProfileError


def test_the_first_number_in_the_text_is_the_value() -> None:
    rating = compile_converter(Conversion(number_in_text=True, valid_range=(0, 1000)))
    assert rating(b"16A", 1.0, False) == 16.0
    assert rating(b"32 A", 1.0, False) == 32.0
    assert rating(b"6.5A", 1.0, False) == 6.5
    assert rating(b"20A (UL 489)", 1.0, False) == 20.0
    assert rating("63A", 1.0, False) == 63.0
    assert rating(30, 1.0, False) == 30.0  # a firmware that sends a plain integer
    with pytest.raises(DecodeError, match="with a number in it"):
        rating(b"n/a", 1.0, False)
    with pytest.raises(DecodeError, match="outside plausible range"):
        rating(b"4000A", 1.0, False)


def test_without_the_option_text_with_a_unit_is_refused() -> None:
    plain = compile_converter(Conversion())
    with pytest.raises(DecodeError, match="expected a number"):
        plain(b"16A", 1.0, False)


def test_only_numbers_read_a_number_in_text() -> None:
    with pytest.raises(ProfileError, match="number_in_text reads a number"):
        parse_snmp_profile(
            """
name: t
kind: pdu
scalars:
  - {metric: pdu.outlet_on, oid: 1.3.6.1.4.1.1.1.0, type: bool, number_in_text: true}
""",
            "t.yaml",
        )


def test_raritan_ratings_read_the_number_inside_the_text() -> None:
    profile = load_snmp_profile("raritan-pdu2")
    rated = {
        f.metric: f
        for t in profile.tables
        for f in t.columns
        if f.metric in ("pdu.rated_current_a", "pdu.branch_rating_a")
    }
    assert rated["pdu.rated_current_a"].oid == "1.3.6.1.4.1.13742.6.3.3.3.1.7"
    assert rated["pdu.branch_rating_a"].oid == "1.3.6.1.4.1.13742.6.3.4.3.1.5"
    assert all(f.number_in_text for f in rated.values())
