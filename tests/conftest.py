"""Shared fixtures: real InfluxDB 1.x and VictoriaMetrics servers on free loopback ports."""

from __future__ import annotations

import sys
from pathlib import Path

# Let `pytest` run from a checkout without installing the package first.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
