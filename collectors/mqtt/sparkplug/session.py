"""Sparkplug B edge-node sessions: BIRTH/DATA/DEATH messages -> values and device.up.

Topics are `spBv1.0/<group>/<type>/<edge>[/<device>]`. An inventory device is an edge
node (`mqtt.name: group/edge`) or a device behind one (`group/edge/device`). Per edge
node the monitor keeps what the specification asks a host application to keep:

- NBIRTH starts a session: its `bdSeq` metric, `seq` 0, and the metric names with their
  aliases and data types (DBIRTH does the same for a device). DATA messages may carry
  only aliases; they are resolved with the last BIRTH of the same node or device.
- every message but NDEATH carries `seq`, one more than the last (mod 256): a jump means
  messages were lost, counted as `seq_gap`.
- NDEATH (the node's last will) with the session's `bdSeq` ends the session: the node
  and every device behind it are down. A will with another `bdSeq` is from an older
  session and ignored. DDEATH takes one device down; a BIRTH brings it back.

Metrics are mapped by their BIRTH name (`sparkplug.metrics` of the topic map); metrics
the map does not name are not read. A metric's own timestamp is kept, else the payload's.
The monitor only listens: it never publishes commands (no rebirth request), so values
sent by alias before the monitor saw a BIRTH are counted as `unknown_alias` until the
next BIRTH.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from google.protobuf.message import DecodeError

from collectors.mqtt.decode import CompiledField, FieldError, compile_value, parse_timestamp
from collectors.mqtt.routing import device_mqtt_name
from collectors.mqtt.sparkplug import dcim_sparkplug_b_pb2 as pb
from collectors.mqtt.topicmap import Sparkplug, TopicMap
from dcim.errors import ConfigError
from dcim.inventory import PlacedDevice
from dcim.reading import Value

NAMESPACE = "spBv1.0"
NODE_TYPES = frozenset({"NBIRTH", "NDATA", "NDEATH"})
DEVICE_TYPES = frozenset({"DBIRTH", "DDATA", "DDEATH"})
#: Signed integer types and their width: stored as two's complement in unsigned fields.
_SIGNED_BITS = {pb.Int8: 8, pb.Int16: 16, pb.Int32: 32, pb.Int64: 64}


@dataclass(frozen=True, slots=True)
class _Metrics:
    """The compiled `sparkplug.metrics` of one topic map: exact names, then patterns."""

    exact: Mapping[str, CompiledField]
    patterns: tuple[tuple[re.Pattern[str], CompiledField], ...]

    @classmethod
    def compile(cls, spec: Sparkplug) -> _Metrics:
        exact: dict[str, CompiledField] = {}
        patterns: list[tuple[re.Pattern[str], CompiledField]] = []
        for metric in spec.metrics:
            convert, unit = compile_value(metric)
            compiled = CompiledField(
                metric.name,
                metric.metric,
                unit,
                MappingProxyType(dict(metric.tags)),
                convert,
                key_tag=metric.key_tag,
            )
            if "*" in metric.name:
                before, _, after = metric.name.partition("*")
                regex = re.compile(f"{re.escape(before)}(.+){re.escape(after)}", re.DOTALL)
                patterns.append((regex, compiled))
            else:
                exact[metric.name] = compiled
        return cls(MappingProxyType(exact), tuple(patterns))

    def find(self, name: str) -> tuple[CompiledField, str] | None:
        compiled = self.exact.get(name)
        if compiled is not None:
            return compiled, ""
        for regex, candidate in self.patterns:
            matched = regex.fullmatch(name)
            if matched is not None:
                return candidate, matched.group(1)
        return None


@dataclass(slots=True)
class _Node:
    """One edge node's session, as far as the monitor has seen it."""

    devices: dict[str | None, PlacedDevice] = field(default_factory=dict)
    bdseq: int | None = None
    seq: int | None = None
    #: per scope (None: the node, else the device id): alias -> (name, datatype)
    aliases: dict[str | None, dict[int, tuple[str, int]]] = field(default_factory=dict)
    #: per scope: name -> datatype from the BIRTH (DATA may omit it)
    datatypes: dict[str | None, dict[str, int]] = field(default_factory=dict)


@dataclass(slots=True)
class Outcome:
    """What one message gave: values, up/down changes, problems, and whether it was for
    the inventory at all (False: no monitored node or device)."""

    known: bool = True
    values: list[tuple[PlacedDevice, CompiledField, Value, Mapping[str, str], int]] = field(
        default_factory=list
    )
    up: list[tuple[PlacedDevice, bool, str]] = field(default_factory=list)
    #: (device, reason, field, detail); device None: the collector's own (unknown sender)
    problems: list[tuple[PlacedDevice | None, str, str, str]] = field(default_factory=list)
    #: The inventory devices this message is about (for their last-seen time).
    seen: list[PlacedDevice] = field(default_factory=list)


class SparkplugSessions:
    """Edge-node sessions of the inventory's Sparkplug devices."""

    def __init__(self, devices: Sequence[PlacedDevice], maps: Mapping[str, TopicMap]) -> None:
        self._nodes: dict[tuple[str, str], _Node] = {}
        self._metrics: dict[str, _Metrics] = {}
        self._filters: list[str] = []
        for placed in devices:
            topic_map = maps[placed.device.profile]
            entries = [e for e in topic_map.topics if e.sparkplug is not None]
            if not entries:
                continue
            name = device_mqtt_name(placed)
            parts = name.split("/")
            if len(parts) not in (2, 3) or not all(parts):
                raise ConfigError(
                    placed.device.id,
                    [
                        f"a Sparkplug device needs mqtt.name group/edge or group/edge/device, not {name!r}"
                    ],
                )
            node = self._nodes.setdefault((parts[0], parts[1]), _Node())
            scope = parts[2] if len(parts) == 3 else None
            if scope in node.devices:
                raise ConfigError(
                    placed.device.id,
                    [f"Sparkplug name {name} is also {node.devices[scope].device.id}"],
                )
            node.devices[scope] = placed
            if topic_map.name not in self._metrics:
                spec = entries[0].sparkplug
                assert spec is not None
                self._metrics[topic_map.name] = _Metrics.compile(spec)
            self._filters.extend(e.topic_pattern.filter for e in entries)

    @property
    def filters(self) -> list[str]:
        return list(dict.fromkeys(self._filters))

    def matches(self, topic: str) -> bool:
        return bool(self._nodes) and topic.startswith(NAMESPACE + "/")

    def handle(self, topic: str, payload: bytes, now_ns: int) -> Outcome:
        parts = topic.split("/")
        if len(parts) not in (4, 5) or parts[2] not in NODE_TYPES | DEVICE_TYPES:
            return Outcome()  # STATE, NCMD/DCMD: not data
        group, kind, edge = parts[1], parts[2], parts[3]
        device_id = parts[4] if len(parts) == 5 else None
        node = self._nodes.get((group, edge))
        out = Outcome()
        if node is None or (kind in DEVICE_TYPES) != (device_id is not None):
            out.known = False
            return out
        target = node.devices.get(device_id)
        owner = target or node.devices.get(None) or next(iter(node.devices.values()))
        out.seen.extend([target] if target else [])
        message = pb.Payload()
        try:
            message.ParseFromString(payload)
        except DecodeError as exc:
            out.problems.append((owner, "bad_protobuf", "", f"not a Sparkplug B payload: {exc}"))
            return out
        if kind == "NDEATH":
            self._node_death(node, message, out)
            return out
        self._check_seq(node, kind, message, owner, out)
        if kind == "NBIRTH":
            node.bdseq = _bdseq(message)
            node.aliases.clear()  # a new session: devices birth again too
            node.datatypes.clear()
        if kind in ("NBIRTH", "DBIRTH"):
            self._birth(node, device_id, message)
            if target is not None:
                out.up.append((target, True, f"{kind} (session bdSeq {node.bdseq})"))
        if kind == "DDEATH":
            if target is not None:
                out.up.append((target, False, "DDEATH: its edge node reports it offline"))
            return out
        if target is None:
            if device_id is not None:
                out.known = False
            return out  # an edge node's own metrics, the node itself not monitored
        self._values(node, device_id, target, message, now_ns=now_ns, out=out)
        return out

    # --- session bookkeeping ------------------------------------------------------

    def _check_seq(
        self, node: _Node, kind: str, message: pb.Payload, owner: PlacedDevice, out: Outcome
    ) -> None:
        if not message.HasField("seq"):
            out.problems.append((owner, "missing_seq", "seq", f"{kind} without seq"))
            return
        seq = message.seq
        if kind != "NBIRTH" and node.seq is not None and seq != (node.seq + 1) % 256:
            detail = f"{kind} seq {seq} after {node.seq}: messages of this edge node were lost"
            out.problems.append((owner, "seq_gap", "seq", detail))
        node.seq = seq

    def _node_death(self, node: _Node, message: pb.Payload, out: Outcome) -> None:
        bdseq = _bdseq(message)
        if node.bdseq is not None and bdseq is not None and bdseq != node.bdseq:
            return  # the will of an older session, delivered late
        node.seq = None
        node.aliases.clear()
        node.datatypes.clear()
        for placed in node.devices.values():
            out.seen.append(placed)
            out.up.append((placed, False, f"NDEATH (bdSeq {bdseq}): its edge node is offline"))

    def _birth(self, node: _Node, scope: str | None, message: pb.Payload) -> None:
        aliases = node.aliases[scope] = {}
        datatypes = node.datatypes[scope] = {}
        for metric in message.metrics:
            if not metric.HasField("name"):
                continue
            datatypes[metric.name] = metric.datatype
            if metric.HasField("alias"):
                aliases[metric.alias] = (metric.name, metric.datatype)

    # --- values -----------------------------------------------------------------

    def _values(
        self,
        node: _Node,
        scope: str | None,
        target: PlacedDevice,
        message: pb.Payload,
        *,
        now_ns: int,
        out: Outcome,
    ) -> None:
        metrics = self._metrics[target.device.profile]
        aliases = node.aliases.get(scope, {})
        datatypes = node.datatypes.get(scope, {})
        payload_ts = message.timestamp if message.HasField("timestamp") else None
        for metric in message.metrics:
            if metric.HasField("name"):
                name = metric.name
                datatype = metric.datatype or datatypes.get(name, 0)
            elif metric.HasField("alias") and metric.alias in aliases:
                name, datatype = aliases[metric.alias]
            else:
                where = f"alias {metric.alias}" if metric.HasField("alias") else "(no name)"
                detail = "no BIRTH of this session names it (the monitor waits for the next one)"
                out.problems.append((target, "unknown_alias", where, detail))
                continue
            found = metrics.find(name)
            if found is None or metric.is_null:
                continue
            compiled, key = found
            try:
                raw = metric_value(metric, datatype)
                if raw is None:
                    raise FieldError("wrong_type", "metric has no value of a readable type")
                value = compiled.convert(raw)
                ts_ms = metric.timestamp if metric.HasField("timestamp") else payload_ts
                ts_ns = now_ns if ts_ms is None else parse_timestamp(ts_ms, "epoch_ms", now_ns)
            except FieldError as exc:
                out.problems.append((target, exc.reason, name, str(exc)))
                continue
            out.values.append((target, compiled, value, compiled.tags_for(key), ts_ns))


def _bdseq(message: pb.Payload) -> int | None:
    for metric in message.metrics:
        if metric.name == "bdSeq":
            value = metric_value(metric, metric.datatype)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return None


def metric_value(metric: pb.Payload.Metric, datatype: int) -> object | None:
    """The Python value of a metric: signed integers from their two's complement, a
    float32 to the digits it holds; None for types not read here (DataSet, Template...)."""
    kind = metric.WhichOneof("value")
    if kind is None or kind == "bytes_value":
        return None
    raw: object = getattr(metric, kind)
    bits = _SIGNED_BITS.get(datatype)  # type: ignore[call-overload]
    if bits is not None and isinstance(raw, int) and not isinstance(raw, bool):
        raw &= (1 << bits) - 1
        if raw >= 1 << (bits - 1):
            raw -= 1 << bits
    if kind == "float_value" and isinstance(raw, float) and math.isfinite(raw):
        raw = float(f"{raw:.7g}")  # 21.3 stored as 21.299999237... reads as 21.3
    return raw
