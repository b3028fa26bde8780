"""What the monitor builds at start-up is kept out of the garbage collector's full passes.

The inventory, profiles, poll plans, sessions and rules of thousands of devices are
millions of objects that live as long as the monitor. CPython's full collection walks
every one of them each time (measured at 5,000 devices: about 0.5 s per pass, 10 % of
the monitor's CPU, and the event loop stalled meanwhile, so polls started late).
Freezing them once the monitor runs (`gc.freeze`) moves them to a generation the
collector never walks; what is made later is collected as before. The first round
of polls builds the rest of the working set (sessions, plans, caches: as many objects
again); full passes during it would walk that growing heap again and again (five
passes of 0.4 s in a few seconds at 5,000 devices), so they are held back until it
is frozen too. A reload thaws everything first, so what it replaces can be
collected, and freezes again afterwards; so does the monitor when it stops.
"""

from __future__ import annotations

import gc

#: The collector's thresholds as the process started, and the full-pass threshold
#: while the working set is built (a full pass every this many middle-generation ones).
_THRESHOLDS = gc.get_threshold()
HELD_FULL_PASS_THRESHOLD = 1000


def settle() -> None:
    """Collect what start-up left over, then freeze every object that remains; full
    passes as usual from now on."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_THRESHOLDS)


def building() -> None:
    """Until the next `settle` or `thaw`: full passes only rarely (the working set grows)."""
    young, middle, _ = _THRESHOLDS
    gc.set_threshold(young, middle, HELD_FULL_PASS_THRESHOLD)


def thaw() -> None:
    """Give the frozen objects back to the collector (before replacing some of them,
    or when the monitor stops)."""
    gc.unfreeze()
    gc.set_threshold(*_THRESHOLDS)
