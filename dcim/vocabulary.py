"""The documented metric vocabulary (vocabulary.yaml): names, units, measurements.

A site extends it with metrics of its own (a quantity no shipped profile reads)
in `vocabulary.yaml` files beside its profiles: the same `metrics:` layout, each
metric with its type, unit and, for a group the shipped vocabulary does not have,
the InfluxDB measurement it is stored in. An extension adds; it never redefines
a shipped metric.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field

from dcim.configmodel import Strict
from dcim.errors import ProfileError
from dcim.yamlsource import YamlSourceError, load_yaml_with_lines, validate_yaml

#: `<group>.<quantity>_<unit>`: lower case, digits and underscores.
METRIC_NAME = r"^[a-z][a-z0-9]*\.[a-z][a-z0-9_]*$"


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
            msg = (
                f"metric {name!r} is not in the vocabulary (dcim/vocabulary.yaml, or a "
                "vocabulary.yaml beside the site's profiles)"
            )
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


class ExtensionMetric(Strict):
    """One metric a site declares (vocabulary.yaml beside its profiles)."""

    type: Literal["float", "int", "bool", "enum", "string"]
    unit: str | None = None
    description: str = Field(min_length=1)
    values: list[str] = Field(default_factory=list)
    #: The InfluxDB measurement (default: the group's, which must then exist).
    measurement: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    #: Physically plausible [low, high]: every decoded value outside it is dropped, counted.
    range: tuple[float, float] | None = None


class Extension(Strict):
    metrics: dict[str, ExtensionMetric] = Field(min_length=1)


#: The site's extension files, merged in this order.
_EXTENSIONS: list[Path] = []


def use_vocabulary_extensions(files: Iterable[Path]) -> None:
    """Merge these site vocabulary files from now on (in order; the first wins)."""
    files = list(files)
    if files != _EXTENSIONS:
        _EXTENSIONS[:] = files
        load_vocabulary.cache_clear()


def _extend(vocabulary: Vocabulary, path: Path) -> None:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        extension = validate_yaml(text, source, Extension.model_validate)
        _, lines = load_yaml_with_lines(text, source)
    except OSError as exc:
        raise ProfileError(f"{source}: cannot read: {exc.strerror or exc}") from None
    except YamlSourceError as exc:
        raise ProfileError(str(exc)) from None
    problems = []

    def problem(name: str, message: str) -> None:
        line = lines.get(("metrics", name))
        problems.append(f"metrics.{name}: {message}" + (f" (line {line})" if line else ""))

    for name, body in extension.metrics.items():
        group, _, field = name.partition(".")
        if not re.match(METRIC_NAME, name):
            problem(name, "name must be <group>.<quantity>_<unit>, lower case")
            continue
        if name in vocabulary.metrics:
            problem(name, "already in the vocabulary; an extension only adds")
            continue
        measurement = body.measurement or vocabulary.measurements.get(group)
        if measurement is None:
            problem(name, f"group {group!r} is new: say its `measurement:` (InfluxDB)")
            continue
        if body.type == "enum" and not body.values:
            problem(name, "an enum needs `values:`")
            continue
        vocabulary.measurements.setdefault(group, measurement)
        vocabulary.metrics[name] = MetricSpec(
            name=name,
            type=body.type,
            unit=body.unit,
            description=body.description,
            measurement=measurement,
            field=field,
            values=tuple(body.values),
            range=body.range,
        )
    if problems:
        raise ProfileError(f"{source}: " + "; ".join(problems))


@cache
def load_vocabulary() -> Vocabulary:
    """The shipped vocabulary with the site's extensions, parsed once per process."""
    text = resources.files("dcim").joinpath("vocabulary.yaml").read_text(encoding="utf-8")
    vocabulary = _parse(yaml.safe_load(text))
    for path in _EXTENSIONS:
        _extend(vocabulary, path)
    return vocabulary
