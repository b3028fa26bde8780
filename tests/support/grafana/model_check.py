"""Checks a dashboard document against Grafana's own dashboard model.

The model is the grafana-foundation-sdk's generated Python types (Grafana 11.6
schema, panel plugins registered). Two checks, because the SDK's decoder is
lenient by design:

1. round trip: decode, encode, and require every key we wrote to come back
   with the same value - a key Grafana's model does not know is dropped, and
   reported;
2. types: every decoded attribute must match its annotation (str, int,
   enum values, literals, nested model classes).

Datasource queries (panel `targets`, annotation `target`s) are datasource
plugin specific and open in Grafana's schema; the SDK has no InfluxDB query
type, so those are checked by running them against InfluxDB instead.
"""

from __future__ import annotations

import enum
import json
import re
import types
import typing
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

#: Paths whose content belongs to a datasource plugin, not to the dashboard model.
OPEN_PATHS = (
    re.compile(r"^\.panels\[\d+\]\.targets\[\d+\]$"),
    re.compile(r"^\.annotations\.list\[\d+\]\.target$"),
)

register_default_plugins()


def problems(doc: dict[str, Any]) -> list[str]:
    """Everything in `doc` that Grafana's dashboard model lacks or types differently."""
    model = Dashboard.from_json(doc)
    back = json.loads(json.dumps(model, cls=JSONEncoder))
    found: list[str] = []
    _compare(doc, back, "", found)
    _check_types(model, "", found)
    return found


def _is_open(path: str) -> bool:
    return any(p.match(path) for p in OPEN_PATHS)


def _compare(ours: Any, theirs: Any, path: str, found: list[str]) -> None:
    if _is_open(path):
        return
    if isinstance(ours, dict):
        if not isinstance(theirs, dict):
            found.append(f"{path}: object came back as {type(theirs).__name__}")
            return
        for key, value in ours.items():
            if _is_open(f"{path}.{key}"):
                continue
            if key not in theirs:
                found.append(f"{path}.{key}: not in Grafana's model")
            else:
                _compare(value, theirs[key], f"{path}.{key}", found)
    elif isinstance(ours, list):
        if not isinstance(theirs, list) or len(ours) != len(theirs):
            found.append(f"{path}: list came back different")
            return
        for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            _compare(a, b, f"{path}[{index}]", found)
    elif ours != theirs:
        found.append(f"{path}: {ours!r} came back as {theirs!r}")


def _is_model(value: object) -> bool:
    return type(value).__module__.startswith("grafana_foundation_sdk.models") and hasattr(
        value, "to_json"
    )


def _check_types(obj: object, path: str, found: list[str]) -> None:
    hints = typing.get_type_hints(type(obj))
    for name, hint in hints.items():
        value = getattr(obj, name, None)
        if value is None:
            continue
        problem = _mismatch(value, hint, f"{path}.{name}")
        if problem:
            found.append(problem)


def _mismatch(value: Any, hint: Any, path: str) -> str | None:
    """None when `value` fits `hint`, else what is wrong (recursing into models)."""
    if _is_model(value):
        inner: list[str] = []
        _check_types(value, path, inner)
        if inner:
            return "; ".join(inner)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint in (Any, object) or isinstance(hint, typing.TypeVar):
        return None
    if origin in (typing.Union, types.UnionType):
        results = [_mismatch(value, arg, path) for arg in args]
        return None if any(r is None for r in results) else results[0]
    if origin is typing.Literal:
        return None if value in args else f"{path}: {value!r} not one of {args}"
    if origin is list:
        if not isinstance(value, list):
            return f"{path}: expected a list, got {value!r}"
        for index, item in enumerate(value):
            problem = _mismatch(item, args[0] if args else Any, f"{path}[{index}]")
            if problem:
                return problem
        return None
    if origin is dict:
        return None if isinstance(value, dict) else f"{path}: expected an object"
    if isinstance(hint, type):
        if isinstance(value, dict) and hasattr(hint, "from_json"):
            # the SDK leaves some nested models (transformations) undecoded
            return _mismatch(hint.from_json(value), hint, path)
        if issubclass(hint, enum.Enum):
            allowed = {member.value for member in hint}
            raw = value.value if isinstance(value, enum.Enum) else value
            return None if raw in allowed else f"{path}: {raw!r} not one of {sorted(allowed)}"
        if hint is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif hint is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, hint)
        return None if ok else f"{path}: {value!r} is not {hint.__name__}"
    return None
