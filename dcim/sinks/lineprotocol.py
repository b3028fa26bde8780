"""Lean InfluxDB line-protocol encoder, byte-identical to influxdb-client's `Point`.

Timestamps are milliseconds (write with `precision=ms`). Escaping rules copy the
observable behaviour of `influxdb_client.Point.to_line_protocol()`, which the tests
check byte for byte; the encoder is ours so per-reading cost stays low.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from dcim.reading import Reading, TagSet, Value
from dcim.vocabulary import Vocabulary, load_vocabulary

_ESCAPE_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_ESCAPE_KEY = str.maketrans(
    {",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"}
)
_ESCAPE_STRING = str.maketrans({'"': r"\"", "\\": r"\\"})

#: Distinct tag sets kept escaped; beyond this the cache restarts (label churn).
_TAG_CACHE_LIMIT = 10_000


def escape_tags(tags: Mapping[str, str]) -> str:
    """`,k=v,...` sorted by key plus the separating space, as influxdb-client writes it."""
    parts = []
    for key, value in sorted(tags.items()):
        k = key.translate(_ESCAPE_KEY)
        v = value.translate(_ESCAPE_KEY)
        if v.endswith("\\"):
            v += " "  # influxdb-client's guard so a trailing backslash cannot eat the space
        if k and v:
            parts.append(f"{k}={v}")
    return "," + ",".join(parts) + " " if parts else " "


def format_value(value: Value) -> str | None:
    """The field value as influxdb-client writes it; None for a non-finite float (skipped)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        s = str(value)
        return s[:-2] if s.endswith(".0") else s
    return '"' + value.translate(_ESCAPE_STRING) + '"'


class LineEncoder:
    """Encodes readings, caching escaped measurement/field keys and tag sets."""

    def __init__(self, vocabulary: Vocabulary | None = None) -> None:
        self._vocabulary = vocabulary or load_vocabulary()
        self._series: dict[str, tuple[str, str]] = {}
        # Keyed by the tag items, not id(): a mapping can be mutated or its id reused.
        self._tags: dict[tuple[tuple[str, str], ...], str] = {}

    def _series_of(self, metric: str) -> tuple[str, str]:
        measurement, field = self._vocabulary.storage(metric)
        entry = (measurement.translate(_ESCAPE_MEASUREMENT), field.translate(_ESCAPE_KEY) + "=")
        self._series[metric] = entry
        return entry

    def _tags_of(self, key: tuple[tuple[str, str], ...], tags: Mapping[str, str]) -> str:
        if len(self._tags) >= _TAG_CACHE_LIMIT:
            self._tags.clear()
        text = self._tags[key] = escape_tags(tags)
        return text

    def line(self, r: Reading) -> str | None:
        """One line without newline; None when influxdb-client would emit nothing."""
        series = self._series.get(r.metric) or self._series_of(r.metric)
        tag_set = r.tags
        tags = getattr(tag_set, "encoded", None)
        if tags is None:
            if type(tag_set) is TagSet:
                # escaped once for the tag set's lifetime (collectors reuse them every poll)
                tags = tag_set.encoded = escape_tags(tag_set)
            else:
                key = tuple(tag_set.items())
                tags = self._tags.get(key)
                if tags is None:
                    tags = self._tags_of(key, tag_set)
        value = format_value(r.value)
        if value is None:
            return None
        return f"{series[0]}{tags}{series[1]}{value} {r.ts_ns // 1_000_000}"

    def encode(self, r: Reading) -> bytes:
        """One reading as line protocol (no trailing newline); b"" if not representable."""
        text = self.line(r)
        return b"" if text is None else text.encode()

    def encode_batch(self, readings: Iterable[Reading]) -> tuple[bytes, int]:
        """(newline-joined body, number of lines) for a batch."""
        lines = [t for t in map(self.line, readings) if t is not None]
        return "\n".join(lines).encode(), len(lines)


_encoders: dict[int, tuple[Vocabulary, LineEncoder]] = {}


def _encoder_for(vocabulary: Vocabulary) -> LineEncoder:
    # The entry holds the vocabulary itself, so its id() cannot be reused while cached.
    entry = _encoders.get(id(vocabulary))
    if entry is None or entry[0] is not vocabulary:
        entry = _encoders[id(vocabulary)] = (vocabulary, LineEncoder(vocabulary))
    return entry[1]


def encode_reading(r: Reading, vocabulary: Vocabulary) -> bytes:
    """One reading as line protocol with a millisecond timestamp, no trailing newline."""
    return _encoder_for(vocabulary).encode(r)


def encode_batch(readings: Iterable[Reading], vocabulary: Vocabulary) -> bytes:
    """Readings as newline-separated line protocol (non-finite floats are skipped)."""
    return _encoder_for(vocabulary).encode_batch(readings)[0]
