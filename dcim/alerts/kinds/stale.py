"""No data / device down: nothing heard for N poll intervals, or polls failing (device.up=0)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dcim.alerts.kinds.base import Context, DeviceInfo, Evaluator, SeverityRule, Signal
from dcim.alerts.model import Level, Severity
from dcim.alerts.scope import LABEL_TAGS
from dcim.reading import Reading


class StaleRule(SeverityRule):
    """Per device: `down` when polls fail, `no_data` when silent for `intervals` poll intervals.

    With `metric`, only that metric counts as hearing from the device.
    """

    kind: Literal["stale"]
    severity: Severity = Severity.CRITICAL
    intervals: float = Field(default=3.0, gt=0)
    metric: str | None = None


class StaleEvaluator(Evaluator):
    timed = True
    metrics = None  # every reading proves its device alive

    def __init__(self, rule: StaleRule) -> None:
        super().__init__(rule)
        self.spec = rule
        self._heard: dict[str, float] = {}
        self._up: dict[str, bool] = {}
        self._in_scope: dict[str, bool] = {}

    def _watched(self, device: str, info: DeviceInfo | None, reading: Reading | None) -> bool:
        cached = self._in_scope.get(device)
        if cached is None:
            tags = info.tags if info is not None else (reading.tags if reading else {})
            cached = self._in_scope[device] = self.spec.scope.matches(tags)
        return cached

    def _labels(self, device: str, info: DeviceInfo | None) -> dict[str, str]:
        tags = info.tags if info is not None else {}
        labels = {name: tags[name] for name in LABEL_TAGS if name in tags}
        labels["device"] = device
        return labels

    def observe(self, reading: Reading, now: float, ctx: Context) -> list[Signal]:
        device = reading.device_id
        if reading.metric == "device.up":
            self._up[device] = bool(reading.value)
            if not reading.value:
                return self._verdict(device, now, ctx)
        if self.spec.metric is None or reading.metric == self.spec.metric:
            self._heard[device] = now
        if ctx.level(self.spec.id, f"device={device}") is not None:
            return self._verdict(device, now, ctx)
        return []

    def _verdict(self, device: str, now: float, ctx: Context) -> list[Signal]:
        info = ctx.devices.get(device)
        key = f"device={device}"
        interval = info.interval_s if info is not None else 60.0
        silent_s = now - self._heard.get(device, ctx.started_at)
        level: Level | None = None
        if silent_s > self.spec.intervals * interval:
            level = self.spec.level("no_data")
            summary = f"{self.spec.title}: nothing heard from {device} for {silent_s:.0f} s"
        elif self._up.get(device) is False:
            level = self.spec.level("down")
            summary = f"{self.spec.title}: {device} does not answer polls"
        else:
            summary = f"{self.spec.title}: {device} answers"
        if level is None and ctx.level(self.spec.id, key) is None:
            return []
        return [Signal(key, level, self._labels(device, info), None, summary)]

    def devices_changed(self, *, added: set[str], forget: set[str], now: float) -> None:
        for device in forget:
            self._in_scope.pop(device, None)
        for device in added:
            # a device added by a reload is silent since then, not since the start
            self._heard.setdefault(device, now)

    def tick(self, now: float, ctx: Context) -> list[Signal]:
        signals: list[Signal] = []
        for device, info in ctx.devices.items():
            if not self._watched(device, info, None):
                continue
            current = ctx.level(self.spec.id, f"device={device}")
            heard = self._heard.get(device, ctx.started_at)
            silent = now - heard > self.spec.intervals * info.interval_s
            # only speak when the verdict may have changed: keeps a tick cheap
            if silent != (current == "no_data"):
                signals.extend(self._verdict(device, now, ctx))
        return signals
