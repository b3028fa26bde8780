"""`dcim poll`: poll one device once, without an inventory, and print its readings."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from dcim.errors import CollectError, ConfigError
from dcim.inventory import DeviceConfig, PlacedDevice
from dcim.reading import Reading


def device_from_args(args: argparse.Namespace, kind: str) -> PlacedDevice:
    """A one-device inventory entry built from command-line options."""
    snmp: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "version": args.snmp_version,
        "timeout_s": args.timeout,
        "retries": args.retries,
    }
    if args.snmp_version == "v3":
        v3: dict[str, Any] = {
            "user": args.v3_user,
            "auth_protocol": args.auth_proto,
            "priv_protocol": args.priv_proto,
        }
        if args.auth_key_env:
            v3["auth_key"] = {"env": args.auth_key_env}
        if args.priv_key_env:
            v3["priv_key"] = {"env": args.priv_key_env}
        snmp["v3"] = v3
    else:
        snmp["community"] = args.community or os.environ.get("DCIM_SNMP_COMMUNITY", "public")
    device = DeviceConfig.model_validate(
        {"id": args.host, "kind": kind, "profile": args.profile, "snmp": snmp}
    )
    tags = MappingProxyType({"device": device.id, "kind": kind})
    return PlacedDevice(device, "", "", "", "", tags)


def _sources(plan: Any) -> Mapping[tuple[str, str], str]:
    """(metric, table index tag) -> OID text, to report where each value came from."""
    sources: dict[tuple[str, str], str] = {}
    for batch in plan.get_batches:
        for field in batch:
            sources[(field.field.metric, "")] = field.field.oid
    for table in plan.tables:
        for column in table.columns:
            sources[(column.field.metric, table.index_tag)] = column.field.oid
    return sources


def _source_of(reading: Reading, sources: Mapping[tuple[str, str], str]) -> str:
    for (metric, index_tag), oid in sources.items():
        if metric != reading.metric:
            continue
        if not index_tag:
            return f"snmp:{oid}"
        if index_tag in reading.tags:
            return f"snmp:{oid}.{reading.tags[index_tag]}"
    return ""


async def poll_once_and_print(args: argparse.Namespace) -> int:
    from collectors.profile import load_snmp_profile
    from collectors.registry import CollectorFactory

    profile = load_snmp_profile(args.profile)
    try:
        placed = device_from_args(args, args.kind or profile.kind)
    except Exception as exc:  # pydantic ValidationError: bad option values
        raise ConfigError("command line", [str(exc)]) from None
    factory = CollectorFactory()
    try:
        collector = factory.build(placed)
        async with collector:
            readings = await collector.poll()
    except CollectError as exc:
        print(f"dcim poll: {exc} ({exc.error_class})", file=sys.stderr)
        return 1
    finally:
        factory.close()
    sources = _sources(factory.snmp_plan(args.profile))
    if args.json:
        for reading in readings:
            print(
                json.dumps(
                    {
                        "metric": reading.metric,
                        "value": reading.value,
                        "unit": reading.unit,
                        "tags": dict(reading.tags),
                        "source": _source_of(reading, sources),
                        "ts": reading.timestamp.isoformat(),
                    }
                )
            )
        return 0
    rows = [
        (
            r.metric,
            " ".join(f"{k}={v}" for k, v in r.tags.items() if k not in ("device", "kind")),
            str(r.value),
            r.unit or "",
            _source_of(r, sources),
        )
        for r in readings
    ]
    header = ("metric", "tags", "value", "unit", "source")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return 0
