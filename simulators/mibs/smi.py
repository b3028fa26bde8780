"""SMI values as a simulated agent shapes them from the model's floats."""

from __future__ import annotations

from pysnmp.proto.rfc1902 import Gauge32, Integer32, TimeTicks

#: TimeTicks and Counter32 wrap at 2^32, as on a real agent.
WRAP_32 = 2**32


def ticks(seconds: float) -> TimeTicks:
    """Hundredths of a second, wrapped; a time before the start reads 0."""
    return TimeTicks(int(max(seconds, 0.0) * 100) % WRAP_32)


def int32(value: float) -> Integer32:
    """The nearest whole number (MIBs count in whole or tenth units)."""
    return Integer32(round(value))


def gauge32(value: float) -> Gauge32:
    """The nearest whole number, held inside Gauge32's range (a negative reads 0)."""
    return Gauge32(min(max(round(value), 0), WRAP_32 - 1))
