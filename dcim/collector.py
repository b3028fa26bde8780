"""What the core expects of a protocol collector, and of whatever builds them.

The protocol adapters (`collectors/`) sit above the core: the monitor does not
import them, it is handed a `Collectors` (the application passes
`collectors.registry.CollectorFactory`; a test may pass its own).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, Self

from dcim.reading import Reading

if TYPE_CHECKING:
    from dcim.inventory import Config, PlacedDevice

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


class Collectors(Protocol):
    """Builds a monitor's collectors and owns what they share (sockets, plans)."""

    def build(self, placed: PlacedDevice) -> Collector:
        """The polled collector of a device (SNMP, Modbus); ConfigError if none fits."""
        ...

    def streams(self, config: Config) -> list[StreamCollector]:
        """The receivers of pushed data (SNMP traps, MQTT) the inventory needs."""
        ...

    def close(self) -> None:
        """Release what the built collectors shared."""
        ...


#: Makes a monitor's `Collectors` from its config (requests in flight...).
MakeCollectors = Callable[["Config"], Collectors]
