"""Longer history for the device page, read from the InfluxDB sink the monitor writes to.

InfluxQL over `/query` (InfluxDB 1.x; InfluxDB 2.x answers it too through its
v1-compatible API once the bucket has a DBRP mapping, as the Grafana dashboards
need anyway). One request per page refresh: every measurement the device writes,
`mean(*)` per time bucket, grouped by tag set, about POINTS buckets over the range.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp

from dcim.inventory import InfluxSinkConfig
from dcim.vocabulary import load_vocabulary
from dcim.web.live import PLACEMENT_TAGS, SeriesKey

log = logging.getLogger(__name__)

#: Buckets per range: one point per ~2 SVG units of a sparkline.
POINTS = 240
TIMEOUT_S = 10.0


class HistoryError(Exception):
    """InfluxDB could not answer; the message says why (shown on the page)."""


def _ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def build_query(device_id: str, measurements: Iterable[str], range_s: float) -> str:
    step = max(1, math.ceil(range_s / POINTS))
    # every identifier and string is quoted and escaped (_ident, _string): no injection
    statements = [
        f'SELECT mean(*) FROM {_ident(m)} WHERE "device" = {_string(device_id)} '  # noqa: S608
        f"AND time > now() - {int(range_s)}s GROUP BY time({step}s), * fill(none)"
        for m in sorted(set(measurements))
    ]
    return "; ".join(statements)


async def read_history(
    sink: InfluxSinkConfig,
    device_id: str,
    metrics: Iterable[str],
    base_tags: Mapping[str, str],
    range_s: float,
) -> dict[SeriesKey, list[tuple[float, float]]]:
    """(metric, row tags) -> [(time s, mean value)] over the last `range_s` seconds."""
    vocabulary = load_vocabulary()
    wanted = set(metrics)
    field_of: dict[tuple[str, str], str] = {}
    for metric in wanted:
        measurement, field = vocabulary.storage(metric)
        field_of[(measurement, field)] = metric
    if not field_of:
        return {}
    query = build_query(device_id, {m for m, _ in field_of}, range_s)
    params = {"q": query, "epoch": "s"}
    headers: dict[str, str] = {}
    auth = None
    if sink.api == "v1":
        params["db"] = sink.database or ""
        if sink.retention_policy:
            params["rp"] = sink.retention_policy
        if sink.username:
            password = sink.password.get_secret_value() if sink.password else ""
            auth = aiohttp.BasicAuth(sink.username, password)
    else:
        params["db"] = sink.bucket or ""
        if sink.token is not None:
            headers["Authorization"] = f"Token {sink.token.get_secret_value()}"
    url = sink.url.rstrip("/") + "/query"
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                url,
                params=params,
                headers=headers,
                auth=auth,
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
            ) as response,
        ):
            body: Any = await response.json(content_type=None)
            if response.status != 200:
                raise HistoryError(f"InfluxDB {sink.name}: HTTP {response.status}: {body}")
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
        raise HistoryError(
            f"InfluxDB {sink.name} ({sink.url}): {exc or type(exc).__name__}"
        ) from None
    return _series(body, field_of, base_tags)


def _series(
    body: Any, field_of: Mapping[tuple[str, str], str], base_tags: Mapping[str, str]
) -> dict[SeriesKey, list[tuple[float, float]]]:
    out: dict[SeriesKey, list[tuple[float, float]]] = {}
    for result in body.get("results", []) if isinstance(body, dict) else []:
        if "error" in result:
            raise HistoryError(f"InfluxDB: {result['error']}")
        for series in result.get("series", []):
            measurement = series.get("name", "")
            tags = series.get("tags") or {}
            extras = tuple(
                sorted(
                    (k, v)
                    for k, v in tags.items()
                    if v and k not in PLACEMENT_TAGS and base_tags.get(k) != v
                )
            )
            columns = series.get("columns", [])
            for position, column in enumerate(columns):
                if not column.startswith("mean_"):
                    continue
                metric = field_of.get((measurement, column.removeprefix("mean_")))
                if metric is None:
                    continue
                points = [
                    (float(row[0]), float(row[position]))
                    for row in series.get("values", [])
                    if row[position] is not None
                ]
                if points:
                    out.setdefault((metric, extras), []).extend(points)
    return out
