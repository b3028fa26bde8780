"""SNMPv2c traps for hall events, sent with pysnmp's notification originator.

Which notification a device sends follows the MIB it speaks:

- UPS (UPS-MIB, RFC 1628): upsTrapOnBattery (1.3.6.1.2.1.33.2.1) with
  upsEstimatedMinutesRemaining, upsSecondsOnBattery, upsConfigLowBattTime;
  upsTrapAlarmEntryAdded (.2.3) with upsAlarmDescr = upsAlarmLowBattery for a
  low battery; upsTrapAlarmEntryRemoved (.2.4) with upsAlarmDescr =
  upsAlarmOnBattery when utility power returns.
- UPS with an APC profile (PowerNet-MIB): upsOnBattery (1.3.6.1.4.1.318.0.5),
  lowBattery (.0.7), powerRestored (.0.9), each with mtrapargsString
  (1.3.6.1.4.1.318.2.3.3.0).
- APC rPDU2: rPDUOverload-style notification 1.3.6.1.4.1.318.0.276 and
  its clear .0.277 with mtrapargsString (trap numbers as listed in public
  third-party mappings, unverified against the MIB text).
- Raritan PDU2: overCurrentProtectorSensorStateChange 1.3.6.1.4.1.13742.6.0.65
  (unverified against the MIB text) with the sensor's type and new state.

    sender = TrapSender([("127.0.0.1", 1162)], community="public")
    model.listeners.append(sender.on_event)   # sends while the event loop runs
    await sender.drain()                      # wait for traps in flight
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    NotificationType,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    send_notification,
)
from pysnmp.proto.rfc1902 import Integer32, ObjectIdentifier, OctetString

from simulators.hall.model import HallEvent

log = logging.getLogger(__name__)

UPS_MIB = "1.3.6.1.2.1.33"
UPS_TRAP_ON_BATTERY = f"{UPS_MIB}.2.1"
UPS_TRAP_ALARM_ADDED = f"{UPS_MIB}.2.3"
UPS_TRAP_ALARM_REMOVED = f"{UPS_MIB}.2.4"
UPS_ALARM_DESCR = f"{UPS_MIB}.1.6.2.1.2"
UPS_ALARM_ON_BATTERY = f"{UPS_MIB}.1.6.3.2"
UPS_ALARM_LOW_BATTERY = f"{UPS_MIB}.1.6.3.3"
APC_TRAPS = {
    "on_battery": "1.3.6.1.4.1.318.0.5",
    "battery_low": "1.3.6.1.4.1.318.0.7",
    "power_restored": "1.3.6.1.4.1.318.0.9",
    "overload": "1.3.6.1.4.1.318.0.276",
    "overload_cleared": "1.3.6.1.4.1.318.0.277",
}
APC_TRAP_ARGS = "1.3.6.1.4.1.318.2.3.3.0"
RARITAN_OCP_STATE_CHANGE = "1.3.6.1.4.1.13742.6.0.65"
RARITAN_TYPE_OF_SENSOR = "1.3.6.1.4.1.13742.6.0.0.10"
RARITAN_MEASUREMENTS_OCP_STATE = "1.3.6.1.4.1.13742.6.5.3.3.1.3"


@dataclass(frozen=True, slots=True)
class Trap:
    """One notification: its OID and extra varbinds (OID text -> SMI value)."""

    oid: str
    varbinds: tuple[tuple[str, object], ...]
    device: str


def trap_for(event: HallEvent, profile: str) -> Trap | None:
    """The notification a device speaking `profile` sends for `event`, if any."""
    d = event.device
    kind = event.kind
    if profile == "ups-mib-rfc1628":
        runtime_min = int(float(event.data.get("runtime_s", "0")) // 60)
        if kind == "on_battery":
            return Trap(
                UPS_TRAP_ON_BATTERY,
                (
                    (f"{UPS_MIB}.1.2.3.0", Integer32(runtime_min)),
                    (f"{UPS_MIB}.1.2.2.0", Integer32(0)),
                    (f"{UPS_MIB}.1.9.7.0", Integer32(2)),
                ),
                d,
            )
        if kind == "battery_low":
            return Trap(
                UPS_TRAP_ALARM_ADDED,
                ((f"{UPS_ALARM_DESCR}.1", ObjectIdentifier(UPS_ALARM_LOW_BATTERY)),),
                d,
            )
        if kind == "power_restored":
            return Trap(
                UPS_TRAP_ALARM_REMOVED,
                ((f"{UPS_ALARM_DESCR}.1", ObjectIdentifier(UPS_ALARM_ON_BATTERY)),),
                d,
            )
        return None
    if profile.startswith("apc") and kind in APC_TRAPS:
        if profile != "apc-rpdu2" and kind.startswith("overload"):
            return None
        return Trap(APC_TRAPS[kind], ((APC_TRAP_ARGS, OctetString(f"{d}: {event.detail}")),), d)
    if profile == "raritan-pdu2" and kind in ("overload", "overload_cleared"):
        branch = int(event.data.get("branch", "1"))
        state = 6 if kind == "overload" else 4  # aboveUpperCritical / normal
        return Trap(
            RARITAN_OCP_STATE_CHANGE,
            (
                (RARITAN_TYPE_OF_SENSOR, Integer32(1)),  # rmsCurrent
                (f"{RARITAN_MEASUREMENTS_OCP_STATE}.1.{branch}.1", Integer32(state)),
            ),
            d,
        )
    return None


class TrapSender:
    """Sends v2c traps for hall events to every receiver (host, port)."""

    def __init__(
        self,
        receivers: Sequence[tuple[str, int]],
        profiles: Mapping[str, str],
        community: str = "public",
    ) -> None:
        self.receivers = list(receivers)
        self.profiles = dict(profiles)  # device id -> profile
        self.community = community
        self.sent: list[Trap] = []
        self._engine = SnmpEngine()
        self._tasks: set[asyncio.Task[None]] = set()

    def on_event(self, event: HallEvent) -> None:
        """Model listener: schedule the traps for `event` (needs a running event loop)."""
        trap = trap_for(event, self.profiles.get(event.device, ""))
        if trap is None or not self.receivers:
            return
        task = asyncio.get_running_loop().create_task(self.send(trap))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def send(self, trap: Trap) -> None:
        notification = NotificationType(ObjectIdentity(trap.oid)).add_varbinds(
            *(ObjectType(ObjectIdentity(oid), value) for oid, value in trap.varbinds)
        )
        for host, port in self.receivers:
            target = await UdpTransportTarget.create((host, port), timeout=1, retries=0)
            error, *_ = await send_notification(
                self._engine,
                CommunityData(self.community, mpModel=1),  # noqa: S508 - v2c traps are the brief
                target,
                ContextData(),
                "trap",
                notification,
            )
            if error:
                log.warning("trap %s to %s:%d failed: %s", trap.oid, host, port, error)
        self.sent.append(trap)

    async def drain(self) -> None:
        """Wait until every scheduled trap has gone out."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def close(self) -> None:
        self._engine.close_dispatcher()
