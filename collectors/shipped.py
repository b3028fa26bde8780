"""Where profiles come from: the user's folders first, then the ones shipped with dcim.

A profile is `<root>/<protocol>/<name>.yaml` (protocol: snmp, modbus, mqtt) under
one of these roots, searched in order:

1. the folders the config names (`profiles: {paths: [...]}`),
2. the folders in `DCIM_PROFILE_PATH` (separated like PATH),
3. the system folder `/etc/dcim/profiles`,
4. the profiles shipped in the package.

The first root holding a name wins, so a site overrides a shipped profile by
giving its own under the same name (logged once), and an upgrade, which only
replaces the package, leaves the site's profiles alone. A root may also hold
`vocabulary.yaml`, declaring metrics the shipped vocabulary does not have
(`dcim.vocabulary`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path

from dcim.errors import ProfileError
from dcim.vocabulary import use_vocabulary_extensions

log = logging.getLogger(__name__)

ENV_PATH = "DCIM_PROFILE_PATH"
SYSTEM_ROOT = Path("/etc/dcim/profiles")
VOCABULARY_FILE = "vocabulary.yaml"


class _SearchPath:
    """The process's search path: set once from the config, re-read when the env changes."""

    def __init__(self) -> None:
        self.configured: tuple[Path, ...] = ()
        self.env_seen: str | None = None
        self.announced: set[tuple[str, str, str]] = set()
        #: Caches of parsed profiles, cleared when the search path changes.
        self.on_change: list[Callable[[], None]] = []


_STATE = _SearchPath()


def shipped_root() -> Path:
    return Path(str(resources.files("collectors").joinpath("profiles")))


def user_roots() -> list[Path]:
    """The site's profile folders in search order (config, environment, system)."""
    env = os.environ.get(ENV_PATH, "")
    roots = [*_STATE.configured, *(Path(p) for p in env.split(os.pathsep) if p)]
    if SYSTEM_ROOT.is_dir():
        roots.append(SYSTEM_ROOT)
    unique: list[Path] = []
    for root in roots:
        if root not in unique:
            unique.append(root)
    return unique


def profile_roots() -> list[Path]:
    return [*user_roots(), shipped_root()]


def use_profile_paths(paths: Iterable[Path]) -> None:
    """Search these folders first (the config's `profiles.paths`); clears cached profiles."""
    _STATE.configured = tuple(Path(p) for p in paths)
    refresh()


def on_profiles_changed(clear: Callable[[], None]) -> None:
    """Register a cache to clear when the search path changes."""
    _STATE.on_change.append(clear)


def refresh() -> None:
    """Re-read the search path (and the environment) and forget every parsed profile."""
    _STATE.env_seen = os.environ.get(ENV_PATH, "")
    missing = [root for root in user_roots() if not root.is_dir()]
    for root in missing:
        log.warning("profile folder %s does not exist", root)
    use_vocabulary_extensions(
        [root / VOCABULARY_FILE for root in user_roots() if (root / VOCABULARY_FILE).is_file()]
    )
    for clear in _STATE.on_change:
        clear()


def _check_environment() -> None:
    """Pick up a changed DCIM_PROFILE_PATH (tests and one-shot tools set it late)."""
    if os.environ.get(ENV_PATH, "") != _STATE.env_seen:
        refresh()


def available_profiles(protocol: str) -> list[str]:
    """Names of every profile for a protocol ("snmp", "modbus", "mqtt") on the search path."""
    _check_environment()
    names: set[str] = set()
    for root in profile_roots():
        folder = root / protocol
        if folder.is_dir():
            names.update(path.stem for path in folder.glob("*.yaml"))
    return sorted(names)


def find_profile(protocol: str, name: str) -> Path | None:
    """The file of profile `name` that wins on the search path (None: not found)."""
    _check_environment()
    found: list[Path] = [
        root / protocol / f"{name}.yaml"
        for root in profile_roots()
        if (root / protocol / f"{name}.yaml").is_file()
    ]
    if not found:
        return None
    winner = found[0]
    if len(found) > 1:
        key = (protocol, name, str(winner))
        if key not in _STATE.announced:
            _STATE.announced.add(key)
            log.info(
                "%s profile %s: using %s (overrides %s)",
                protocol,
                name,
                winner,
                ", ".join(str(p) for p in found[1:]),
            )
    return winner


def overrides() -> list[tuple[str, str, Path]]:
    """(protocol, name, site file) for every site profile that replaces a shipped one."""
    shipped = shipped_root()
    found = []
    for protocol in ("snmp", "modbus", "mqtt"):
        for name in available_profiles(protocol):
            path = find_profile(protocol, name)
            if (
                path is not None
                and (shipped / protocol / f"{name}.yaml").is_file()
                and not path.is_relative_to(shipped)
            ):
                found.append((protocol, name, path))
    return found


def log_overrides() -> None:
    """Say in the log which shipped profiles the site's own replace (once, at start)."""
    for protocol, name, path in overrides():
        log.info("%s profile %s: the site's %s overrides the shipped one", protocol, name, path)


def read_profile(protocol: str, name: str, what: str) -> tuple[str, str]:
    """(text, path) of profile `name`; ProfileError naming `what` and the known ones."""
    path = find_profile(protocol, name)
    if path is None:
        known = ", ".join(available_profiles(protocol)) or "none"
        msg = f"unknown {what} {name!r} (known: {known})"
        raise ProfileError(msg)
    return path.read_text(encoding="utf-8"), str(path)
