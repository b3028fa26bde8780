"""What protocol front ends (Modbus server, MQTT publisher) read from a simulated device.

A front end asks for a vocabulary metric (plus the tags a profile field fixes,
such as phase=1 or position=inlet) and encodes the answer in its protocol. The
hall model, or a small standalone device, answers from its current state, so one
state shows up consistently on SNMP, Modbus and MQTT at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from dcim.reading import Value


class ValueSource(Protocol):
    """A simulated device, seen through the metric vocabulary."""

    @property
    def device_id(self) -> str: ...

    def value(self, metric: str, tags: Mapping[str, str]) -> Value | None:
        """The current value of `metric` for the row `tags` selects; None if the device has none."""
        ...
