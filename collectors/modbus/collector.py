"""ModbusCollector: polls one unit id with its profile's plan, block by block.

A failed block costs only its own fields: exceptions, timeouts and garbage are
logged once per block (device, unit id, table, addresses) until it recovers,
and the readings of the other blocks still arrive. Only a device that answers
nothing raises a CollectError. Two transport failures in a row (timeout, lost
or refused connection) end the poll early, so a dead device costs at most two
timeouts, and what was read before is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType

from collectors.modbus.client import (
    ILLEGAL_ADDRESS,
    ModbusConnectError,
    ModbusConnectionLostError,
    ModbusExceptionError,
    ModbusGateway,
    ModbusTimeoutError,
)
from collectors.modbus.decode import DecodeError
from collectors.modbus.plan import Block, ModbusPlan, PlannedField
from dcim.errors import CollectError
from dcim.inventory import ModbusConfig, PlacedDevice
from dcim.plausible import check_value
from dcim.ratelimit import LogLimiter, held_back
from dcim.reading import Reading, TagSet, now_ns

log = logging.getLogger(__name__)

_TRANSPORT_ERRORS = (ModbusTimeoutError, ModbusConnectionLostError, ModbusConnectError)
MAX_TRANSPORT_FAILURES = 2


class ModbusCollector:
    """One Modbus device (a unit id on a gateway) decoded onto the vocabulary."""

    def __init__(
        self,
        placed: PlacedDevice,
        plan: ModbusPlan,
        gateway: ModbusGateway,
        config: ModbusConfig,
    ) -> None:
        self.device_id = placed.device.id
        self.tags = placed.tags
        self.plan = plan
        self.unit = config.unit_id
        self._gateway = gateway
        #: The blocks this device is read with; a block the device refuses as a
        #: whole (illegal address across a gap) is replaced by its pieces.
        self.blocks: list[Block] = list(plan.blocks)
        self._tags = {id(p): self._merged(p.field.tags) for b in plan.blocks for p in b.fields}
        self._bad: dict[tuple[str, int, str], str] = {}
        self._bad_log = LogLimiter()
        #: Values answered but undecodable or implausible in the last poll (device health).
        self.values_invalid = 0

    def _merged(self, extra: Mapping[str, str]) -> Mapping[str, str]:
        return TagSet({**self.tags, **extra}) if extra else self.tags

    async def __aenter__(self) -> ModbusCollector:
        return self  # connections belong to the gateway and open on first use

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def poll(self) -> list[Reading]:
        """One poll cycle; raises CollectError subclasses when the device fails."""
        ts = now_ns()
        self.values_invalid = 0
        readings: list[Reading] = []
        answered = 0
        failures: list[CollectError] = []
        in_a_row = 0
        queue = list(self.blocks)
        while queue:
            block = queue.pop(0)
            try:
                values = await self._gateway.read(
                    self.device_id, self.unit, block.code, block.address, block.count
                )
            except ModbusExceptionError as exc:
                in_a_row = 0
                pieces = block.split() if exc.code == ILLEGAL_ADDRESS else ()
                if len(pieces) > 1:
                    self._split(block, pieces)
                    queue[:0] = pieces
                    continue
                failures.append(exc)
                self._block_failed(block, exc)
                continue
            except _TRANSPORT_ERRORS as exc:
                failures.append(exc)
                self._block_failed(block, exc)
                in_a_row += 1
                if in_a_row >= MAX_TRANSPORT_FAILURES and queue:
                    self._gave_up(queue, exc)
                    break
                continue
            except CollectError as exc:  # garbage answer: wrong length, wrong unit
                failures.append(exc)
                self._block_failed(block, exc)
                continue
            in_a_row = 0
            answered += 1
            self._block_ok(block)
            self._decode(block, values, ts, readings)
        if not answered and failures:
            raise failures[0]
        return readings

    def _decode(self, block: Block, values: list[int], ts: int, out: list[Reading]) -> None:
        for planned in block.fields:
            start = planned.address - block.address
            registers = values[start : start + planned.field.registers]
            try:
                self._append(planned, registers, ts, out)
            except (DecodeError, ValueError) as exc:
                self._field_bad(block, planned, str(exc))

    def _append(
        self, planned: PlannedField, registers: list[int], ts: int, out: list[Reading]
    ) -> None:
        field = planned.field
        tags = self._tags[id(planned)]
        if planned.codec.flags:
            for name, state in planned.codec.decode_flags(registers):
                flag_tags = MappingProxyType({**tags, field.flag_tag: name})
                out.append(Reading(self.device_id, field.metric, state, None, ts, flag_tags))
            return
        value = planned.codec.decode(registers)
        if value is not None:
            value = check_value(field.metric, value)  # ImplausibleValueError is a ValueError
            out.append(Reading(self.device_id, field.metric, value, planned.unit, ts, tags))

    def _where(self, block: Block) -> str:
        return f"device {self.device_id} unit {self.unit} {block.span}"

    def _block_failed(self, block: Block, exc: CollectError) -> None:
        key = (block.function, block.address, "block")
        if self._bad.get(key) != exc.error_class:
            self._bad[key] = exc.error_class
            log.warning("%s: %s (its fields are skipped)", self._where(block), exc.detail)

    def _block_ok(self, block: Block) -> None:
        if self._bad.pop((block.function, block.address, "block"), None) is not None:
            log.info("%s: answering again", self._where(block))

    def _field_bad(self, block: Block, planned: PlannedField, why: str) -> None:
        self.values_invalid += 1
        held = self._bad_log.allow((block.function, planned.address, planned.field.metric))
        if held is None:
            return  # counted in device.values_invalid; logged at a bounded pace
        log.warning(
            "%s: dropped %s at address %d: %s%s",
            self._where(block),
            planned.field.metric,
            planned.address,
            why,
            held_back(held, self._bad_log.interval_s),
        )

    def _split(self, block: Block, pieces: tuple[Block, ...]) -> None:
        index = self.blocks.index(block)
        self.blocks[index : index + 1] = pieces
        log.info(
            "%s: refused as one read (illegal address); reading it as %d requests from now on",
            self._where(block),
            len(pieces),
        )

    def _gave_up(self, rest: list[Block], exc: CollectError) -> None:
        spans = ", ".join(block.span for block in rest)
        log.debug("device %s: poll ended early after %s; not read: %s", self.device_id, exc, spans)
