"""Scenarios played one after the other, in a loop, against the demo's hall model.

Each scenario's steps run at their simulated times; after its last step the hall is
given `settle_s` simulated seconds to recover (rules wait `clear_for` before they
resolve) before the next scenario starts. What is playing is reported through
`on_status`, so the board and the terminal can say it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dcim.clock import SimClock
from simulators.hall.model import HallModel
from simulators.scenario import Scenario, ScenarioPlayer, Step, load_scenario

#: Played in this order: the first is short, so an incident fires and resolves early
#: (the demo hall's generator takes the load within a minute of a plain utility loss, too
#: soon for a page: the outage whose generator fails to start keeps both UPS on battery
#: for four minutes, then the utility returns and the pages resolve).
DEFAULT_PLAYLIST = (
    "generator-fail-to-start",
    "utility-outage",
    "crac-failure",
    "vesda-smoke",
    "water-leak",
    "branch-overload",
    "feed-a-loss",
    "door-open",
)
#: Simulated seconds between two scenarios (alerts clear, inlets settle).
SETTLE_S = 8 * 60.0


@dataclass
class Playlist:
    model: HallModel
    clock: SimClock
    scenarios: Sequence[Scenario]
    on_status: Callable[[str], None]
    settle_s: float = SETTLE_S
    loop: bool = True

    @classmethod
    def of(
        cls,
        names: Sequence[str],
        model: HallModel,
        clock: SimClock,
        on_status: Callable[[str], None],
        **kwargs: float | bool,
    ) -> Playlist:
        scenarios = [load_scenario(name) for name in names]
        for scenario in scenarios:
            scenario.check(model.topology)  # a step the site cannot play fails before the start
        return cls(model, clock, scenarios, on_status, **kwargs)  # type: ignore[arg-type]

    async def play(self) -> None:
        while True:
            for number, scenario in enumerate(self.scenarios, 1):
                await self._play_one(scenario, number)
            if not self.loop:
                return

    async def _play_one(self, scenario: Scenario, number: int) -> None:
        head = f"scenario {number}/{len(self.scenarios)} {scenario.name}"

        def stepped(step: Step, text: str) -> None:
            minutes = step.at_s / 60
            self.on_status(f"{head} · t+{minutes:g} min: {text}")

        self.on_status(f"{head}: {' '.join(scenario.description.split())}")
        player = ScenarioPlayer(self.model, scenario, self.clock.now(), on_step=stepped)
        await player.play(self.clock)
        self.on_status(f"{head}: done, the hall recovers")
        await asyncio.sleep(self.settle_s / self.clock.speed)
