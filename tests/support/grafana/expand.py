"""Grafana's InfluxQL variable interpolation, for running panel queries outside Grafana.

`$var`/`${var}`/`[[var]]` become the selected value, regex-escaped as Grafana
does for variables used in `=~ /^$var$/`; "All" becomes the variable's
allValue. `$timeFilter` and `$__interval` get fixed test values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

VARIABLE = re.compile(r"\$\{(\w+)\}|\[\[(\w+)\]\]|\$(\w+)")
#: Names Grafana itself defines for InfluxQL queries and aliases.
BUILTINS = {
    "__all",
    "timeFilter",
    "__interval",
    "__interval_ms",
    "__range",
    "__from",
    "__to",
    "col",
    "__url_time_range",  # data links: the time range of the clicked dashboard
}
ALIAS_PREFIXES = ("tag_",)


def used_variables(text: str) -> set[str]:
    return {next(g for g in m.groups() if g) for m in VARIABLE.finditer(text)}


def strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a JSON document, with its path."""
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings(value, f"{path}[{index}]")


def selection(dashboard: Mapping[str, Any], chosen: Mapping[str, str]) -> dict[str, str]:
    """Values for every template variable: `chosen`, else the default (All -> allValue)."""
    values: dict[str, str] = {}
    for var in dashboard["templating"]["list"]:
        name = var["name"]
        if name in chosen:
            values[name] = re.escape(chosen[name])
            continue
        current = var.get("current", {}).get("value")
        if current == "$__all" or current is None:
            values[name] = var.get("allValue", ".*")
        else:
            values[name] = re.escape(str(current))
    return values


def expand(query: str, values: Mapping[str, str], interval: str = "5s") -> str:
    fixed = {"timeFilter": "time > now() - 1h", "__interval": interval}

    def one(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        if name in fixed:
            return fixed[name]
        if name not in values:
            raise KeyError(f"query uses ${name}, which the dashboard does not define")
        return values[name]

    return VARIABLE.sub(one, query)
