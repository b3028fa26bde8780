"""What the monitor builds at start-up is kept out of the garbage collector's full passes.

The inventory, profiles, poll plans, sessions and rules of thousands of devices are
millions of objects that live as long as the monitor. CPython's full collection walks
every one of them each time (measured at 5,000 devices: about 0.5 s per pass, 10 % of
the monitor's CPU, and the event loop stalled meanwhile, so polls started late).
Freezing them once the monitor runs (`gc.freeze`) moves them to a generation the
collector never walks; what is made later is collected as before. A reload thaws
them first, so what it replaces can be collected, and freezes again afterwards.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect what start-up left over, then freeze every object that remains."""
    gc.collect()
    gc.freeze()


def thaw() -> None:
    """Give the frozen objects back to the collector (before replacing some of them)."""
    gc.unfreeze()
