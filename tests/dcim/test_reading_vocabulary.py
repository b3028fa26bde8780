"""Readings are typed and immutable; every shipped profile speaks the vocabulary."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from collectors.shipped import available_profiles
from collectors.snmp.profile import load_snmp_profile, parse_snmp_profile
from dcim.errors import ProfileError
from dcim.reading import Reading
from dcim.vocabulary import load_vocabulary


def test_reading_is_immutable_and_utc() -> None:
    r = Reading("ups-1", "ups.load_pct", 42.0, "%", 1_700_000_000_123_000_000)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.value = 1.0  # type: ignore[misc]
    assert r.timestamp == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["x" * 300, float("nan")])
def test_reading_refuses_values_that_are_bugs(bad: object) -> None:
    with pytest.raises(ValueError, match=r"ups-1: ups\.load_pct"):
        Reading("ups-1", "ups.load_pct", bad, None, 0)  # type: ignore[arg-type]


def test_vocabulary_names_follow_the_pattern_and_map_to_measurements() -> None:
    vocabulary = load_vocabulary()
    for name, spec in vocabulary.metrics.items():
        group, _, field = name.partition(".")
        assert field, name
        assert name == name.lower(), name
        assert spec.measurement == vocabulary.measurements[group]
        assert spec.type in {"float", "int", "bool", "enum"}, name
        assert spec.description, name
        assert all(isinstance(v, str) for v in spec.values), name  # YAML reads `off` as false
    assert vocabulary.storage("device.up") == ("dcim_self", "up")
    assert vocabulary.storage("ups.load_pct") == ("ups", "load_pct")


@pytest.mark.parametrize("name", available_profiles("snmp"))
def test_every_shipped_profile_loads(name: str) -> None:
    profile = load_snmp_profile(name)
    assert profile.name == name
    vocabulary = load_vocabulary()
    for field in [*profile.scalars, *(c for t in profile.tables for c in t.columns)]:
        spec = vocabulary.get(field.metric)
        if spec.type == "enum":
            assert set(field.enum.values()) <= set(spec.values), field.metric


def test_profile_with_unknown_metric_is_refused_with_its_line() -> None:
    text = "name: x\nkind: ups\nscalars:\n  - metric: ups.load_percent\n    oid: 1.3.6.1\n"
    with pytest.raises(
        ProfileError,
        match=r"scalars\[0\]\.metric: metric 'ups.load_percent' is not in the vocabulary .*\(line 4\)",
    ):
        parse_snmp_profile(text, "x.yaml")
