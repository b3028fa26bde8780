"""Where the config lives and how its files combine.

The config is `/etc/dcim/dcim.yaml` unless a path is given on the command line
or in `DCIM_CONFIG`. Files in the `conf.d/` folder beside it (`*.yaml`, in name
order) are merged into it, so packaging, configuration management and a site
team can each own a file: mappings merge key by key, lists are appended, and
any other value in a later file replaces the earlier one. Every value keeps the
file and line it came from, so an error points into the right file.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcim.errors import ConfigError
from dcim.yamlsource import Path as DataPath
from dcim.yamlsource import YamlSourceError, load_yaml_with_lines

DEFAULT_CONFIG = Path("/etc/dcim/dcim.yaml")
CONFIG_ENV = "DCIM_CONFIG"
DROP_IN_DIR = "conf.d"


def locate_config(given: Path | str | None = None) -> Path:
    """The config file: the one given, else $DCIM_CONFIG, else /etc/dcim/dcim.yaml."""
    if given is not None and str(given):
        return Path(given)
    from_env = os.environ.get(CONFIG_ENV, "").strip()
    return Path(from_env) if from_env else DEFAULT_CONFIG


def drop_ins(main: Path) -> list[Path]:
    """The `conf.d/*.yaml` files beside `main`, in name order."""
    folder = main.parent / DROP_IN_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.yaml") if p.is_file())


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a value came from: a file (None: the main file) and a 1-based line."""

    file: str | None
    line: int

    def __str__(self) -> str:
        return f"line {self.line}" if self.file is None else f"{self.file} line {self.line}"


@dataclass(slots=True)
class Sources:
    """The merged data of the main file and its drop-ins, with each value's origin."""

    data: Any
    origins: dict[DataPath, Origin]
    files: list[Path]

    def origin_of(self, path: DataPath) -> Origin | None:
        """Origin of `path`, or of its nearest ancestor that a file has."""
        probe = tuple(path)
        while probe:
            if probe in self.origins:
                return self.origins[probe]
            probe = probe[:-1]
        return None


def _read(path: Path, label: str | None) -> tuple[Any, dict[DataPath, Origin]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read file: {exc.strerror}"]) from None
    try:
        data, lines = load_yaml_with_lines(text, str(path))
    except YamlSourceError as exc:
        raise ConfigError(str(path), [str(exc).removeprefix(f"{path}: ")]) from None
    return data, {p: Origin(label, line) for p, line in lines.items()}


def read_sources(main: Path) -> Sources:
    """Read `main` and merge its drop-ins into it; ConfigError for an unreadable file."""
    data, origins = _read(main, None)
    files = [main]
    for extra in drop_ins(main):
        label = f"{DROP_IN_DIR}/{extra.name}"
        more, more_origins = _read(extra, label)
        if more is None:
            continue  # an empty drop-in (all comments) adds nothing
        if not isinstance(more, dict):
            raise ConfigError(str(extra), ["a drop-in must be a mapping, like the main file"])
        if not isinstance(data, dict):
            break  # the main file's own error is reported by validation
        data = _merge(data, more, at=(), target=(), origins=origins, extra_origins=more_origins)
        files.append(extra)
    return Sources(data, origins, files)


def _copy_origins(
    into: dict[DataPath, Origin],
    source: Mapping[DataPath, Origin],
    src: DataPath,
    dst: DataPath,
) -> None:
    for path, origin in source.items():
        if path[: len(src)] == src:
            into[dst + path[len(src) :]] = origin


def _drop_origins(origins: dict[DataPath, Origin], under: DataPath) -> None:
    for path in [p for p in origins if p[: len(under)] == under]:
        del origins[path]


def _merge(
    base: Any,
    extra: Any,
    *,
    at: DataPath,
    target: DataPath,
    origins: dict[DataPath, Origin],
    extra_origins: Mapping[DataPath, Origin],
) -> Any:
    """`extra` (at path `at` of its file) merged into `base` (at `target` of the result)."""
    if isinstance(base, dict) and isinstance(extra, dict):
        merged = dict(base)
        for key, value in extra.items():
            if key in merged:
                merged[key] = _merge(
                    merged[key],
                    value,
                    at=(*at, key),
                    target=(*target, key),
                    origins=origins,
                    extra_origins=extra_origins,
                )
            else:
                merged[key] = copy.deepcopy(value)
                _copy_origins(origins, extra_origins, (*at, key), (*target, key))
        return merged
    if isinstance(base, list) and isinstance(extra, list):
        offset = len(base)
        for index in range(len(extra)):
            _copy_origins(origins, extra_origins, (*at, index), (*target, offset + index))
        return [*base, *copy.deepcopy(extra)]
    _drop_origins(origins, target)
    _copy_origins(origins, extra_origins, at, target)
    return copy.deepcopy(extra)


def relative_to(config_file: Path, value: Path) -> Path:
    """A path from the config: absolute as given, relative ones from the file's folder."""
    if value.is_absolute():
        return value
    return config_file.absolute().parent / value
