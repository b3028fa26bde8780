"""No storms: one incident per cause.

* many devices of one site down together -> one 'monitoring degraded' incident;
* a device that is down explains every other alert of that device (its stale metrics);
* a rule with `explains` (UPS on battery, CRAC failed) explains matching alerts in
  the same place;
* two rules that state the same fact about the same thing (`same_as`: the PDU's own
  branch overload state and our 80 % rule on that branch) page once: the one that
  fired first is the parent, the other its child, and the parent stays open while
  that child fires.

Explained incidents are grouped under their parent: no notification. A child more
severe than its parent is never grouped (it pages): grouping must not hide a worse
fact behind a milder one. Device down and degraded monitoring group regardless.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from dcim.alerts.kinds.base import DeviceInfo, Explains, SameFact
from dcim.alerts.model import Incident, Phase
from dcim.alerts.tracker import RuleInfo

DEGRADED_RULE = RuleInfo(
    "dcim.monitoring_degraded",
    "Monitoring degraded",
    "internal",
    clear_for_s=0.0,
    runbook="docs/runbooks.md#dcim-monitoring-degraded",
)
NOTIFY_FAILED_RULE = RuleInfo(
    "dcim.notification_failed",
    "Notification channel failing",
    "internal",
    runbook="docs/runbooks.md#dcim-notification-failed",
)
#: A peer shard of this monitor stopped sending its heartbeat: its rooms go unwatched.
SHARD_SILENT_RULE = RuleInfo("dcim.shard_silent", "Monitor shard silent", "internal")
#: Coordinated monitors cannot reach etcd: no room moves until it is back (dcim.coord).
COORDINATION_LOST_RULE = RuleInfo(
    "dcim.coordination_lost",
    "Monitor coordination lost",
    "internal",
    runbook="docs/runbooks.md#dcim-coordination-lost",
)
DEVICE_DOWN_KIND = "stale"


def site_totals(devices: Mapping[str, DeviceInfo]) -> Counter[str]:
    """Devices per site (counted once: the inventory does not change while running)."""
    return Counter(info.tags.get("site", "") for info in devices.values())


def sites_degraded(
    down: Iterable[Incident],
    totals: Mapping[str, int],
    *,
    min_devices: int,
    min_fraction: float,
) -> dict[str, tuple[int, int]]:
    """Sites where enough devices are down at once: site -> (down, total devices)."""
    counts = Counter(inc.labels.get("site", "") for inc in down)
    return {
        site: (count, totals[site])
        for site, count in counts.items()
        if site
        and count >= min_devices
        and totals.get(site)
        and count / totals[site] >= min_fraction
    }


@dataclass(frozen=True, slots=True)
class Grouping:
    """The incident another one is grouped under, and whether they state the same fact."""

    parent: Incident
    same_fact: bool = False


def _matches(rule_id: str, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(rule_id, pattern) for pattern in patterns)


def same_fact(
    a: Incident, a_rule: RuleInfo | None, b: Incident, b_rule: RuleInfo | None
) -> SameFact | None:
    """The `same_as` declaration (on either rule) making `a` and `b` one fact, or None."""
    for owner, other in ((a_rule, b), (b_rule, a)):
        if owner is None:
            continue
        for fact in owner.same_as:
            if _matches(other.rule, fact.rules) and all(
                a.labels.get(label) == b.labels.get(label) for label in fact.within
            ):
                return fact
    return None


def fact_order(
    incident: Incident, rule: RuleInfo | None, other: Incident
) -> tuple[float, int, str]:
    """Who of a same-fact pair is the parent: the lower value (first fired, then the
    rule that declares the pair, then the rule id)."""
    fired = incident.fired_at if incident.phase is Phase.FIRING else None
    declares = rule is not None and any(_matches(other.rule, f.rules) for f in rule.same_as)
    return (math.inf if fired is None else fired, 0 if declares else 1, incident.rule)


def parent_of(
    incident: Incident,
    rule: RuleInfo | None,
    *,
    degraded: Mapping[str, Incident],
    down_by_device: Mapping[str, Incident],
    explainers: Iterable[tuple[Incident, Explains]],
    facts_by_device: Mapping[str, Sequence[Incident]] | None = None,
    rules: Mapping[str, RuleInfo] | None = None,
) -> Grouping | None:
    """The firing incident that explains `incident`, or None.

    `facts_by_device`: firing incidents of rules in a `same_as` pair, per device label;
    `rules` looks their rules up."""
    labels = incident.labels
    if rule is not None and rule.kind == DEVICE_DOWN_KIND:
        found = degraded.get(labels.get("site", ""))
        return Grouping(found) if found is not None else None
    if rule is not None and rule.kind == "internal":
        return None
    down = down_by_device.get(labels.get("device", ""))
    if down is not None and down.id != incident.id:
        return Grouping(down)
    rank = incident.severity.rank
    for parent, explains in explainers:
        if parent.id == incident.id or parent.phase is not Phase.FIRING:
            continue
        if parent.severity.rank < rank:
            continue  # a worse fact is never hidden behind a milder one: it pages
        place = parent.labels.get(explains.within)
        if place is None or labels.get(explains.within) != place:
            continue
        if _matches(incident.rule, explains.rules):
            return Grouping(parent)
    if not facts_by_device or rules is None:
        return None
    best: tuple[tuple[float, int, str], Incident] | None = None
    for other in facts_by_device.get(labels.get("device", ""), ()):
        if other.id == incident.id or other.phase is not Phase.FIRING:
            continue
        if other.severity.rank < rank:
            continue
        other_rule = rules.get(other.rule)
        if same_fact(incident, rule, other, other_rule) is None:
            continue
        order = fact_order(other, other_rule, incident)
        if order < fact_order(incident, rule, other) and (best is None or order < best[0]):
            best = (order, other)
    return Grouping(best[1], same_fact=True) if best is not None else None
