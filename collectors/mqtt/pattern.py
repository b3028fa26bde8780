"""Topic patterns: MQTT filters whose single-level segments may be named captures.

`{site}/{room}/{rack}/env` subscribes as `+/+/+/env` and, on a message, yields
{"site": ..., "room": ..., "rack": ...}. `+` and a final `#` work as in MQTT but
capture nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CAPTURE = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class PatternError(ValueError):
    """A topic pattern that is not a valid MQTT filter with captures."""


@dataclass(frozen=True, slots=True)
class TopicPattern:
    text: str
    #: Per level: a literal, "+" (any), "#" (rest), or a capture name prefixed by "{".
    levels: tuple[str, ...]
    filter: str

    @classmethod
    def parse(cls, text: str) -> TopicPattern:
        if not text:
            raise PatternError("empty topic pattern")
        levels: list[str] = []
        seen: set[str] = set()
        parts = text.split("/")
        for position, part in enumerate(parts):
            capture = _CAPTURE.match(part)
            if capture:
                name = capture.group(1)
                if name in seen:
                    raise PatternError(f"capture {{{name}}} appears twice in {text!r}")
                seen.add(name)
                levels.append("{" + name)
            elif part == "#":
                if position != len(parts) - 1:
                    raise PatternError(f"'#' must be the last level in {text!r}")
                levels.append("#")
            elif part == "+" or not any(c in part for c in "+#{}"):
                levels.append(part)
            else:
                raise PatternError(
                    f"level {part!r} of {text!r}: wildcards and captures take a whole level"
                )
        mqtt_filter = "/".join("+" if lv.startswith("{") else lv for lv in levels)
        return cls(text, tuple(levels), mqtt_filter)

    @property
    def captures(self) -> tuple[str, ...]:
        return tuple(level[1:] for level in self.levels if level.startswith("{"))

    @property
    def is_literal(self) -> bool:
        return all(level not in ("+", "#") and not level.startswith("{") for level in self.levels)

    def match(self, topic: str) -> dict[str, str] | None:
        """Captured values when `topic` matches, else None."""
        parts = topic.split("/")
        captured: dict[str, str] = {}
        levels = self.levels
        for position, level in enumerate(levels):
            if level == "#":
                # MQTT: '#' also matches the parent level itself ("a/#" matches "a")
                return captured
            if position >= len(parts):
                return None
            part = parts[position]
            if level == "+":
                continue
            if level.startswith("{"):
                if not part:
                    return None
                captured[level[1:]] = part
            elif part != level:
                return None
        return captured if len(parts) == len(levels) else None
