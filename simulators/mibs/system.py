"""The SNMPv2-MIB system group (RFC 3418) as every simulated device answers it."""

from __future__ import annotations

from pysnmp.proto.rfc1902 import Integer32, ObjectIdentifier, OctetString

from simulators.mib import Oid, TableBuilder
from simulators.mibs.smi import ticks

SYSTEM: Oid = (1, 3, 6, 1, 2, 1, 1)
#: sysServices: application + end-to-end layers.
SERVICES = 72


def fill_system(
    t: TableBuilder,
    *,
    descr: str,
    sys_object_id: Oid,
    uptime_s: float,
    name: str,
    location: str,
) -> None:
    """sysDescr .. sysServices (.1-.7); sysContact is always "dcim simulators"."""
    t.scalar((*SYSTEM, 1), OctetString(descr))
    t.scalar((*SYSTEM, 2), ObjectIdentifier(sys_object_id))
    t.scalar((*SYSTEM, 3), ticks(uptime_s))
    t.scalar((*SYSTEM, 4), OctetString("dcim simulators"))
    t.scalar((*SYSTEM, 5), OctetString(name))
    t.scalar((*SYSTEM, 6), OctetString(location))
    t.scalar((*SYSTEM, 7), Integer32(SERVICES))
