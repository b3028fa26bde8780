"""YAML loading that remembers where each value came from (line numbers for errors)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

Path = tuple[str | int, ...]
T = TypeVar("T")


class YamlSourceError(Exception):
    """The text is not valid YAML (or not a valid document); the message carries the line.

    `problems` holds each problem on its own, as (line or None, `path: message`).
    """

    def __init__(self, message: str, problems: list[tuple[int | None, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems if problems is not None else [(None, message)]


def _walk(
    node: yaml.Node, path: Path, lines: dict[Path, int], duplicates: list[tuple[int, str]]
) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[object, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if isinstance(key_node, yaml.ScalarNode) and key != "<<":
                if key in seen:
                    where = format_path((*path, key))
                    duplicates.append(
                        (
                            line,
                            f"{where}: key given twice (first at line {seen[key]}); "
                            "YAML would silently keep only the last",
                        )
                    )
                else:
                    seen[key] = line
            lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines, duplicates)
            # keep the key's own line: errors about a value read best at its key
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines, duplicates)


def load_yaml_with_lines(text: str, source: str) -> tuple[Any, dict[Path, int]]:
    """Parse `text`; return the data and a map from data path to 1-based line.

    A key given twice in one mapping is an error (YamlSourceError naming both lines):
    YAML loaders keep the last silently, so one of two settings would be ignored.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "unknown line"
        problem = getattr(exc, "problem", None) or str(exc)
        msg = f"{source}: {where}: invalid YAML: {problem}"
        line = mark.line + 1 if mark is not None else None
        raise YamlSourceError(msg, [(line, f"invalid YAML: {problem}")]) from None
    lines: dict[Path, int] = {}
    duplicates: list[tuple[int, str]] = []
    if node is not None:
        _walk(node, (), lines, duplicates)
    if duplicates:
        texts = [f"{message} (line {line})" for line, message in duplicates]
        located: list[tuple[int | None, str]] = list(duplicates)
        raise YamlSourceError(f"{source}: " + "; ".join(texts), located)
    return data, lines


def line_of(lines: dict[Path, int], path: Path) -> int | None:
    """Line of `path`, or of its nearest ancestor that the file has."""
    probe = tuple(path)
    while probe:
        if probe in lines:
            return lines[probe]
        probe = probe[:-1]
    return None


def format_path(path: Path) -> str:
    """`('sites', 0, 'rooms', 1)` -> `sites[0].rooms[1]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def validate_yaml(
    text: str,
    source: str,
    validate: Callable[[Any], T],
    *,
    drop: Collection[object] = (),
) -> T:
    """Parse `text` and `validate` the data (a pydantic model's `model_validate`).

    YamlSourceError lists every problem as `path: message (line N)`. `drop` names the
    location parts pydantic adds that are not in the file (a union member's tag).
    """
    data, lines = load_yaml_with_lines(text, source)
    try:
        return validate(data)
    except ValidationError as exc:
        problems = []
        located: list[tuple[int | None, str]] = []
        for error in exc.errors():
            path = tuple(part for part in error["loc"] if part not in drop)
            line = line_of(lines, path)
            suffix = f" (line {line})" if line else ""
            message = str(error["msg"]).removeprefix("Value error, ")
            text = f"{format_path(path) or '(top level)'}: {message}"
            problems.append(text + suffix)
            located.append((line, text))
        raise YamlSourceError(f"{source}: " + "; ".join(problems), located) from None
