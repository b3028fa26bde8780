"""What the core expects of a protocol collector."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, Self

from dcim.reading import Reading

#: Where pollers and stream collectors hand their readings.
Emit = Callable[[Sequence[Reading]], None]


class Collector(Protocol):
    """A polled device (SNMP, Modbus). Opened once, polled many times."""

    device_id: str
    tags: Mapping[str, str]

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    async def poll(self) -> list[Reading]:
        """One cycle; raises CollectError subclasses when the device fails."""
        ...


class StreamCollector(Protocol):
    """Pushed data (MQTT, SNMP traps): runs until cancelled."""

    async def run(self, emit: Emit) -> None:
        """Receive and emit readings until cancelled; nothing is emitted after it returns."""
        ...
