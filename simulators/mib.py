"""A device's MIB as a sorted OID table, rebuilt from live values on each request.

A simulated device implements `MibDevice`: it names itself and hands out an
`OidTable` snapshot. The snapshot knows both the instances (OID → SMI value)
and the objects they belong to, which is what GET needs to tell
noSuchInstance (known object, missing row) from noSuchObject.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping
from enum import Enum
from typing import Protocol

Oid = tuple[int, ...]


def parse_oid(text: str) -> Oid:
    """'1.3.6.1' or '.1.3.6.1' → (1, 3, 6, 1)."""
    return tuple(int(arc) for arc in text.strip(".").split("."))


class Missing(Enum):
    """Why a GET found no value (maps onto the SNMPv2 exception values)."""

    NO_SUCH_OBJECT = "noSuchObject"
    NO_SUCH_INSTANCE = "noSuchInstance"


class OidTable:
    """Immutable, lexicographically sorted instances of one device at one instant."""

    __slots__ = ("_objects", "_oids", "_values")

    def __init__(self, objects: Iterable[Oid], instances: Mapping[Oid, object]) -> None:
        self._objects = frozenset(objects)
        # Python tuple ordering of ints is exactly SNMP's lexicographic OID order.
        self._oids = sorted(instances)
        self._values = [instances[oid] for oid in self._oids]

    def __len__(self) -> int:
        return len(self._oids)

    def __iter__(self) -> Iterator[tuple[Oid, object]]:
        return zip(self._oids, self._values, strict=True)

    def get(self, oid: Oid) -> object | Missing:
        """The value at exactly `oid`, or why there is none."""
        i = bisect.bisect_left(self._oids, oid)
        if i < len(self._oids) and self._oids[i] == oid:
            return self._values[i]
        # An instance OID is object OID + index: any known object prefix → missing row.
        for cut in range(len(oid) - 1, 0, -1):
            if oid[:cut] in self._objects:
                return Missing.NO_SUCH_INSTANCE
        return Missing.NO_SUCH_OBJECT

    def after(self, oid: Oid) -> Iterator[tuple[Oid, object]]:
        """Instances strictly after `oid` in OID order (GETNEXT walks this)."""
        start = bisect.bisect_right(self._oids, oid)
        for i in range(start, len(self._oids)):
            yield self._oids[i], self._values[i]


class TableBuilder:
    """Collects objects and instances, then freezes them into an `OidTable`."""

    def __init__(self) -> None:
        self._objects: set[Oid] = set()
        self._instances: dict[Oid, object] = {}

    def scalar(self, oid: Oid, value: object) -> None:
        """A scalar object `oid` with its single instance `oid.0`."""
        self._objects.add(oid)
        self._instances[(*oid, 0)] = value

    def column(self, oid: Oid) -> None:
        """Declare a table column, so a GET on a missing row says noSuchInstance."""
        self._objects.add(oid)

    def cell(self, column: Oid, index: Oid, value: object) -> None:
        """One table cell: column OID + row index."""
        self._objects.add(column)
        self._instances[column + index] = value

    def build(self) -> OidTable:
        return OidTable(self._objects, self._instances)


class MibDevice(Protocol):
    """What the SNMP agent needs from a simulated device."""

    @property
    def name(self) -> str:
        """Short unique name: the v2c community and the v3 context name."""
        ...

    def snapshot(self) -> OidTable:
        """Current values, computed at call time."""
        ...
