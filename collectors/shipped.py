"""The profile files shipped with the collectors: collectors/profiles/<protocol>/<name>.yaml."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from dcim.errors import ProfileError


def _folder(protocol: str) -> Path:
    return Path(str(resources.files("collectors").joinpath("profiles", protocol)))


def available_profiles(protocol: str) -> list[str]:
    """Names of the shipped profiles for a protocol ("snmp", "modbus", "mqtt")."""
    folder = _folder(protocol)
    return sorted(path.stem for path in folder.glob("*.yaml")) if folder.is_dir() else []


def read_profile(protocol: str, name: str, what: str) -> tuple[str, str]:
    """(text, path) of the shipped profile `name`; ProfileError naming `what` and the known ones."""
    path = _folder(protocol) / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(available_profiles(protocol)) or "none"
        msg = f"unknown {what} {name!r} (known: {known})"
        raise ProfileError(msg)
    return path.read_text(encoding="utf-8"), str(path)
