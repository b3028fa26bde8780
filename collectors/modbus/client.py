"""One Modbus gateway (host:port): connections reused across polls, requests paced.

Every unit id behind a gateway shares its `ModbusGateway`. pymodbus serialises
requests on one connection, so `max_in_flight` > 1 means that many connections
(opened only when needed); the default 1 is what serial gateways want. A
connection is dropped after a timeout or loss and opened again on the next
request: after a timeout an RTU-framed stream may hold a late answer that would
be taken for the next one, and a fresh connection is the only clean resync.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pymodbus import FramerType
from pymodbus.client import AsyncModbusTcpClient, AsyncModbusTlsClient
from pymodbus.exceptions import ConnectionException, ModbusIOException

from dcim.errors import CollectError, DeviceProtocolError, DeviceTimeoutError
from dcim.inventory import ModbusConfig
from dcim.tls import client_context

#: Modbus exception codes (Modbus Application Protocol v1.1b3, section 7).
EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}
ILLEGAL_ADDRESS = 2


class ModbusConnectError(CollectError):
    """The gateway cannot be reached (refused, unreachable, TLS handshake failed)."""

    error_class = "connect"


class ModbusConnectionLostError(CollectError):
    """The connection closed while a request was waiting for its answer."""

    error_class = "connection"


class ModbusTimeoutError(DeviceTimeoutError):
    """No answer to one request (after retries)."""


class ModbusExceptionError(DeviceProtocolError):
    """The device answered one request with a Modbus exception response."""

    def __init__(self, device_id: str, code: int, where: str) -> None:
        self.code = code
        name = EXCEPTION_NAMES.get(code, "unknown exception")
        self.error_class = "busy" if code == 6 else "gateway" if code in (10, 11) else "exception"
        super().__init__(device_id, f"{where}: exception {code} ({name})")


class _Connection:
    """A pymodbus client plus a future that completes when its link drops."""

    def __init__(self, config: ModbusConfig) -> None:
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        common: dict[str, Any] = {
            "port": config.port,
            "timeout": config.timeout_s,
            "retries": config.retries,
            "reconnect_delay": 0,  # we reconnect on demand, not in the background
            "trace_connect": self._on_connect,
        }
        self.client: AsyncModbusTcpClient
        if config.transport == "tls":
            self.client = AsyncModbusTlsClient(
                config.host, sslctx=client_context(config.tls), **common
            )
        else:
            framer = FramerType.RTU if config.transport == "rtu-over-tcp" else FramerType.SOCKET
            self.client = AsyncModbusTcpClient(config.host, framer=framer, **common)

    def _on_connect(self, up: bool) -> None:
        if not up and not self.lost.done():
            self.lost.set_result(None)

    def close(self) -> None:
        self._on_connect(False)
        self.client.close()


class ModbusGateway:
    """Requests to all unit ids behind one host:port (settings of the first device)."""

    def __init__(self, config: ModbusConfig) -> None:
        self.config = config
        self.name = f"{config.host}:{config.port}"
        self._slots = asyncio.Semaphore(config.max_in_flight)
        self._idle: list[_Connection] = []
        #: Requests sent, connections opened: for tests and --explain figures.
        self.requests = 0
        self.connects = 0

    async def read(
        self, device_id: str, unit: int, function: int, address: int, count: int
    ) -> list[int]:
        """Read `count` registers (FC3/4) or bits (FC1/2, as 0/1) starting at `address`."""
        where = f"unit {unit} FC{function} address {address} count {count}"
        async with self._slots:
            connection = self._idle.pop() if self._idle else None
            try:
                if connection is None or connection.lost.done():
                    connection = await self._open(device_id)
                values = await self._execute(
                    connection,
                    device_id,
                    unit=unit,
                    function=function,
                    address=address,
                    count=count,
                )
            except (ModbusTimeoutError, ModbusConnectionLostError, ModbusConnectError):
                if connection is not None:
                    connection.close()
                    connection = None
                raise
            finally:
                if connection is not None:
                    self._idle.append(connection)
                if self.config.pause_s:
                    await asyncio.sleep(self.config.pause_s)
        if len(values) < count:
            msg = f"{where}: answer holds {len(values)} values"
            raise DeviceProtocolError(device_id, msg)
        return values[:count]

    async def _open(self, device_id: str) -> _Connection:
        connection = _Connection(self.config)
        self.connects += 1
        if not await connection.client.connect():
            connection.close()
            transport = self.config.transport
            raise ModbusConnectError(device_id, f"cannot connect to {self.name} ({transport})")
        return connection

    async def _execute(
        self,
        connection: _Connection,
        device_id: str,
        *,
        unit: int,
        function: int,
        address: int,
        count: int,
    ) -> list[int]:
        where = f"unit {unit} FC{function} address {address} count {count}"
        client = connection.client
        calls = {
            1: client.read_coils,
            2: client.read_discrete_inputs,
            3: client.read_holding_registers,
            4: client.read_input_registers,
        }
        self.requests += 1
        request = asyncio.ensure_future(calls[function](address, count=count, device_id=unit))
        try:
            await asyncio.wait((request, connection.lost), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # cancelled from outside: take the request down with us
            request.cancel()
            raise
        if not request.done():
            request.cancel()
            raise ModbusConnectionLostError(device_id, f"{where}: connection to {self.name} lost")
        try:
            response = request.result()
        except ModbusIOException as exc:
            if "No response" in str(exc):
                raise ModbusTimeoutError(device_id, f"{where}: no answer") from None
            raise DeviceProtocolError(device_id, f"{where}: {exc}") from None
        except ConnectionException:
            raise ModbusConnectionLostError(device_id, f"{where}: not connected") from None
        if response.isError():
            raise ModbusExceptionError(device_id, response.exception_code, where)
        if function in (1, 2):
            return [1 if bit else 0 for bit in response.bits]
        return list(response.registers)

    def close(self) -> None:
        """Drop every connection (new requests would open new ones)."""
        while self._idle:
            self._idle.pop().close()
