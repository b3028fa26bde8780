"""pysnmp MIB instrumentation that answers from a `MibDevice` instead of MIB modules.

pysnmp's command responders (GET, GETNEXT, GETBULK) call
`read_variables` / `read_next_variables` on the instrumentation registered for
the request's context name; GETBULK is built by pysnmp from repeated
`read_next_variables` calls. SET falls through to the base class, which
refuses every write (the responder turns that into notWritable).
"""

from __future__ import annotations

from typing import Any

from pysnmp.proto.rfc1902 import ObjectName
from pysnmp.proto.rfc1905 import endOfMibView, noSuchInstance, noSuchObject
from pysnmp.smi.instrum import AbstractMibInstrumController

from simulators.mib import MibDevice, Missing

VarBind = tuple[Any, Any]

_EXCEPTION_VALUES = {
    Missing.NO_SUCH_OBJECT: noSuchObject,
    Missing.NO_SUCH_INSTANCE: noSuchInstance,
}


class DeviceInstrumController(AbstractMibInstrumController):  # type: ignore[misc]
    """Read-only instrumentation over one device's `OidTable` snapshot."""

    def __init__(self, device: MibDevice) -> None:
        self.device = device

    @staticmethod
    def _in_view(name: Any, value: Any, idx: int, context: dict[str, Any]) -> bool:
        # acFun is the responder's VACM check: True means "not in view";
        # AuthorizationError (no access at all) propagates as an error response.
        ac_fun = context.get("acFun")
        if ac_fun is None:
            return True
        return not ac_fun("read", (name, value), **{**context, "idx": idx})

    def read_variables(self, *var_binds: VarBind, **context: Any) -> list[VarBind]:
        """GET: exact match, else noSuchInstance / noSuchObject."""
        table = self.device.snapshot()
        out: list[VarBind] = []
        for idx, (name, _) in enumerate(var_binds):
            found = table.get(tuple(name))
            if isinstance(found, Missing):
                out.append((name, _EXCEPTION_VALUES[found]))
            elif self._in_view(name, found, idx, context):
                out.append((name, found))
            else:
                out.append((name, noSuchObject))
        return out

    def read_next_variables(self, *var_binds: VarBind, **context: Any) -> list[VarBind]:
        """GETNEXT: first visible instance after each name, else endOfMibView."""
        table = self.device.snapshot()
        out: list[VarBind] = []
        for idx, (name, _) in enumerate(var_binds):
            for oid, value in table.after(tuple(name)):
                next_name = ObjectName(oid)
                if self._in_view(next_name, value, idx, context):
                    out.append((next_name, value))
                    break
            else:
                out.append((name, endOfMibView))
        return out
