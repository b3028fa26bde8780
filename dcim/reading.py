"""The unit of data that flows from collectors to sinks and the alert engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType

from dcim.clock import wall_clock_ns

Value = float | int | bool | str

#: Longest string value a reading may carry; longer text is a decoding bug, not data.
MAX_STRING_VALUE = 256

EMPTY_TAGS: Mapping[str, str] = MappingProxyType({})


def now_ns() -> int:
    """Wall-clock time in nanoseconds since the epoch: what readings are stamped with."""
    return wall_clock_ns()


@dataclass(frozen=True, slots=True)
class Reading:
    """One typed value of one metric of one device at one instant.

    `ts_ns` is nanoseconds since the Unix epoch, so it is UTC without a tz object
    to carry around; `timestamp` gives the aware datetime. `tags` is usually the
    device's shared, read-only tag mapping (site, room, row, rack, device, kind,
    vendor, model), plus `index`/`label` for table rows.
    """

    device_id: str
    metric: str
    value: Value
    unit: str | None
    ts_ns: int
    tags: Mapping[str, str] = field(default_factory=lambda: EMPTY_TAGS)

    def __post_init__(self) -> None:
        if isinstance(self.value, str) and len(self.value) > MAX_STRING_VALUE:
            msg = (
                f"{self.device_id}: {self.metric}: string value longer than "
                f"{MAX_STRING_VALUE} characters"
            )
            raise ValueError(msg)
        if isinstance(self.value, float) and self.value != self.value:
            msg = f"{self.device_id}: {self.metric}: value is NaN"
            raise ValueError(msg)

    @property
    def timestamp(self) -> datetime:
        """The reading's time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.ts_ns / 1e9, tz=UTC)
