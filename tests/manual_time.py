"""A wall clock the test moves by hand, for `SimClock(now_fn=...)`: nothing waits on time."""

from __future__ import annotations

#: Where hand-driven time starts, in seconds.
T0 = 1000.0


class ManualTime:
    """Returns `t` when called; the test sets `t`."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t
