"""The bus never blocks the publisher; a full consumer loses its oldest readings only."""

from __future__ import annotations

from dcim.bus import Bus
from dcim.reading import Reading


def reading(n: int) -> Reading:
    return Reading("ups-1", "ups.load_pct", float(n), "%", n)


async def test_slow_consumer_drops_oldest_and_never_blocks_others() -> None:
    bus = Bus()
    stuck = bus.subscribe("stuck", maxsize=10)
    healthy = bus.subscribe("healthy", maxsize=10_000)
    bus.publish([reading(n) for n in range(1000)])  # returns at once: nobody is consuming
    assert stuck.queue.qsize() == 10
    assert stuck.dropped == 990
    kept = [stuck.queue.get_nowait().value for _ in range(10)]
    assert kept == [float(n) for n in range(990, 1000)]  # the freshest survive
    assert healthy.queue.qsize() == 1000
    assert healthy.dropped == 0
    assert bus.published == 1000
