"""Which readings a rule looks at (scope), and how a reading names its series.

Location and kind come from the inventory tags every reading carries; table rows
add tags such as phase, branch, outlet or position, which make a series distinct.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import Field, field_validator

from dcim.configmodel import Strict
from dcim.reading import Reading

LOCATION_TAGS = ("site", "room", "row", "rack", "device")
#: Tags that tell the rows of one device's table apart (vocabulary: table rows).
ROW_TAGS = ("inlet", "phase", "branch", "outlet", "line", "position", "label", "index", "alarm")
LABEL_TAGS = (*LOCATION_TAGS, "kind", *ROW_TAGS)

Place = Literal["site", "room", "row", "rack", "device"]

Patterns = list[str]


def _as_list(value: object) -> object:
    if isinstance(value, str):
        return [value]
    return value


class Scope(Strict):
    """Glob patterns per location level, device kind and any tag; all given must match."""

    site: Patterns | None = None
    room: Patterns | None = None
    row: Patterns | None = None
    rack: Patterns | None = None
    device: Patterns | None = None
    kind: Patterns | None = None
    tags: dict[str, Patterns] = Field(default_factory=dict)

    @field_validator("site", "room", "row", "rack", "device", "kind", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return _as_list(value)

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_lists(cls, value: object) -> object:
        if isinstance(value, dict):
            return {key: _as_list(item) for key, item in value.items()}
        return value

    def _pairs(self) -> list[tuple[str, Patterns]]:
        pairs = [
            (name, patterns)
            for name in ("site", "room", "row", "rack", "device", "kind")
            if (patterns := getattr(self, name)) is not None
        ]
        pairs.extend(self.tags.items())
        return pairs

    def matches(self, tags: Mapping[str, str]) -> bool:
        """True when every given pattern list has a match in `tags` (a missing tag never matches)."""
        for name, patterns in self._pairs():
            value = tags.get(name)
            if value is None or not any(fnmatchcase(value, p) for p in patterns):
                return False
        return True

    @property
    def is_everything(self) -> bool:
        return not self._pairs()

    @property
    def uses_row_tags(self) -> bool:
        """Whether matching depends on more than the device (so per-device caching is unsafe)."""
        return any(name not in (*LOCATION_TAGS, "kind") for name, _ in self._pairs())


def series_key(reading: Reading) -> str:
    """`device=pdu-1/branch=2`: one device's one table row (or the device itself)."""
    tags = reading.tags
    parts = [f"device={reading.device_id}"]
    parts.extend(f"{name}={tags[name]}" for name in ROW_TAGS if name in tags)
    return "/".join(parts)


def labels_of(reading: Reading) -> dict[str, str]:
    """The tags that place a reading: location, kind and table-row tags."""
    tags = reading.tags
    labels = {name: tags[name] for name in LABEL_TAGS if name in tags}
    labels.setdefault("device", reading.device_id)
    return labels


def group_key(labels: Mapping[str, str], levels: list[str]) -> str | None:
    """`site=par1/room=hall-a` for group-by levels; None when a level is missing."""
    parts = []
    for level in levels:
        value = labels.get(level)
        if value is None:
            return None
        parts.append(f"{level}={value}")
    return "/".join(parts)


def row_suffix(labels: Mapping[str, str]) -> str:
    """`phase=L1` (the table-row part of a series), or ''."""
    return "/".join(f"{name}={labels[name]}" for name in ROW_TAGS if name in labels)
