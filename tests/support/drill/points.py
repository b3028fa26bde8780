"""Ground truth for the drill: points as (measurement, tags, field, ms) keys, from the file
sink's line protocol and from InfluxDB, and the comparison between the two."""

from __future__ import annotations

import json
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import http

#: One stored value: measurement, sorted tag pairs, field key, timestamp in ms.
Key = tuple[str, tuple[tuple[str, str], ...], str, int]


def _split(text: str, sep: str) -> list[str]:
    """Split on `sep` outside double quotes and not after a backslash."""
    parts, current, quoted, escaped = [], [], False, False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            quoted = not quoted
        elif char == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    return text.replace("\\,", ",").replace("\\ ", " ").replace("\\=", "=").replace("\\\\", "\\")


def parse_line(line: str) -> list[tuple[Key, str]]:
    """The keys of one line of line protocol (one per field), each with its raw value."""
    series = _split(line, " ")
    head, ts = series[0], series[-1]
    fields = " ".join(series[1:-1])
    measurement, *tag_parts = _split(head, ",")
    pairs = (_unescape(part).split("=", 1) for part in tag_parts)
    tags = tuple(sorted((name, value) for name, value in pairs))
    keys = []
    for field in _split(fields, ","):
        name, _, value = field.partition("=")
        keys.append(((_unescape(measurement), tags, _unescape(name), int(ts)), value))
    return keys


def read_truth(path: Path) -> Counter[Key]:
    """Every point the file sink wrote, with how many times it was written."""
    counts: Counter[Key] = Counter()
    if not path.exists():
        return counts
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.strip():
            counts.update(key for key, _ in parse_line(line))
    return counts


def read_influx(url: str, db: str, start_ms: int, end_ms: int) -> set[Key]:
    """Every point InfluxDB holds between two instants (all measurements)."""
    query = f"SELECT * FROM /.*/ WHERE time >= {start_ms}ms AND time <= {end_ms}ms GROUP BY *"  # noqa: S608 - InfluxQL of two ints
    params = urllib.parse.urlencode({"q": query, "db": db, "epoch": "ms"})
    status, body = http("POST", f"{url}/query?{params}", timeout=30)
    if status != 200:
        raise RuntimeError(f"influx query: HTTP {status}: {body[:300]!r}")
    keys: set[Key] = set()
    for result in json.loads(body).get("results", []):
        for series in result.get("series", []):
            tags = tuple(sorted((k, v) for k, v in series.get("tags", {}).items() if v != ""))
            columns = series["columns"]
            for values in series["values"]:
                row = dict(zip(columns, values, strict=True))
                ts = int(row.pop("time"))
                keys.update(
                    (series["name"], tags, field, ts)
                    for field, value in row.items()
                    if value is not None
                )
    return keys


@dataclass(frozen=True, slots=True)
class Tally:
    produced: int
    stored: int
    lost: list[Key]
    duplicated: int
    #: Keys the file sink wrote more than once.
    twice: list[Key]

    def row(self) -> str:
        return f"{self.produced} / {self.stored} / {len(self.lost)} / {self.duplicated}"


def tally(truth: Counter[Key], influx: set[Key], start_ms: int, end_ms: int) -> Tally:
    """File sink (truth) against InfluxDB for the points stamped in [start_ms, end_ms]."""
    window = {k: n for k, n in truth.items() if start_ms <= k[3] <= end_ms}
    stored = [k for k in window if k in influx]
    lost = sorted(k for k in window if k not in influx)
    duplicated = sum(n - 1 for n in window.values() if n > 1)
    twice = sorted(k for k, n in window.items() if n > 1)
    return Tally(len(window), len(stored), lost, duplicated, twice)
