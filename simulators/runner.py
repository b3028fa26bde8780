"""Run simulated UPS units behind one SNMP agent.

Entry points:

    sim = UpsSimulator(specs, host="127.0.0.1", port=0, speed=60.0)
    host, port = await sim.start()        # port 0 → a free port, reported here
    sim.set_utility(False, "ups2")        # utility fails on ups2 (None = every unit)
    sim.stop()

    await main(host="127.0.0.1", port=1161, count=3, community_prefix="ups",
               speed=1.0, duration=None)

`main` serves `count` units: communities (and v3 context names) `ups1..upsN`,
or `public` when count == 1, prints one line per unit saying where it is, and
runs until `duration` seconds pass or the task is cancelled (Ctrl-C).
Units cycle through a small catalogue (3 kVA and 6 kVA single-phase, 10 kVA
three-phase) so a collector sees both table shapes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from dcim.clock import SimClock
from simulators.snmp_agent import SnmpAgent, V3User
from simulators.ups import UpsModel
from simulators.ups_mib import UpsDevice


@dataclass(frozen=True, slots=True)
class UpsSpec:
    """One simulated UPS; `community` defaults to `name` and is also the v3 context."""

    name: str
    rated_va: float = 3000.0
    rated_w: float = 2700.0
    lines: int = 1
    seed: int = 0
    nominal_voltage: float = 230.0
    base_load: float = 0.45
    community: str | None = None

    @property
    def community_name(self) -> str:
        return self.community or self.name


#: (rated VA, rated W, lines) cycled by `fleet`.
CATALOGUE: tuple[tuple[float, float, int], ...] = (
    (3000.0, 2700.0, 1),
    (6000.0, 5400.0, 1),
    (10000.0, 9000.0, 3),
)


def fleet(count: int, community_prefix: str = "ups") -> list[UpsSpec]:
    """`count` varied units named `<prefix>1..N`; a lone unit answers to `public`."""
    if count < 1:
        raise ValueError("count must be at least 1")
    specs = []
    for i in range(1, count + 1):
        va, w, lines = CATALOGUE[(i - 1) % len(CATALOGUE)]
        name = f"{community_prefix}{i}"
        community = "public" if count == 1 else name
        specs.append(UpsSpec(name, va, w, lines, seed=i, community=community))
    return specs


class UpsSimulator:
    """A fleet of `UpsModel`s sharing one clock, served by one `SnmpAgent`."""

    def __init__(
        self,
        specs: Sequence[UpsSpec],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        speed: float = 1.0,
        v3_users: Sequence[V3User] = (),
        clock: SimClock | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.clock = clock or SimClock(speed)
        self.devices: dict[str, UpsDevice] = {}
        for spec in specs:
            model = UpsModel(
                spec.rated_va,
                spec.rated_w,
                spec.nominal_voltage,
                spec.seed,
                lines=spec.lines,
                base_load=spec.base_load,
                start_s=self.clock.now(),
                # Coarser ticks keep fast-forwarded fleets cheap to advance.
                tick_s=max(1.0, self.clock.speed / 10.0),
            )
            device = UpsDevice(spec.name, model, self.clock)
            if spec.community_name in self.devices:
                raise ValueError(f"duplicate community {spec.community_name!r}")
            self.devices[spec.community_name] = device
        self.agent = SnmpAgent(self.devices, v3_users=v3_users)

    async def start(self) -> tuple[str, int]:
        """Start answering; returns the bound (host, port)."""
        return await self.agent.start(self.host, self.port)

    def stop(self) -> None:
        self.agent.close()

    def set_utility(self, on: bool, community: str | None = None) -> None:
        """Utility power on/off for one unit (by community) or, with None, all."""
        targets = self.devices.values() if community is None else [self.devices[community]]
        for device in targets:
            device.set_utility(on)

    async def __aenter__(self) -> UpsSimulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


async def main(
    host: str = "127.0.0.1",
    port: int = 1161,
    count: int = 1,
    community_prefix: str = "ups",
    speed: float = 1.0,
    *,
    duration: float | None = None,
    v3_users: Sequence[V3User] = (),
) -> None:
    """Serve `count` simulated UPS units until `duration` elapses or cancellation."""
    sim = UpsSimulator(
        fleet(count, community_prefix), host=host, port=port, speed=speed, v3_users=v3_users
    )
    bound_host, bound_port = await sim.start()
    try:
        for community, device in sim.devices.items():
            lines = device.model.lines
            print(
                f"{device.name}: {device.model_name} ({lines}-phase) at "
                f"udp:{bound_host}:{bound_port} community={community} v3-context={community}",
                flush=True,
            )
        print(f"speed x{speed:g}; UPS-MIB under 1.3.6.1.2.1.33", flush=True)
        if duration is None:
            await asyncio.Event().wait()  # until cancelled
        else:
            await asyncio.sleep(duration)
    finally:
        sim.stop()
