"""No storms: one incident per cause.

* many devices of one site down together -> one 'monitoring degraded' incident;
* a device that is down explains every other alert of that device (its stale metrics);
* a rule with `explains` (UPS on battery, CRAC failed) explains matching alerts in
  the same place. Explained incidents are grouped under their parent: no notification.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

from dcim.alerts.kinds.base import DeviceInfo, Explains
from dcim.alerts.model import Incident, Phase
from dcim.alerts.tracker import RuleInfo

DEGRADED_RULE = RuleInfo(
    "dcim.monitoring_degraded", "Monitoring degraded", "internal", clear_for_s=0.0
)
NOTIFY_FAILED_RULE = RuleInfo(
    "dcim.notification_failed", "Notification channel failing", "internal"
)
DEVICE_DOWN_KIND = "stale"


def sites_degraded(
    down: Iterable[Incident],
    devices: Mapping[str, DeviceInfo],
    *,
    min_devices: int,
    min_fraction: float,
) -> dict[str, tuple[int, int]]:
    """Sites where enough devices are down at once: site -> (down, total)."""
    totals = Counter(info.tags.get("site", "") for info in devices.values())
    counts = Counter(inc.labels.get("site", "") for inc in down)
    return {
        site: (count, totals[site])
        for site, count in counts.items()
        if site and count >= min_devices and totals[site] and count / totals[site] >= min_fraction
    }


def parent_of(
    incident: Incident,
    rule: RuleInfo | None,
    *,
    degraded: Mapping[str, Incident],
    down_by_device: Mapping[str, Incident],
    explainers: Iterable[tuple[Incident, Explains]],
) -> Incident | None:
    """The firing incident that explains `incident`, or None."""
    labels = incident.labels
    if rule is not None and rule.kind == DEVICE_DOWN_KIND:
        return degraded.get(labels.get("site", ""))
    if rule is not None and rule.kind == "internal":
        return None
    down = down_by_device.get(labels.get("device", ""))
    if down is not None and down.id != incident.id:
        return down
    for parent, explains in explainers:
        if parent.id == incident.id or parent.phase is not Phase.FIRING:
            continue
        place = parent.labels.get(explains.within)
        if place is None or labels.get(explains.within) != place:
            continue
        if any(fnmatchcase(incident.rule, pattern) for pattern in explains.rules):
            return parent
    return None
