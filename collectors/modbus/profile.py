"""Modbus register maps as data: pydantic models and loading with line-numbered errors.

A profile states its address base (0: the addresses are the ones on the wire;
1: they follow the 1-based numbering of most device manuals), a default
byte/word order, and one entry per value: which table (function), where, which
data type, how to scale it, and which vocabulary metric it feeds.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import Field, model_validator

from collectors.modbus.decode import NUMERIC, DataType, Order
from collectors.shipped import available_profiles, on_profiles_changed, read_profile
from dcim.configmodel import Strict
from dcim.errors import ProfileError
from dcim.vocabulary import MetricSpec, load_vocabulary
from dcim.yamlsource import YamlSourceError, validate_yaml

Function = Literal["coils", "discrete_inputs", "holding", "input"]
BIT_FUNCTIONS = frozenset({"coils", "discrete_inputs"})
MAX_ADDRESS = 0xFFFF


class ModbusField(Strict):
    """One value: a register (or a few, or a coil) mapped onto one vocabulary metric."""

    metric: str
    function: Function = "holding"
    address: int = Field(ge=0, le=MAX_ADDRESS + 1)
    type: DataType = DataType.UINT16
    #: Byte/word order; the profile's `order` when not given.
    order: Order | None = None
    #: Registers of a string.
    length: int = Field(default=1, ge=1, le=125)
    #: Bit field inside one register: lowest bit and width.
    bit: int = Field(default=0, ge=0, le=15)
    width: int = Field(default=1, ge=1, le=16)
    scale: float = 1.0
    offset: float = 0.0
    #: The unit the device value has after scaling; must be the metric's.
    unit: str | None = None
    enum: dict[int | str, str] = Field(default_factory=dict)
    #: Bit-flag map (alarm word): bit -> name; one reading per flag, tagged `flag_tag`.
    flags: dict[int, str] = Field(default_factory=dict)
    flag_tag: str = "alarm"
    #: For a bool metric: the raw value meaning true (default: any non-zero).
    true_value: int | None = None
    valid_range: tuple[float, float] | None = None
    #: Raw values that mean "not available" (e.g. 0x7FFF, -32768).
    missing: list[int | str] = Field(default_factory=list)
    #: Tags fixed for this value (phase: "1", scope: facility, position: inlet...).
    tags: dict[str, str] = Field(default_factory=dict)
    description: str = ""

    @property
    def registers(self) -> int:
        """Registers (or bits, for coils/discrete inputs) the value occupies."""
        if self.type is DataType.STRING:
            return self.length
        if self.type in NUMERIC:
            return NUMERIC[self.type][1]
        return 1

    @model_validator(mode="after")
    def _consistent(self) -> ModbusField:
        try:
            spec = load_vocabulary().get(self.metric)
        except ProfileError as exc:
            raise ValueError(str(exc)) from None
        self._check_type(spec)
        self._check_meaning(spec)
        return self

    def _check_type(self, spec: MetricSpec) -> None:
        if self.function in BIT_FUNCTIONS and self.type is not DataType.BOOL:
            msg = f"{self.function} hold single bits: type must be bool, not {self.type.value}"
            raise ValueError(msg)
        if (self.bit or self.width != 1) and self.type is not DataType.BITS:
            raise ValueError("bit and width belong to type bits")
        if self.type is DataType.BITS and self.bit + self.width > 16:
            msg = f"bit field {self.bit}+{self.width} does not fit a 16-bit register"
            raise ValueError(msg)
        if self.length != 1 and self.type is not DataType.STRING:
            raise ValueError("length belongs to type string")
        if self.scale == 0:
            raise ValueError("scale must not be 0")
        if self.unit is not None and self.unit != (spec.unit or ""):
            msg = f"unit {self.unit!r} is not the unit of {self.metric} ({spec.unit or 'none'})"
            raise ValueError(msg)
        if self.valid_range is not None and self.valid_range[0] > self.valid_range[1]:
            raise ValueError("valid_range must be [low, high]")

    def _check_meaning(self, spec: MetricSpec) -> None:
        if self.flags:
            if spec.type != "bool":
                msg = f"a bit-flag map feeds a bool metric; {self.metric} is {spec.type}"
                raise ValueError(msg)
            bits = 16 * self.registers if self.type in NUMERIC else 0
            if not bits or self.type in (DataType.FLOAT32, DataType.FLOAT64):
                raise ValueError("a bit-flag map needs an integer register type")
            if any(not 0 <= bit < bits for bit in self.flags):
                raise ValueError(f"flag bits must be 0..{bits - 1} for {self.type.value}")
            return
        if spec.type == "enum":
            if not self.enum:
                raise ValueError(f"{self.metric} is an enum: give an enum map")
            unknown = sorted(set(self.enum.values()) - set(spec.values))
            if unknown:
                msg = f"enum names {unknown} are not values of {self.metric} {list(spec.values)}"
                raise ValueError(msg)
        elif self.enum:
            raise ValueError(f"an enum map needs an enum metric; {self.metric} is {spec.type}")
        if self.type is DataType.STRING and spec.type != "enum":
            raise ValueError("a string register feeds an enum metric only")


class ModbusProfile(Strict):
    name: str
    kind: Literal["ups", "pdu", "crac", "sensor", "meter", "generator", "battery"]
    description: str = ""
    source: str = ""
    #: 0: addresses are PDU addresses (as sent); 1: manual numbering, register 1 is PDU 0.
    address_base: Literal[0, 1]
    order: Order = Order.ABCD
    fields: list[ModbusField] = Field(min_length=1)

    @model_validator(mode="after")
    def _addresses_fit(self) -> ModbusProfile:
        for index, field in enumerate(self.fields):
            start = field.address - self.address_base
            if start < 0 or start + field.registers - 1 > MAX_ADDRESS:
                msg = (
                    f"fields[{index}] ({field.metric}): address {field.address} is outside "
                    f"the {self.address_base}-based address space"
                )
                raise ValueError(msg)
        return self

    def wire_address(self, field: ModbusField) -> int:
        """The address as sent in the request (0-based)."""
        return field.address - self.address_base


def parse_modbus_profile(text: str, source: str) -> ModbusProfile:
    """Validate a register map; ProfileError lists each problem with its line."""
    try:
        return validate_yaml(text, source, ModbusProfile.model_validate, drop=("function-after",))
    except YamlSourceError as exc:
        raise ProfileError(str(exc)) from None


def available_modbus_profiles() -> list[str]:
    """Names of the shipped register maps."""
    return available_profiles("modbus")


@cache
def load_modbus_profile(name: str) -> ModbusProfile:
    """The shipped register map called `name` (profiles/modbus/<name>.yaml)."""
    return parse_modbus_profile(*read_profile("modbus", name, "Modbus profile"))


on_profiles_changed(load_modbus_profile.cache_clear)
