"""Device profiles: data files mapping device values onto the metric vocabulary.

A profile lists scalars (one OID each) and tables (columns walked with GETBULK,
one row per index). Each field names a vocabulary metric, where its value comes
from, and how to turn the raw value into the metric's unit: scale, offset, enum.
Profiles are validated once at load and compiled by the protocol package.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BeforeValidator,
    Field,
    field_validator,
    model_validator,
)

from collectors.shipped import on_profiles_changed, read_profile
from dcim.configmodel import Strict
from dcim.errors import ProfileError
from dcim.vocabulary import load_vocabulary
from dcim.yamlsource import YamlSourceError, validate_yaml

OID_PATTERN = r"^\d+(\.\d+)+$"


def _numeric_oid(value: object) -> object:
    """A numeric OID, a leading dot (as net-snmp prints them) dropped."""
    if not isinstance(value, str):
        return value
    text = value.strip().removeprefix(".")
    if not re.match(OID_PATTERN, text):
        msg = f"{value!r} is not a numeric OID (dotted numbers, e.g. 1.3.6.1.2.1.33.1.2.4.0)"
        raise ValueError(msg)
    return text


Oid = Annotated[str, BeforeValidator(_numeric_oid)]


def _known_metric(metric: str) -> str:
    try:
        load_vocabulary().get(metric)
    except ProfileError as exc:
        raise ValueError(str(exc)) from None  # pydantic reports it with the path
    return metric


def _check_enum(metric: str, enum: dict[int, str]) -> None:
    spec = load_vocabulary().get(metric)
    unknown = sorted(set(enum.values()) - set(spec.values)) if spec.type == "enum" else []
    if unknown:
        msg = f"enum values {unknown} are not values of {metric} ({', '.join(spec.values)})"
        raise ValueError(msg)


class Condition(Strict):
    """A scalar whose value switches a profile-wide setting (e.g. the temperature unit)."""

    oid: Oid
    values: list[int] = Field(min_length=1)


class Conversion(Strict):
    """How one raw value becomes a vocabulary value.

    Numbers: `raw * scale / divisor + offset` (divisor from `divisor_oid` or
    `decimals_oid` when the field has one), then °F -> °C when `fahrenheit`,
    then the plausibility check `valid_range`. Raw values listed in `missing`
    mean "no value here" (unplugged probe, not measured) and are dropped quietly.
    """

    type: Literal["number", "enum", "bool", "string"] = "number"
    scale: float = 1.0
    offset: float = 0.0
    enum: dict[int, str] = Field(default_factory=dict)
    true_values: list[int] = Field(default_factory=lambda: [1])
    valid_range: tuple[float, float] | None = None
    missing: list[float] = Field(default_factory=list)
    #: The device reports degrees Fahrenheit; the value is converted to °C.
    fahrenheit: bool = False
    #: With `fahrenheit`: °F only while this scalar says so (default: the profile's
    #: `fahrenheit_when`). Composition sets it, so each profile of a device keeps its own switch.
    fahrenheit_when: Condition | None = None
    #: Fixed tags for this field's readings (e.g. position: inlet).
    tags: dict[str, str] = Field(default_factory=dict)
    #: Numbers only: the raw value is text with the number inside it and a unit or words
    #: around it (a rating such as "16A" or "32 A"); the first decimal number in the
    #: text is the raw value. Text without a number is a decode error.
    number_in_text: bool = False
    #: When a device runs several profiles and more than one reads this metric, the
    #: readings of the highest precedence are kept (default: the profile's `priority`).
    #: Set it where a lower-priority MIB is the richer source of one quantity.
    precedence: int | None = None

    @model_validator(mode="after")
    def _number_in_text_is_a_number(self) -> Conversion:
        if self.number_in_text and self.type != "number":
            msg = f"number_in_text reads a number; this field's type is {self.type}"
            raise ValueError(msg)
        return self


class SnmpField(Conversion):
    """One metric read from one OID (scalar: full instance OID; table: column OID)."""

    metric: str
    oid: Oid
    #: Scalars: OIDs tried in order when `oid` has no value (twins in the same unit).
    fallback_oids: list[Oid] = Field(default_factory=list)
    #: Tables: a column holding this row's divisor (e.g. APC's scale column).
    divisor_oid: Oid | None = None
    #: Tables: a column (same index) holding this row's number of decimal digits.
    decimals_oid: Oid | None = None
    #: Tables: a column holding this row's signed scale: negative divides by its
    #: magnitude, positive multiplies (Rittal CMC III cmcIIIVarScale).
    signed_scale_oid: Oid | None = None
    source: str = ""

    _metric_known = field_validator("metric")(_known_metric)

    @model_validator(mode="after")
    def _enum_in_vocabulary(self) -> SnmpField:
        _check_enum(self.metric, self.enum)
        return self


class SnmpVariant(Conversion):
    """The metric (and conversion) a switched column has for one selector value."""

    metric: str

    _metric_known = field_validator("metric")(_known_metric)

    @model_validator(mode="after")
    def _enum_in_vocabulary(self) -> SnmpVariant:
        _check_enum(self.metric, self.enum)
        return self


class SwitchedColumn(Strict):
    """A table column whose meaning depends on the row (sensor type, unit column).

    The selector is one named index part (`select_index`), another column's
    value (`select_oid`) or a tag the table's `label_rules` give the row
    (`select_tag`: for devices where only the row's own name says what it is,
    such as a dry contact named "Door"); `variants` maps each selector value to
    its metric. Rows whose selector has no variant are skipped: the profile does
    not know them.
    """

    oid: Oid
    select_index: str | None = None
    select_oid: Oid | None = None
    select_tag: str | None = None
    variants: dict[str, SnmpVariant] = Field(min_length=1)
    divisor_oid: Oid | None = None
    decimals_oid: Oid | None = None
    signed_scale_oid: Oid | None = None

    @field_validator("variants", mode="before")
    @classmethod
    def _keys_as_text(cls, variants: Any) -> Any:
        # YAML keys may be ints (sensor types) or text (units); compare as text
        if isinstance(variants, dict):
            return {str(key): value for key, value in variants.items()}
        return variants

    @model_validator(mode="after")
    def _one_selector(self) -> SwitchedColumn:
        given = [s for s in (self.select_index, self.select_oid, self.select_tag) if s is not None]
        if len(given) != 1:
            msg = "give exactly one of select_index, select_oid and select_tag"
            raise ValueError(msg)
        return self


class LabelRule(Strict):
    """Tags for the table rows whose label (the device's own name) matches `match`.

    `match` is a regular expression searched in the label, ignoring case. Rules
    apply in order and the first rule that sets a tag wins, so specific rules go
    first and a catch-all (`match: ""`) last. Tag names starting with `_` are
    only for a switched column's `select_tag`, not written to readings.
    """

    match: str
    tags: dict[str, str] = Field(min_length=1)

    @field_validator("match")
    @classmethod
    def _compiles(cls, match: str) -> str:
        try:
            re.compile(match)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return match


class RowFilter(Strict):
    """Drop a row whose column `oid` holds a value not in `values` (e.g. probe offline).

    A row without that column is kept: the device did not say it is unusable.
    """

    oid: Oid
    values: list[int] = Field(min_length=1)


class Rollup(Strict):
    """One reading for the whole device from several rows: the highest stage reached.

    For devices that report a level as one row per stage, each row closed while its
    stage is reached (a VESDA detector's Alert/Action/Fire1/Fire2 relays wired to dry
    contacts). A row's stage is its `select_tag` (given by the table's `label_rules`);
    it counts as reached while column `oid` holds one of `true_values`. The reading is
    the last stage of `order` reached, or `otherwise` when none is. Rows holding a
    `missing` value say nothing; no usable row at all gives no reading.
    """

    metric: str
    oid: Oid
    select_tag: str
    order: list[str] = Field(min_length=1)
    otherwise: str
    true_values: list[int] = Field(default_factory=lambda: [1])
    missing: list[int] = Field(default_factory=list)
    #: Fixed tags for the reading (it has no row tags: it is the device's).
    tags: dict[str, str] = Field(default_factory=dict)
    #: As `Conversion.precedence`: which profile's reading of this metric a device keeps.
    precedence: int | None = None

    _metric_known = field_validator("metric")(_known_metric)

    @model_validator(mode="after")
    def _values_in_vocabulary(self) -> Rollup:
        spec = load_vocabulary().get(self.metric)
        if spec.type != "enum":
            msg = f"a rollup gives an enum metric; {self.metric} is {spec.type}"
            raise ValueError(msg)
        unknown = sorted((set(self.order) | {self.otherwise}) - set(spec.values))
        if unknown:
            msg = f"values {unknown} are not values of {self.metric} ({', '.join(spec.values)})"
            raise ValueError(msg)
        return self


class SnmpTable(Strict):
    """Columns of one conceptual table, each row tagged with its index (and label)."""

    name: str
    #: Tag carrying the whole row index (e.g. `outlet`, `sensor`, `line`).
    index_tag: str = "index"
    #: Names of the index parts, one sub-identifier each: each becomes a tag
    #: (names starting with `_` are only for `select_index`, not tags).
    index_parts: list[str] = Field(default_factory=list)
    label_oid: Oid | None = None
    label_tag: str = "label"
    #: Tags taken from the label (e.g. position: inlet when the name says "Inlet").
    label_rules: list[LabelRule] = Field(default_factory=list)
    #: Keep only rows this column allows (e.g. a probe's "online" column).
    require: RowFilter | None = None
    columns: list[SnmpField] = Field(default_factory=list)
    switched: list[SwitchedColumn] = Field(default_factory=list)
    #: Readings for the whole device, each from several rows (e.g. a stage per row).
    rollups: list[Rollup] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_values_and_known_parts(self) -> SnmpTable:
        if not self.columns and not self.switched and not self.rollups:
            msg = "a table needs columns, switched columns or rollups"
            raise ValueError(msg)
        if self.label_rules and self.label_oid is None:
            msg = "label_rules need a label_oid"
            raise ValueError(msg)
        rule_tags = {name for rule in self.label_rules for name in rule.tags}
        for column in self.switched:
            if column.select_index is not None and column.select_index not in self.index_parts:
                msg = f"select_index {column.select_index!r} is not in index_parts"
                raise ValueError(msg)
            if column.select_tag is not None and column.select_tag not in rule_tags:
                msg = f"select_tag {column.select_tag!r} is set by no label_rules entry"
                raise ValueError(msg)
        for rollup in self.rollups:
            if rollup.select_tag not in rule_tags:
                msg = f"rollup select_tag {rollup.select_tag!r} is set by no label_rules entry"
                raise ValueError(msg)
        return self


class SnmpProfile(Strict):
    name: str
    kind: Literal["ups", "pdu", "crac", "sensor", "meter", "generator", "battery"]
    description: str = ""
    source: str = ""
    #: sysObjectID prefixes of devices this profile is meant for (discovery).
    sys_object_ids: list[Oid] = Field(default_factory=list)
    #: Regular expressions (searched, case ignored) for the sysDescr of devices this
    #: profile is meant for: for cards whose sysObjectID is generic (net-snmp, Linux).
    sys_descr: list[str] = Field(default_factory=list)
    #: OIDs (subtrees) whose presence shows the device speaks this profile's MIB.
    probe_oids: list[Oid] = Field(default_factory=list)
    #: Discovery: when every one of these answers too, the profile does not apply
    #: (an older MIB generation the device also serves, read by a newer profile).
    unless_oids: list[Oid] = Field(default_factory=list)
    #: Which profile leads when several apply to a device (its kind, its name first),
    #: and, field by field, whose reading of a metric is kept (see `Conversion.precedence`).
    #: Negative: a standard MIB (UPS-MIB, ENTITY-SENSOR-MIB) read from any device
    #: that answers it, behind every vendor profile.
    priority: int = 0
    #: Profiles this one replaces when both apply (an older generation of the same MIB).
    supersedes: list[str] = Field(default_factory=list)
    #: Profiles whose scalars and tables this one also polls (e.g. UPS-MIB).
    include: list[str] = Field(default_factory=list)
    #: Fields with `fahrenheit: true` are °F only while this scalar says so.
    fahrenheit_when: Condition | None = None
    scalars: list[SnmpField] = Field(default_factory=list)
    tables: list[SnmpTable] = Field(default_factory=list)

    @field_validator("sys_descr")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return patterns

    @property
    def is_standard(self) -> bool:
        """A standard MIB's profile: applies to any device that answers its probes."""
        return self.priority < 0

    @property
    def parts(self) -> tuple[str, ...]:
        """The shipped profiles this one is made of (itself, or those of a composition)."""
        return split_profile_names(self.name)


#: Joins the profiles of a device that answers several MIBs: `apc-ups+apc-uio`.
PROFILE_JOINER = "+"


def split_profile_names(name: str) -> tuple[str, ...]:
    """`a+b` -> ("a", "b"): the profiles a device's `profile` names, in order."""
    return tuple(part.strip() for part in name.split(PROFILE_JOINER) if part.strip())


def parse_snmp_profile(text: str, source: str) -> SnmpProfile:
    """Validate a profile's text; ProfileError lists each problem with its line."""
    try:
        return validate_yaml(text, source, SnmpProfile.model_validate)
    except YamlSourceError as exc:
        raise ProfileError(str(exc)) from None


@cache
def load_snmp_profile(name: str) -> SnmpProfile:
    """The shipped SNMP profile called `name` (file profiles/snmp/<name>.yaml).

    Included profiles are merged in: their scalars and tables follow the profile's own.
    A name joining several profiles (`apc-ups+apc-uio`) gives their composition
    (`compose_profiles`).
    """
    parts = split_profile_names(name)
    if len(parts) > 1:
        return compose_profiles([load_snmp_profile(part) for part in parts])
    return _load(name, ())


_Ranked = TypeVar("_Ranked", SnmpField, SnmpVariant, Rollup)


def _ranked(field: _Ranked, rank: int, switch: Condition | None = None) -> _Ranked:
    """The field with its profile's rank, and its profile's °F switch when it follows one."""
    update: dict[str, object] = {}
    if field.precedence is None:
        update["precedence"] = rank
    if (
        switch is not None
        and isinstance(field, Conversion)
        and field.fahrenheit
        and field.fahrenheit_when is None
    ):
        update["fahrenheit_when"] = switch
    return field.model_copy(update=update) if update else field


def _ranked_table(table: SnmpTable, rank: int, switch: Condition | None = None) -> SnmpTable:
    return table.model_copy(
        update={
            "columns": [_ranked(column, rank, switch) for column in table.columns],
            "switched": [
                column.model_copy(
                    update={
                        "variants": {
                            key: _ranked(variant, rank, switch)
                            for key, variant in column.variants.items()
                        }
                    }
                )
                for column in table.switched
            ],
            "rollups": [_ranked(rollup, rank) for rollup in table.rollups],
        }
    )


def compose_profiles(profiles: list[SnmpProfile]) -> SnmpProfile:
    """One device answering several MIBs: every profile's fields, each with its rank.

    The first profile leads (kind, description); a field without its own
    `precedence` takes its profile's `priority`. When more than one field gives a
    metric in a poll, the collector keeps the readings of the highest precedence
    only: one reading per quantity, from the richer source. A profile's °F switch
    (`fahrenheit_when`) goes with its own fields: two MIBs of one card may each
    say in their own scalar which unit their probes report.
    """
    if not profiles:
        msg = "no profiles to compose"
        raise ProfileError(msg)
    if len(profiles) == 1:
        return profiles[0]
    lead = profiles[0]
    scalars: list[SnmpField] = []
    tables: list[SnmpTable] = []
    for profile in profiles:
        switch = profile.fahrenheit_when
        scalars += [_ranked(field, profile.priority, switch) for field in profile.scalars]
        tables += [
            _ranked_table(table, profile.priority, switch).model_copy(
                update={"name": f"{profile.name}:{table.name}"}
            )
            for table in profile.tables
        ]
    return lead.model_copy(
        update={
            "name": PROFILE_JOINER.join(p.name for p in profiles),
            "description": "; ".join(p.description for p in profiles if p.description),
            "source": "; ".join(p.source for p in profiles if p.source),
            "fahrenheit_when": None,
            "scalars": scalars,
            "tables": tables,
        }
    )


def _load(name: str, seen: tuple[str, ...]) -> SnmpProfile:
    if name in seen:
        msg = f"SNMP profile include loop: {' -> '.join((*seen, name))}"
        raise ProfileError(msg)
    profile = parse_snmp_profile(*read_profile("snmp", name, "SNMP profile"))
    scalars, tables = list(profile.scalars), list(profile.tables)
    for included in profile.include:
        other = _load(included, (*seen, name))
        scalars.extend(other.scalars)
        tables.extend(other.tables)
    return profile.model_copy(update={"scalars": scalars, "tables": tables})


on_profiles_changed(load_snmp_profile.cache_clear)
