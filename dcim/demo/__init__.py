"""`dcim demo`: the simulated data hall, polled by the monitor, on the NOC board.

Modules: `hall` (the site file as simulators serve it and the monitor polls it),
`playlist` (scenarios in a loop), `terminal` (the text view), `run` (wiring).
This is the application layer: it may import simulators; `dcim.web` may not.
"""

from __future__ import annotations

from dcim.demo.hall import demo_inventory

__all__ = ["demo_inventory"]
