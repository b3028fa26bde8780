"""Bounded fan-out of readings to every consumer (sinks, alert engine).

Publishing never waits: each consumer has its own bounded queue, so a slow
consumer cannot stall polling. When a queue is full its oldest reading is
dropped and counted (fresh data matters most to alerting; sinks drain their
queue into batches and an on-disk spool, so theirs should never fill).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from dcim.reading import Reading


@dataclass(eq=False)
class Subscription:
    """One consumer's queue and its drop counter."""

    name: str
    queue: asyncio.Queue[Reading]
    dropped: int = field(default=0)
    #: Readings ever put in the queue: the position of the newest (see SinkWorker.safe).
    put: int = field(default=0)


class Bus:
    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        self.published = 0

    def subscribe(self, name: str, maxsize: int) -> Subscription:
        subscription = Subscription(name, asyncio.Queue(maxsize=maxsize))
        self._subscriptions.append(subscription)
        return subscription

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        return tuple(self._subscriptions)

    def publish(self, readings: Sequence[Reading]) -> None:
        """Hand readings to every consumer without waiting."""
        self.published += len(readings)
        for subscription in self._subscriptions:
            queue = subscription.queue
            subscription.put += len(readings)
            for reading in readings:
                try:
                    queue.put_nowait(reading)
                except asyncio.QueueFull:
                    queue.get_nowait()
                    subscription.dropped += 1
                    queue.put_nowait(reading)
