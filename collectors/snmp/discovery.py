"""Which profile fits an SNMP device, what it has, and its inventory entry.

The choice generalises by MIB, never by a device's values: profiles whose
`sys_object_ids` prefix the device's sysObjectID are candidates (longest prefix
first), and a candidate is taken when one of its `probe_oids` subtrees answers.
A device no prefix claims gets the profile whose probes answer with the highest
priority: the generic UPS-MIB and ENTITY-SENSOR-MIB profiles are the fallbacks.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass, field
from types import MappingProxyType

from collectors.profile import SnmpProfile, load_snmp_profile
from collectors.shipped import available_profiles
from collectors.snmp.client import (
    Absent,
    SnmpEngineHost,
    SnmpSession,
    SnmpStatusError,
    build_object_names,
)
from collectors.snmp.collector import SnmpCollector
from collectors.snmp.plan import oid_text, parse_oid, plan_profile
from dcim.inventory import DeviceConfig, PlacedDevice, SnmpConfig

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"

#: Index tags counted for the summary ("3 phase, 24 outlet").
COUNTED_TAGS = ("unit", "inlet", "phase", "line", "branch", "outlet", "sensor", "probe", "point")

#: OIDs per probing GETNEXT: small enough for any card.
PROBE_BATCH = 16


@dataclass(frozen=True, slots=True)
class Discovery:
    """What discovery learned about one device."""

    host: str
    port: int
    sys_object_id: str
    sys_descr: str
    sys_name: str
    profile: str | None
    kind: str | None
    #: Why this profile (or why none): for the operator, printed as is.
    reason: str
    counts: dict[str, int] = field(default_factory=dict)
    readings: int = 0


def _text(raw: object) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace").strip("\x00 \t\r\n")
    return "" if isinstance(raw, Absent) else str(raw).strip()


def _prefix_length(sys_object_id: str, prefixes: list[str]) -> int:
    """Length of the longest of `prefixes` that sysObjectID starts with (0: none)."""
    oid = parse_oid(sys_object_id) if sys_object_id else ()
    best = 0
    for prefix in prefixes:
        parts = parse_oid(prefix)
        if oid[: len(parts)] == parts:
            best = max(best, len(parts))
    return best


async def _answering_subtrees(session: SnmpSession, probes: list[str]) -> set[str]:
    """The probe OIDs under which the device has at least one object."""
    answered: set[str] = set()
    unique = sorted(set(probes))
    for start in range(0, len(unique), PROBE_BATCH):
        batch = unique[start : start + PROBE_BATCH]
        try:
            answers = await session.get_next(build_object_names(batch))
        except SnmpStatusError:
            # SNMPv1 answers noSuchName for the whole PDU at the end of the MIB: ask one by one
            answers = []
            for probe in batch:
                try:
                    answers.extend(await session.get_next(build_object_names([probe])))
                except SnmpStatusError:
                    answers.append(None)  # type: ignore[arg-type]
        for probe, vb in zip(batch, answers, strict=False):
            if vb is None or isinstance(vb.value, Absent):
                continue
            prefix = parse_oid(probe)
            if vb.oid[: len(prefix)] == prefix:
                answered.add(probe)
    return answered


def choose_profile(
    sys_object_id: str, answered: set[str], profiles: list[SnmpProfile]
) -> tuple[SnmpProfile | None, str]:
    """The best profile for a device, and the reason, from what it answered."""

    def probes_ok(profile: SnmpProfile) -> bool:
        return not profile.probe_oids or any(oid in answered for oid in profile.probe_oids)

    claimed = [
        (_prefix_length(sys_object_id, p.sys_object_ids), p.priority, p.name, p)
        for p in profiles
        if p.sys_object_ids
    ]
    claimed = [entry for entry in claimed if entry[0] > 0]
    for length, _, _, profile in sorted(claimed, key=lambda e: (-e[0], -e[1], e[2])):
        if probes_ok(profile):
            prefix = oid_text(parse_oid(sys_object_id)[:length])
            return profile, f"sysObjectID under {prefix}, {_probe_note(profile, answered)}"
    # generic MIBs (negative priority) are the fallbacks: a vendor profile whose
    # sysObjectID does not match is never guessed from its probes alone
    fallbacks = [p for p in profiles if p.priority < 0 and p.probe_oids and probes_ok(p)]
    if fallbacks:
        profile = sorted(fallbacks, key=lambda p: (-p.priority, p.name))[0]
        why = (
            "no profile claims this sysObjectID"
            if not claimed
            else "claiming profiles' MIBs are absent"
        )
        return profile, f"{why}; fallback: {_probe_note(profile, answered)}"
    return None, (
        f"unknown device: no profile claims sysObjectID {sys_object_id or '(none)'} "
        "and neither UPS-MIB nor ENTITY-SENSOR-MIB answers"
    )


def _probe_note(profile: SnmpProfile, answered: set[str]) -> str:
    hits = [oid for oid in profile.probe_oids if oid in answered]
    return f"{hits[0]} answers" if hits else "no probe needed"


def shipped_profiles() -> list[SnmpProfile]:
    return [load_snmp_profile(name) for name in available_profiles("snmp")]


async def discover(
    config: SnmpConfig,
    *,
    host: SnmpEngineHost | None = None,
    profiles: list[SnmpProfile] | None = None,
    poll: bool = True,
) -> Discovery:
    """Identify the device at `config`, choose its profile and (with `poll`) count its parts."""
    own_host = host is None
    engine = host or SnmpEngineHost()
    try:
        session = await engine.session(config.host, config)
        ident = await session.get(build_object_names([SYS_DESCR, SYS_OBJECT_ID, SYS_NAME]))
        values = {oid_text(vb.oid): vb.value for vb in ident}
        sys_object_id = _text(values.get(SYS_OBJECT_ID, Absent.NO_SUCH_OBJECT)).lstrip(".")
        candidates = profiles if profiles is not None else shipped_profiles()
        answered = await _answering_subtrees(
            session, [oid for p in candidates for oid in p.probe_oids]
        )
        profile, reason = choose_profile(sys_object_id, answered, candidates)
        found = Discovery(
            host=config.host,
            port=config.port,
            sys_object_id=sys_object_id,
            sys_descr=_text(values.get(SYS_DESCR, Absent.NO_SUCH_OBJECT)),
            sys_name=_text(values.get(SYS_NAME, Absent.NO_SUCH_OBJECT)),
            profile=profile.name if profile else None,
            kind=profile.kind if profile else None,
            reason=reason,
        )
        if profile is None or not poll:
            return found
        counts, readings = await _count_parts(engine, config, profile)
        return dataclasses.replace(found, counts=counts, readings=readings)
    finally:
        if own_host:
            engine.close()


async def _count_parts(
    engine: SnmpEngineHost, config: SnmpConfig, profile: SnmpProfile
) -> tuple[dict[str, int], int]:
    device = DeviceConfig.model_validate(
        {"id": "discovery", "kind": profile.kind, "profile": profile.name, "snmp": config}
    )
    placed = PlacedDevice(device, "", "", "", "", MappingProxyType({}))
    collector = SnmpCollector(placed, plan_profile(profile), engine, config)
    async with collector:
        readings = await collector.poll()
    # outlet 1 of PDU 1 and outlet 1 of PDU 2 are two outlets: count each tag
    # together with the tags above it (unit > inlet > line > outlet...)
    seen: dict[str, set[tuple[str, ...]]] = {}
    for reading in readings:
        path: tuple[str, ...] = ()
        for tag in COUNTED_TAGS:
            if tag in reading.tags:
                path = (*path, reading.tags[tag])
                seen.setdefault(tag, set()).add(path)
    counts = Counter({tag: len(values) for tag, values in seen.items()})
    return dict(sorted(counts.items())), len(readings)


def device_id_for(found: Discovery) -> str:
    """An inventory id from sysName (or the host), cut to what ids allow."""
    base = found.sys_name or found.host
    clean = re.sub(r"[^A-Za-z0-9_.:-]+", "-", base).strip("-.:_") or "device"
    return clean[:63]


def inventory_snippet(found: Discovery, config: SnmpConfig) -> str:
    """A ready-to-paste inventory device entry (credentials by reference only)."""
    if found.profile is None:
        return f"# {found.host}: {found.reason}\n"
    parts = ", ".join(f"{count} {tag}" for tag, count in found.counts.items()) or "no tables"
    lines = [
        f"# {found.sys_descr[:70] or 'no sysDescr'} (sysObjectID {found.sys_object_id})",
        f"# profile {found.profile}: {found.reason}",
        f"# found: {parts}; {found.readings} readings",
        f"- id: {device_id_for(found)}",
        f"  kind: {found.kind}",
        f"  profile: {found.profile}",
        "  snmp:",
        f"    host: {config.host}",
    ]
    if config.port != 161:
        lines.append(f"    port: {config.port}")
    lines.append(f"    version: {config.version.value}")
    if config.v3 is not None:
        v3 = config.v3
        lines += [
            "    v3:",
            f"      user: {v3.user}",
            f"      auth_protocol: {v3.auth_protocol}",
            "      auth_key: {env: DCIM_SNMP_AUTH_KEY}",
            f"      priv_protocol: {v3.priv_protocol}",
            "      priv_key: {env: DCIM_SNMP_PRIV_KEY}",
        ]
    else:
        lines.append("    community: {env: DCIM_SNMP_COMMUNITY}")
    return "\n".join(lines) + "\n"
