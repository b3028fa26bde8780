"""Device profiles: data files mapping device values onto the metric vocabulary.

A profile lists scalars (one OID each) and tables (columns walked with GETBULK,
one row per index). Each field names a vocabulary metric, where its value comes
from, and how to turn the raw value into the metric's unit: scale, offset, enum.
Profiles are validated once at load and compiled by the protocol package.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dcim.errors import ProfileError
from dcim.vocabulary import load_vocabulary
from dcim.yamlsource import YamlSourceError, format_path, line_of, load_yaml_with_lines

OID_PATTERN = r"^\d+(\.\d+)+$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SnmpField(_Strict):
    """One metric read from one OID (scalar: full instance OID; table: column OID)."""

    metric: str
    oid: str = Field(pattern=OID_PATTERN)
    type: Literal["number", "enum", "bool", "string"] = "number"
    scale: float = 1.0
    offset: float = 0.0
    enum: dict[int, str] = Field(default_factory=dict)
    true_values: list[int] = Field(default_factory=lambda: [1])
    valid_range: tuple[float, float] | None = None
    #: Raw values that mean "not available" on this device (e.g. -1, 2147483647).
    missing: list[int] = Field(default_factory=list)
    source: str = ""

    @field_validator("metric")
    @classmethod
    def _in_vocabulary(cls, metric: str) -> str:
        try:
            load_vocabulary().get(metric)
        except ProfileError as exc:
            raise ValueError(str(exc)) from None  # pydantic reports it with the path
        return metric


class SnmpTable(_Strict):
    """Columns of one conceptual table, each row tagged with its index (and label)."""

    name: str
    index_tag: str = "index"
    label_oid: str | None = Field(default=None, pattern=OID_PATTERN)
    label_tag: str = "label"
    columns: list[SnmpField] = Field(min_length=1)


class SnmpProfile(_Strict):
    name: str
    kind: Literal["ups", "pdu", "crac", "sensor", "meter"]
    description: str = ""
    source: str = ""
    sys_object_ids: list[str] = Field(default_factory=list)
    scalars: list[SnmpField] = Field(default_factory=list)
    tables: list[SnmpTable] = Field(default_factory=list)


def _profile_dirs() -> list[Path]:
    root = resources.files("collectors").joinpath("profiles")
    return [Path(str(root))]


def parse_snmp_profile(text: str, source: str) -> SnmpProfile:
    """Validate a profile's text; ProfileError lists each problem with its line."""
    try:
        data, lines = load_yaml_with_lines(text, source)
    except YamlSourceError as exc:
        raise ProfileError(str(exc)) from None
    try:
        return SnmpProfile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            path = tuple(error["loc"])
            line = line_of(lines, path)
            suffix = f" (line {line})" if line else ""
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{format_path(path)}: {message}{suffix}")
        raise ProfileError(f"{source}: " + "; ".join(problems)) from None


@cache
def load_snmp_profile(name: str) -> SnmpProfile:
    """The shipped SNMP profile called `name` (file profiles/snmp/<name>.yaml)."""
    for directory in _profile_dirs():
        path = directory / "snmp" / f"{name}.yaml"
        if path.is_file():
            return parse_snmp_profile(path.read_text(encoding="utf-8"), str(path))
    known = ", ".join(available_profiles("snmp")) or "none"
    msg = f"unknown SNMP profile {name!r} (known: {known})"
    raise ProfileError(msg)


def available_profiles(protocol: str) -> list[str]:
    """Names of the shipped profiles for a protocol."""
    names: list[str] = []
    for directory in _profile_dirs():
        folder = directory / protocol
        if folder.is_dir():
            names.extend(sorted(path.stem for path in folder.glob("*.yaml")))
    return names
