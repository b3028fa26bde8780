"""Which profiles fit an SNMP device, what it has, and its inventory entry.

A management card often answers several MIBs at once (a UPS card with probes,
a Liebert card with UPS-MIB and lgpEnvironmental, a PDU with old and new
tables), so a device gets every profile that applies, and its readings are
merged one per quantity (`collectors.snmp.profile.compose_profiles`). The choice
generalises by MIB, never by a device's values:

- a vendor profile applies when its `probe_oids` answer and the device is
  claimed by its `sys_object_ids` prefix or `sys_descr` pattern, or when one of
  its probes under a vendor's own subtree (1.3.6.1.4.1...) answers whatever the
  sysObjectID says (an unseen model, an OEM card, a Linux-based controller);
- a standard MIB's profile (UPS-MIB, ENTITY-SENSOR-MIB: negative priority)
  applies to any device that answers its probes;
- `unless_oids` and `supersedes` keep an older MIB generation out when the
  newer one is read.

The lead profile (kind, first in the name) is the claimed one with the longest
sysObjectID prefix, then the highest priority.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType

import yaml

from collectors.shipped import available_profiles
from collectors.snmp.client import SnmpHost
from collectors.snmp.collector import SnmpCollector
from collectors.snmp.plan import plan_profile
from collectors.snmp.profile import PROFILE_JOINER, SnmpProfile, compose_profiles, load_snmp_profile
from collectors.snmp.types import (
    Absent,
    Session,
    SessionHost,
    SnmpStatusError,
    VarBind,
    oid_text,
    parse_oid,
)
from dcim.inventory import DeviceConfig, PlacedDevice, SnmpConfig

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"

#: Private enterprise subtree: a probe under it is a vendor's own MIB.
ENTERPRISES = (1, 3, 6, 1, 4, 1)

#: Index tags counted for the summary ("3 phase, 24 outlet").
COUNTED_TAGS = ("unit", "inlet", "phase", "line", "branch", "outlet", "sensor", "probe", "point")

#: OIDs per probing GETNEXT: small enough for any card.
PROBE_BATCH = 16

#: Standard MIB subtrees worth naming when nothing fits a device.
STANDARD_SUBTREES = {
    "1.3.6.1.2.1.33": "UPS-MIB (RFC 1628)",
    "1.3.6.1.2.1.99": "ENTITY-SENSOR-MIB (RFC 3433)",
    "1.3.6.1.2.1.47.1.1": "ENTITY-MIB (RFC 6933)",
    "1.3.6.1.2.1.25.1": "HOST-RESOURCES-MIB",
}


@dataclass(frozen=True, slots=True)
class Discovery:
    """What discovery learned about one device."""

    host: str
    port: int
    sys_object_id: str
    sys_descr: str
    sys_name: str
    #: The profiles chosen, the lead first (empty: nothing fits).
    profiles: tuple[str, ...]
    kind: str | None
    #: Why these profiles (or why none): for the operator, printed as is.
    reason: str
    #: One line per chosen profile: why it applies.
    reasons: tuple[str, ...] = ()
    #: Known subtrees the device answers (named), for a device nothing fits.
    answered_subtrees: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    readings: int = 0

    @property
    def profile(self) -> str | None:
        """The inventory's `profile` value: the chosen profiles joined, or None."""
        return PROFILE_JOINER.join(self.profiles) if self.profiles else None


@dataclass(frozen=True, slots=True)
class Choice:
    """The profiles that apply to a device, the lead first, each with its reason."""

    profiles: tuple[SnmpProfile, ...]
    reasons: tuple[str, ...]
    #: Why nothing applies (empty when something does).
    verdict: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.profiles)


def _text(raw: object) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace").strip("\x00 \t\r\n")
    return "" if isinstance(raw, Absent) else str(raw).strip()


def _prefix_length(sys_object_id: str, prefixes: list[str]) -> int:
    """Length of the longest of `prefixes` that sysObjectID starts with (0: none)."""
    try:
        oid = parse_oid(sys_object_id) if sys_object_id else ()
    except ValueError:
        return 0
    best = 0
    for prefix in prefixes:
        parts = parse_oid(prefix)
        if oid[: len(parts)] == parts:
            best = max(best, len(parts))
    return best


def _descr_matches(sys_descr: str, patterns: list[str]) -> str | None:
    for pattern in patterns:
        if re.search(pattern, sys_descr, re.IGNORECASE):
            return pattern
    return None


async def _answering_subtrees(session: Session, probes: list[str]) -> set[str]:
    """The probe OIDs under which the device has at least one object."""
    answered: set[str] = set()
    unique = sorted(set(probes))
    for start in range(0, len(unique), PROBE_BATCH):
        batch = unique[start : start + PROBE_BATCH]
        answers: list[VarBind | None]
        try:
            answers = [*await session.get_next([parse_oid(probe) for probe in batch])]
        except SnmpStatusError:
            # SNMPv1 answers noSuchName for the whole PDU at the end of the MIB: ask one by one
            answers = []
            for probe in batch:
                try:
                    answers.extend(await session.get_next([parse_oid(probe)]))
                except SnmpStatusError:
                    answers.append(None)
        for probe, vb in zip(batch, answers, strict=False):
            if vb is None or isinstance(vb.value, Absent):
                continue
            prefix = parse_oid(probe)
            if vb.oid[: len(prefix)] == prefix:
                answered.add(probe)
    return answered


def _is_vendor_subtree(oid: str) -> bool:
    parts = parse_oid(oid)
    return parts[: len(ENTERPRISES)] == ENTERPRISES and len(parts) > len(ENTERPRISES)


def _applies(
    profile: SnmpProfile, sys_object_id: str, sys_descr: str, answered: set[str]
) -> tuple[int, str] | None:
    """(sysObjectID prefix length, reason) when the profile applies, else None."""
    hits = [oid for oid in profile.probe_oids if oid in answered]
    if profile.unless_oids and all(oid in answered for oid in profile.unless_oids):
        return None
    if profile.is_standard:
        return (0, f"{hits[0]} answers (standard MIB)") if hits else None
    length = _prefix_length(sys_object_id, profile.sys_object_ids)
    pattern = _descr_matches(sys_descr, profile.sys_descr) if sys_descr else None
    probe_note = f"{hits[0]} answers" if hits else "no probe needed"
    if length or pattern:
        if profile.probe_oids and not hits:
            return None
        claim = (
            f"sysObjectID under {oid_text(parse_oid(sys_object_id)[:length])}"
            if length
            else f"sysDescr matches {pattern!r}"
        )
        return length, f"{claim}, {probe_note}"
    own = [oid for oid in hits if _is_vendor_subtree(oid)]
    if own:
        return 0, f"{own[0]} answers (its vendor MIB, though the sysObjectID is not one it lists)"
    return None


def choose_profiles(
    sys_object_id: str,
    answered: set[str],
    profiles: list[SnmpProfile],
    sys_descr: str = "",
) -> Choice:
    """Every profile that applies to a device, the lead first, from what it answered."""
    applying: list[tuple[int, SnmpProfile, str]] = []
    for profile in profiles:
        found = _applies(profile, sys_object_id, sys_descr, answered)
        if found is not None:
            applying.append((found[0], profile, found[1]))
    superseded = {name for _, p, _ in applying for name in p.supersedes}
    applying = [entry for entry in applying if entry[1].name not in superseded]
    if not applying:
        return Choice((), (), _nothing_fits(sys_object_id))
    # lead: the longest sysObjectID claim, then the highest priority; the rest by priority
    applying.sort(key=lambda e: (-e[0], -e[1].priority, e[1].name))
    lead, rest = applying[0], sorted(applying[1:], key=lambda e: (-e[1].priority, e[1].name))
    ordered = [lead, *rest]
    return Choice(
        tuple(p for _, p, _ in ordered),
        tuple(f"{p.name}: {why}" for _, p, why in ordered),
    )


def choose_profile(
    sys_object_id: str, answered: set[str], profiles: list[SnmpProfile], sys_descr: str = ""
) -> tuple[SnmpProfile | None, str]:
    """The composed profile for a device (None when nothing fits), and the reason."""
    choice = choose_profiles(sys_object_id, answered, profiles, sys_descr)
    if not choice.profiles:
        return None, choice.verdict
    return compose_profiles(list(choice.profiles)), "; ".join(choice.reasons)


def _nothing_fits(sys_object_id: str) -> str:
    return (
        f"unknown device: no profile claims sysObjectID {sys_object_id or '(none)'}, "
        "no vendor MIB a profile reads answers, and neither UPS-MIB nor ENTITY-SENSOR-MIB answers"
    )


def shipped_profiles() -> list[SnmpProfile]:
    return [load_snmp_profile(name) for name in available_profiles("snmp")]


@cache
def enterprise_names() -> MappingProxyType[str, str]:
    """Private enterprise number -> vendor name (IANA registry, the vendors we know)."""
    path = Path(str(resources.files("collectors.snmp").joinpath("enterprises.yaml")))
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return MappingProxyType({str(number): str(name) for number, name in data.items()})


def _enterprise_root(oid: str) -> str | None:
    try:
        parts = parse_oid(oid)
    except ValueError:
        return None
    if parts[: len(ENTERPRISES)] == ENTERPRISES and len(parts) > len(ENTERPRISES):
        return oid_text(parts[: len(ENTERPRISES) + 1])
    return None


def known_subtrees(profiles: list[SnmpProfile], sys_object_id: str) -> dict[str, str]:
    """Subtrees worth probing on a device nothing fits, each with its name."""
    names = enterprise_names()
    roots: dict[str, str] = dict(STANDARD_SUBTREES)
    oids = [sys_object_id] if sys_object_id else []
    for profile in profiles:
        oids += profile.sys_object_ids + profile.probe_oids
    for oid in oids:
        root = _enterprise_root(oid)
        if root is not None:
            number = root.rsplit(".", 1)[1]
            roots[root] = f"{names.get(number, 'enterprise ' + number)} ({root})"
    return roots


async def discover(
    config: SnmpConfig,
    *,
    host: SessionHost | None = None,
    profiles: list[SnmpProfile] | None = None,
    poll: bool = True,
) -> Discovery:
    """Identify the device at `config`, choose its profiles and (with `poll`) count its parts.

    Runs on the production client (the same `SnmpHost` the monitor polls with)
    unless a host is given.
    """
    own_host = host is None
    engine = host or SnmpHost()
    try:
        session = await engine.session(config.host, config)
        ident = await session.get(
            [parse_oid(SYS_DESCR), parse_oid(SYS_OBJECT_ID), parse_oid(SYS_NAME)]
        )
        values = {oid_text(vb.oid): vb.value for vb in ident}
        sys_object_id = _text(values.get(SYS_OBJECT_ID, Absent.NO_SUCH_OBJECT)).lstrip(".")
        sys_descr = _text(values.get(SYS_DESCR, Absent.NO_SUCH_OBJECT))
        candidates = profiles if profiles is not None else shipped_profiles()
        answered = await _answering_subtrees(
            session, [oid for p in candidates for oid in (*p.probe_oids, *p.unless_oids)]
        )
        choice = choose_profiles(sys_object_id, answered, candidates, sys_descr)
        answered_named: tuple[str, ...] = ()
        if not choice.profiles:
            roots = known_subtrees(candidates, sys_object_id)
            present = await _answering_subtrees(session, list(roots))
            answered_named = tuple(roots[root] for root in sorted(present))
        lead = choice.profiles[0] if choice.profiles else None
        found = Discovery(
            host=config.host,
            port=config.port,
            sys_object_id=sys_object_id,
            sys_descr=sys_descr,
            sys_name=_text(values.get(SYS_NAME, Absent.NO_SUCH_OBJECT)),
            profiles=choice.names,
            kind=lead.kind if lead else None,
            reason="; ".join(choice.reasons) if choice.profiles else choice.verdict,
            reasons=choice.reasons,
            answered_subtrees=answered_named,
        )
        if lead is None or not poll:
            return found
        counts, readings = await _count_parts(engine, config, list(choice.profiles))
        return dataclasses.replace(found, counts=counts, readings=readings)
    finally:
        if own_host:
            engine.close()


def unknown_device_report(found: Discovery) -> str:
    """For a device nothing fits: what it answered and the next step."""
    lines = [
        f"{found.host}: {found.reason}",
        f"  sysObjectID: {found.sys_object_id or '(none)'}",
        f"  sysDescr: {found.sys_descr[:120] or '(none)'}",
        "  answers under: "
        + (", ".join(found.answered_subtrees) or "none of the subtrees dcim knows"),
        "  next: record it with `dcim walk "
        f"{found.host}{'' if found.port == 161 else ' --port ' + str(found.port)} [options] "
        "> device.snmprec`, then write a profile for it (docs/profiles.md)",
    ]
    return "\n".join(lines)


async def _count_parts(
    engine: SessionHost, config: SnmpConfig, profiles: list[SnmpProfile]
) -> tuple[dict[str, int], int]:
    profile = compose_profiles(profiles)
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
        *(f"# profile {reason}" for reason in found.reasons),
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
