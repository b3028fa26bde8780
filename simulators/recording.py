"""A device replayed from an snmprec recording (`dcim walk`, snmpsim's format).

`OID|TYPE|VALUE` lines become an `OidTable` served by the fast agent, so a
recording can be polled over real UDP by the production client (`dcim profile
test --recording`). Type codes are the SMI wire tags (2 Integer32, 4 OCTET
STRING, 5 NULL, 6 OID, 64 IpAddress, 65 Counter32, 66 Gauge32, 67 TimeTicks,
68 Opaque, 70 Counter64); a trailing `x` means the value is hex. snmpsim's
variation modules (`:` in the type) are not played: their line is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pyasn1.type.univ import Null
from pysnmp.proto.rfc1902 import (
    Counter32,
    Counter64,
    Gauge32,
    Integer32,
    IpAddress,
    ObjectIdentifier,
    OctetString,
    Opaque,
    TimeTicks,
)

from simulators.mib import Oid, OidTable, parse_oid

_NUMBERS = {2: Integer32, 65: Counter32, 66: Gauge32, 67: TimeTicks, 70: Counter64}


class RecordingError(ValueError):
    """A line of a recording that cannot be served; the message names file and line."""


def _value(tag: int, text: str, hexed: bool) -> object:
    raw = bytes.fromhex(text) if hexed else text.encode("latin-1")
    if tag in _NUMBERS:
        return _NUMBERS[tag](int.from_bytes(raw, "big") if hexed else int(text))
    if tag == 4:
        return OctetString(raw)
    if tag == 68:
        return Opaque(raw)
    if tag == 5:
        return Null("")
    if tag == 6:
        return ObjectIdentifier(parse_oid(text))
    if tag == 64:
        return IpAddress(raw if hexed else text)
    raise ValueError(f"type {tag} is not an SMI type")


def parse_snmprec(lines: Iterable[str], source: str) -> dict[Oid, object]:
    """OID -> SMI value from snmprec lines (blank lines and # comments skipped)."""
    values: dict[Oid, object] = {}
    for number, raw_line in enumerate(lines, 1):
        line = raw_line.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            oid_text, tag_text, text = line.split("|", 2)
            hexed = tag_text.endswith("x")
            values[parse_oid(oid_text)] = _value(int(tag_text.rstrip("x")), text, hexed)
        except ValueError as exc:
            raise RecordingError(f"{source} line {number}: {exc}: {line[:80]!r}") from None
    return values


class RecordedDevice:
    """A `MibDevice` answering from a recording: the same values on every request."""

    def __init__(self, name: str, values: dict[Oid, object]) -> None:
        self._name = name
        # every recorded OID's parent counts as its object: a GET for another
        # index of it answers noSuchInstance, as the device would
        self._table = OidTable({oid[:-1] for oid in values}, values)

    @classmethod
    def from_file(cls, path: Path, name: str = "recording") -> RecordedDevice:
        with path.open(encoding="latin-1") as lines:
            return cls(name, parse_snmprec(lines, str(path)))

    @property
    def name(self) -> str:
        return self._name

    def snapshot(self) -> OidTable:
        return self._table

    def __len__(self) -> int:
        return len(self._table)
