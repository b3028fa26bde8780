"""pysnmp as the tests' oracle: an independent SNMP stack the production client is checked against.

`PysnmpHost` implements the client's `SessionHost` (`collectors.snmp.types`) on
pysnmp 7's command generators, so the same `SnmpCollector` can poll through
either and the readings be compared. Only the tests use it: the monitor polls
through `collectors.snmp.client.SnmpHost`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pyasn1.type import univ
from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413 import cmdgen
from pysnmp.hlapi.v3arch.asyncio import CommunityData, UdpTransportTarget, UsmUserData
from pysnmp.hlapi.v3arch.asyncio.cmdgen import LCD
from pysnmp.proto import errind
from pysnmp.proto.rfc1902 import ObjectName

from collectors.snmp.traps import AUTH_PROTOCOLS, PRIV_PROTOCOLS, to_python
from collectors.snmp.types import Oid, SnmpStatusError, VarBind
from dcim.errors import DeviceProtocolError, DeviceTimeoutError
from dcim.inventory import SnmpConfig, SnmpVersion

_GET = cmdgen.GetCommandGenerator()
_BULK = cmdgen.BulkCommandGeneratorSingleRun()
_NEXT = cmdgen.NextCommandGeneratorSingleRun()
_NULL = univ.Null("")

_Result = tuple[Any, int, int, Any]


class PysnmpHost:
    """One pysnmp engine (one UDP socket) for every session."""

    def __init__(self) -> None:
        self.engine = SnmpEngine()

    async def session(self, device_id: str, config: SnmpConfig) -> PysnmpSession:
        target = await UdpTransportTarget.create(
            (config.host, config.port), timeout=config.timeout_s, retries=config.retries
        )
        context_name = config.v3.context_name.encode() if config.v3 else b""
        addr_name, _ = LCD.configure(self.engine, _auth_data(config), target, context_name)
        return PysnmpSession(self.engine, device_id, addr_name, context_name)

    def close(self) -> None:
        dispatcher = self.engine.transport_dispatcher
        if dispatcher is not None:
            dispatcher.close_dispatcher()


def _auth_data(config: SnmpConfig) -> CommunityData | UsmUserData:
    if config.version is SnmpVersion.V3:
        v3 = config.v3
        assert v3 is not None
        return UsmUserData(
            v3.user,
            authKey=v3.auth_key.get_secret_value() if v3.auth_key else None,
            privKey=v3.priv_key.get_secret_value() if v3.priv_key else None,
            authProtocol=AUTH_PROTOCOLS[v3.auth_protocol],
            privProtocol=PRIV_PROTOCOLS[v3.priv_protocol],
        )
    assert config.community is not None
    mp_model = 0 if config.version is SnmpVersion.V1 else 1
    return CommunityData(config.community.get_secret_value(), mpModel=mp_model)


class PysnmpSession:
    """Requests to one device through pysnmp; errors as the production client's types."""

    def __init__(
        self, engine: SnmpEngine, device_id: str, addr_name: str, context_name: bytes
    ) -> None:
        self._engine = engine
        self.device_id = device_id
        self._addr_name = addr_name
        self._context_name = context_name

    async def get(self, oids: Sequence[Oid]) -> list[VarBind]:
        return await self._request(_GET, None, oids)

    async def get_next(self, oids: Sequence[Oid]) -> list[VarBind]:
        return await self._request(_NEXT, None, oids)

    async def get_bulk(self, oids: Sequence[Oid], max_repetitions: int) -> list[VarBind]:
        return await self._request(_BULK, max_repetitions, oids)

    async def _request(
        self, generator: Any, max_repetitions: int | None, oids: Sequence[Oid]
    ) -> list[VarBind]:
        var_binds = [(ObjectName(oid), _NULL) for oid in oids]
        indication, status, index, vbs = await self._send(generator, max_repetitions, var_binds)
        if isinstance(indication, errind.RequestTimedOut):
            raise DeviceTimeoutError(self.device_id, "no answer (pysnmp)")
        if indication:
            raise DeviceProtocolError(self.device_id, f"pysnmp: {indication}")
        if status:
            raise SnmpStatusError(self.device_id, status, index)
        return [VarBind(tuple(name), to_python(value)) for name, value in vbs]

    async def _send(
        self, generator: Any, max_repetitions: int | None, var_binds: list[tuple[Any, Any]]
    ) -> _Result:
        future: asyncio.Future[_Result] = asyncio.get_running_loop().create_future()

        def done(
            _engine: Any,
            _handle: Any,
            indication: Any,
            status: Any,
            index: Any,
            vbs: Any,
            _ctx: Any,
        ) -> None:
            if not future.done():
                future.set_result((indication, int(status), int(index), vbs))

        where = (self._engine, self._addr_name, None, self._context_name)
        if max_repetitions is None:
            generator.send_varbinds(*where, var_binds, done)
        else:
            generator.send_varbinds(*where, 0, max_repetitions, var_binds, done)
        return await future
