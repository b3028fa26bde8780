"""InfluxQL text for panels and variables, from vocabulary metric names.

InfluxQL is the one query language InfluxDB 1.x, 2.x (through a DBRP mapping)
and 3.x all answer, so one dashboard set serves all three. Measurement and
field come from the vocabulary (`ups.load_pct` -> `"ups"."load_pct"`): a
metric name that is not in the vocabulary fails the build, not the dashboard.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from dcim.vocabulary import load_vocabulary

#: Inventory levels, outermost first; each is a tag on every reading and a template variable.
SCOPE: tuple[str, ...] = ("site", "room", "row", "rack", "device")


def ident(name: str) -> str:
    """A quoted identifier (`row` and friends would otherwise clash with keywords)."""
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def literal(value: str) -> str:
    """A single-quoted string literal."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def tag_is(tag: str, value: str) -> str:
    return f"{ident(tag)} = {literal(value)}"


def scope_filter(levels: Sequence[str] = SCOPE) -> str:
    """`"site" =~ /^$site$/ AND ...`: an All value of `.*` also matches a missing tag."""
    return " AND ".join(f"{ident(level)} =~ /^${level}$/" for level in levels)


def where(*conditions: str, levels: Sequence[str] = SCOPE) -> str:
    """The time filter, the inventory scope, then any further conditions."""
    return " AND ".join(("$timeFilter", scope_filter(levels), *conditions))


def since(lookback_s: float) -> str:
    """`time > now() - 90s`: the present, whatever the time picker says."""
    return f"time > now() - {max(1, math.ceil(lookback_s))}s"


def where_now(lookback_s: float, *conditions: str, levels: Sequence[str] = SCOPE) -> str:
    """The lookback relative to now, the inventory scope, then any further conditions."""
    return " AND ".join((since(lookback_s), scope_filter(levels), *conditions))


def rooms_are(rooms: Sequence[str]) -> str:
    """`"room" =~ /^(hall-1|hall-2)$/`: a fixed set of rooms (one rule class)."""
    names = "|".join(re.escape(room).replace("/", "\\/") for room in rooms)
    return f'"room" =~ /^({names})$/'


def alias(by: Sequence[str]) -> str:
    """Series names from the GROUP BY tags: `$tag_device $tag_line`."""
    return " ".join(f"$tag_{tag}" for tag in by)


@dataclass(frozen=True, slots=True)
class Stored:
    """Where a vocabulary metric lives in InfluxDB, and its unit there."""

    metric: str
    measurement: str
    field: str
    unit: str | None


def stored(metric: str) -> Stored:
    """Measurement, field and unit of a vocabulary metric (ProfileError if unknown)."""
    spec = load_vocabulary().get(metric)
    return Stored(metric, spec.measurement, spec.field, spec.unit)


def select(
    fields: str, source: str, condition: str, group: Sequence[str] = (), fill: str = ""
) -> str:
    """`SELECT fields FROM source WHERE condition [GROUP BY ...] [fill(...)]`."""
    parts = ["SELECT", fields, "FROM", source, "WHERE", condition]
    if group:
        parts += ["GROUP BY", ", ".join(group)]
    if fill:
        parts.append(f"fill({fill})")
    return " ".join(parts)


def by_time(*tags: str) -> list[str]:
    """GROUP BY terms: one bucket per dashboard interval, then the tags."""
    return ["time($__interval)", *(ident(tag) for tag in tags)]


def series(
    metric: str,
    agg: str = "mean",
    by: Sequence[str] = ("device",),
    conditions: Sequence[str] = (),
    name: str | None = None,
) -> str:
    """One value per interval and series: for time series, heat maps and state timelines."""
    s = stored(metric)
    label = f" AS {ident(name)}" if name else ""
    fields = f"{agg}({ident(s.field)}){label}"
    return select(fields, ident(s.measurement), where(*conditions), by_time(*by), "none")


def latest(
    metric: str,
    by: Sequence[str] = ("device",),
    conditions: Sequence[str] = (),
    agg: str = "last",
    name: str | None = None,
) -> str:
    """One value per series over the whole time range: for stats and tables."""
    s = stored(metric)
    label = f" AS {ident(name)}" if name else ""
    fields = f"{agg}({ident(s.field)}){label}"
    return select(fields, ident(s.measurement), where(*conditions), [ident(tag) for tag in by])


def measurements_in(query: str) -> set[str]:
    """Measurements a query reads (every quoted name after FROM), for test bookkeeping."""
    found: set[str] = set()
    for part in query.split(" FROM ")[1:]:
        token = part.lstrip("(").split(" ", 1)[0]
        if token.startswith('"') and token.endswith('"'):
            found.add(token[1:-1])
        elif token.startswith("/"):
            found.update(token.strip("/^$()").split("|"))
    return found


def now_value(
    metric: str,
    lookback_s: float,
    by: Sequence[str] = ("device",),
    *,
    conditions: Sequence[str] = (),
    agg: str = "last",
    name: str | None = None,
) -> str:
    """One value per series within the lookback (last, max...): for stats and tables."""
    s = stored(metric)
    label = f" AS {ident(name)}" if name else ""
    fields = f"{agg}({ident(s.field)}){label}"
    return select(
        fields, ident(s.measurement), where_now(lookback_s, *conditions), [ident(t) for t in by]
    )


def count_now(
    metric: str,
    lookback_s: float,
    matches: str,
    *,
    by: Sequence[str] = ("device",),
    conditions: Sequence[str] = (),
    agg: str = "last",
) -> str:
    """How many series (devices, racks...) match now, and how many reported at all.

    Columns `matching` and `reporting`: `matching` is null when none matches but
    something reported (a value mapping shows it as 0); no row at all means nothing
    reported within the lookback (NO DATA), never a reassuring zero.
    `matches` is a condition on `"v"`, the series' value, e.g. `"v" = 'battery'`.
    """
    s = stored(metric)
    inner = select(
        f'{agg}({ident(s.field)}) AS "v"',
        ident(s.measurement),
        where_now(lookback_s, *conditions),
        [ident(t) for t in by],
    )
    return count_matching([(inner, matches)], inner)


def count_matching(hits: Sequence[tuple[str, str]], every: str) -> str:
    """`matching` (rows of each `(query, condition on "v")`) and `reporting` (rows of `every`)."""
    parts = [f'(SELECT "v" AS "m" FROM ({query}) WHERE {cond})' for query, cond in hits]  # noqa: S608 - InfluxQL of vocabulary names
    parts.append(f'(SELECT "v" AS "r" FROM ({every}))')  # noqa: S608 - InfluxQL of vocabulary names
    return f'SELECT count("m") AS "matching", count("r") AS "reporting" FROM {", ".join(parts)}'  # noqa: S608 - InfluxQL of vocabulary names


def raw(metric: str, by: Sequence[str] = ("device",), conditions: Sequence[str] = ()) -> str:
    """Every stored point in range, per series: a state timeline keeps every transition
    (a per-interval last() would hide a 30 s transfer to battery on a 7-day view)."""
    s = stored(metric)
    return select(ident(s.field), ident(s.measurement), where(*conditions), [ident(t) for t in by])
