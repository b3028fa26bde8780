"""The unit of data that flows from collectors to sinks and the alert engine."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import NoReturn

from dcim.clock import wall_clock_ns

Value = float | int | bool | str

#: Longest string value a reading may carry; longer text is a decoding bug, not data.
MAX_STRING_VALUE = 256

EMPTY_TAGS: Mapping[str, str] = MappingProxyType({})


class TagSet(dict[str, str]):
    """A reading's tags: read-only, and remembering their line-protocol text once encoded.

    Collectors build one per device and per table row and hand the same object out poll
    after poll, so a sink escapes and sorts each tag set once in its lifetime instead of
    once per reading. A bounded cache could not hold them all: 5,000 rack PDUs carry
    about 175,000 of them. Any other mapping still works as tags (the encoder caches it
    by content).
    """

    __slots__ = ("encoded",)

    def __init__(self, *args: Mapping[str, str] | Iterable[tuple[str, str]], **kwargs: str) -> None:
        super().__init__(*args, **kwargs)
        #: Line-protocol text of these tags (`,k=v... `), set by the first encoder.
        self.encoded: str | None = None

    def _read_only(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("a reading's tags are read-only")

    __setitem__ = _read_only
    __delitem__ = _read_only
    __ior__ = _read_only
    clear = _read_only
    pop = _read_only
    popitem = _read_only
    setdefault = _read_only
    update = _read_only

    def __repr__(self) -> str:
        return f"TagSet({dict.__repr__(self)})"


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
