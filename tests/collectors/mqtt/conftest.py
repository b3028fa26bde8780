"""Make the MQTT test helpers (mqtt_helpers.py) importable under --import-mode=importlib.

The broker fixtures are shared by the whole suite: tests/mosquitto_fixtures.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
