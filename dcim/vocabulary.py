"""The documented metric vocabulary (vocabulary.yaml): names, units, measurements."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from dcim.errors import ProfileError


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """What a metric name means and where it is stored."""

    name: str
    type: str
    unit: str | None
    description: str
    measurement: str
    field: str
    values: tuple[str, ...] = ()
    #: Physically plausible [low, high] for numbers; outside it a value is not stored.
    range: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """All known metrics, by name."""

    metrics: dict[str, MetricSpec]
    measurements: dict[str, str]

    def get(self, name: str) -> MetricSpec:
        """The spec of `name`; raises ProfileError for a name not in the vocabulary."""
        try:
            return self.metrics[name]
        except KeyError:
            msg = f"metric {name!r} is not in the vocabulary (dcim/vocabulary.yaml)"
            raise ProfileError(msg) from None

    def storage(self, name: str) -> tuple[str, str]:
        """(measurement, field key) for a metric name, known or not."""
        spec = self.metrics.get(name)
        if spec is not None:
            return spec.measurement, spec.field
        group, _, rest = name.partition(".")
        return self.measurements.get(group, group), rest or name


def _parse(raw: dict[str, Any]) -> Vocabulary:
    measurements: dict[str, str] = dict(raw["measurements"])
    metrics: dict[str, MetricSpec] = {}
    for name, body in raw["metrics"].items():
        group, _, field = name.partition(".")
        metrics[name] = MetricSpec(
            name=name,
            type=body["type"],
            unit=body.get("unit"),
            description=body.get("description", ""),
            measurement=measurements[group],
            field=field,
            values=tuple(body.get("values", ())),
            range=_range(name, body.get("range")),
        )
    return Vocabulary(metrics=metrics, measurements=measurements)


def _range(name: str, raw: Any) -> tuple[float, float] | None:
    if raw is None:
        return None
    if not (isinstance(raw, list) and len(raw) == 2 and float(raw[0]) <= float(raw[1])):
        msg = f"vocabulary: {name}: range must be [low, high]"
        raise ProfileError(msg)
    return float(raw[0]), float(raw[1])


@cache
def load_vocabulary() -> Vocabulary:
    """The shipped vocabulary, parsed once per process."""
    text = resources.files("dcim").joinpath("vocabulary.yaml").read_text(encoding="utf-8")
    return _parse(yaml.safe_load(text))
