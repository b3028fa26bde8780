"""The one exponential backoff: doubling, its ceiling, reset, jitter bounds."""

from __future__ import annotations

import pytest

from dcim.backoff import Backoff


def test_delays_double_up_to_the_ceiling_and_reset() -> None:
    backoff = Backoff(1.0, 5.0)
    assert not backoff.failing
    assert [backoff.next_delay() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff.failing
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_grow_doubles_what_the_next_wait_reads() -> None:
    backoff = Backoff(0.5, 3.0)
    assert backoff.delay == 0.5
    assert backoff.grow() == 1.0
    assert backoff.grow() == 2.0
    assert backoff.grow() == 3.0
    assert backoff.delay == 3.0


def test_jitter_stays_within_its_fraction() -> None:
    backoff = Backoff(10.0, 10.0, jitter=0.2)
    delays = [backoff.next_delay() for _ in range(200)]
    assert all(8.0 <= d <= 12.0 for d in delays)
    assert len(set(delays)) > 1  # spread, not one value


def test_a_ceiling_below_the_first_delay_is_the_first_delay() -> None:
    assert Backoff(2.0, 1.0).max_s == 2.0
    with pytest.raises(ValueError, match="positive"):
        Backoff(0.0, 1.0)
