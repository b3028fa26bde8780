"""`dcim poll`, `dcim discover`, `dcim walk`: one device, once, printed.

`poll` reads a device of the inventory, or an SNMP host without one; `discover`
identifies an SNMP device and prints its inventory entry; `walk` records it in
snmprec format.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dcim.cli.common import report_config_error, setup_command_logging
from dcim.errors import CollectError, ConfigError
from dcim.inventory import DeviceConfig, PlacedDevice, SnmpConfig
from dcim.reading import Reading


def add_snmp_options(parser: argparse.ArgumentParser) -> None:
    """The SNMP connection options `dcim poll` and `dcim discover` share."""
    parser.add_argument("--port", type=int, default=161)
    parser.add_argument("--community", default=None, help="v1/v2c community (default: public)")
    parser.add_argument("--snmp-version", choices=["v1", "v2c", "v3"], default="v2c")
    parser.add_argument("--v3-user")
    parser.add_argument("--auth-proto", default="sha256")
    parser.add_argument("--auth-key-env", help="environment variable holding the v3 auth key")
    parser.add_argument("--priv-proto", default="aes128")
    parser.add_argument("--priv-key-env", help="environment variable holding the v3 priv key")
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--retries", type=int, default=1)


def add_parser(sub: Any) -> None:
    """`dcim poll`, `dcim discover`, `dcim walk`: one device, once, on the command line."""
    poll = sub.add_parser(
        "poll", help="poll one device once (from the inventory, or an SNMP host) and print it"
    )
    poll.add_argument("device", nargs="?", help="inventory device id (with --config)")
    poll.add_argument("--config", type=Path, help="inventory file the device is in")
    poll.add_argument("--explain", action="store_true", help="print the request plan first")
    poll.add_argument("--host", help="SNMP host to poll without an inventory")
    poll.add_argument("--port", type=int, default=161)
    poll.add_argument("--community", default=None, help="v1/v2c community (default: public)")
    poll.add_argument("--snmp-version", choices=["v1", "v2c", "v3"], default="v2c")
    poll.add_argument("--v3-user")
    poll.add_argument("--auth-proto", default="sha256")
    poll.add_argument("--auth-key-env", help="environment variable holding the v3 auth key")
    poll.add_argument("--priv-proto", default="aes128")
    poll.add_argument("--priv-key-env", help="environment variable holding the v3 priv key")
    poll.add_argument(
        "--profile", default="ups-mib-rfc1628", help="profile name, or auto to discover it"
    )
    poll.add_argument("--kind", default=None, help="device kind (default: the profile's)")
    poll.add_argument("--timeout", type=float, default=2.0)
    poll.add_argument("--retries", type=int, default=1)
    poll.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    poll.set_defaults(func=cmd_poll)

    discover = sub.add_parser(
        "discover", help="identify an SNMP device, pick its profile, print an inventory entry"
    )
    discover.add_argument("host")
    add_snmp_options(discover)
    discover.set_defaults(func=cmd_discover)

    walk = sub.add_parser(
        "walk", help="record an SNMP device in snmprec format (what snmpsim serves)"
    )
    walk.add_argument("host")
    add_snmp_options(walk)
    walk.add_argument(
        "--subtree", action="append", help="walk only this subtree (repeatable; default 1.3.6.1)"
    )
    walk.add_argument("--max-repetitions", type=int, default=25)
    walk.add_argument("--output", "-o", type=Path, help="write here instead of stdout")
    walk.set_defaults(func=cmd_walk)


def cmd_poll(args: argparse.Namespace) -> int:
    setup_command_logging(args, "WARNING")
    if args.device:
        if args.config is None:
            print("dcim poll DEVICE needs --config FILE", file=sys.stderr)
            return 2
        try:
            return asyncio.run(poll_inventory_device(args))
        except ConfigError as exc:
            return report_config_error(exc)
    if not args.host:
        print("dcim poll: give a DEVICE with --config, or --host", file=sys.stderr)
        return 2
    return asyncio.run(poll_once_and_print(args))


def cmd_discover(args: argparse.Namespace) -> int:
    setup_command_logging(args, "WARNING")
    return asyncio.run(discover_and_print(args))


def cmd_walk(args: argparse.Namespace) -> int:
    setup_command_logging(args, "WARNING")
    return asyncio.run(walk_and_print(args))


def snmp_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The `snmp` section of an inventory entry, from command-line options."""
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
    return snmp


def device_from_args(args: argparse.Namespace, kind: str, profile: str) -> PlacedDevice:
    """A one-device inventory entry built from command-line options."""
    device = DeviceConfig.model_validate(
        {"id": args.host, "kind": kind, "profile": profile, "snmp": snmp_from_args(args)}
    )
    tags = MappingProxyType({"device": device.id, "kind": kind})
    return PlacedDevice(device, "", "", "", "", tags)


def _snmp_config(args: argparse.Namespace) -> SnmpConfig:
    try:
        return SnmpConfig.model_validate(snmp_from_args(args))
    except Exception as exc:  # pydantic ValidationError: bad option values
        raise ConfigError("command line", [str(exc)]) from None


async def discover_and_print(args: argparse.Namespace) -> int:
    """`dcim discover`: identify the device, choose its profile, print an inventory entry."""
    from collectors.snmp.discovery import discover, inventory_snippet, unknown_device_report

    config = _snmp_config(args)
    try:
        found = await discover(config)
    except CollectError as exc:
        print(f"dcim discover: {exc} ({exc.error_class})", file=sys.stderr)
        return 1
    if found.profile is None:
        print(f"dcim discover: {unknown_device_report(found)}", file=sys.stderr)
        return 2
    print(inventory_snippet(found, config), end="")
    return 0


async def poll_once_and_print(args: argparse.Namespace) -> int:
    from collectors.registry import CollectorFactory
    from collectors.snmp.collector import SnmpCollector
    from collectors.snmp.profile import load_snmp_profile

    name = args.profile
    if name == "auto":
        from collectors.snmp.discovery import discover, unknown_device_report

        try:
            found = await discover(_snmp_config(args), poll=False)
        except CollectError as exc:
            print(f"dcim poll: {exc} ({exc.error_class})", file=sys.stderr)
            return 1
        if found.profile is None:
            print(f"dcim poll: {unknown_device_report(found)}", file=sys.stderr)
            return 2
        name = found.profile
        for reason in found.reasons:
            print(f"# profile {reason}", file=sys.stderr)
    profile = load_snmp_profile(name)
    try:
        placed = device_from_args(args, args.kind or profile.kind, name)
    except Exception as exc:  # pydantic ValidationError: bad option values
        raise ConfigError("command line", [str(exc)]) from None
    factory = CollectorFactory()
    try:
        collector = factory.build(placed)
        assert isinstance(collector, SnmpCollector)
        async with collector:
            sourced = await collector.poll_with_sources()
    except CollectError as exc:
        print(f"dcim poll: {exc} ({exc.error_class})", file=sys.stderr)
        return 1
    finally:
        factory.close()
    if args.json:
        for reading, source in sourced:
            print(json.dumps(_as_json(reading, source)))
        return 0
    _print_table(sourced)
    return 0


def _as_json(reading: Reading, source: str) -> dict[str, Any]:
    return {
        "metric": reading.metric,
        "value": reading.value,
        "unit": reading.unit,
        "tags": dict(reading.tags),
        "source": f"snmp:{source}",
        "ts": reading.timestamp.isoformat(),
    }


def _print_table(sourced: list[tuple[Reading, str]], protocol: str = "snmp") -> None:
    rows = [
        (
            r.metric,
            " ".join(f"{k}={v}" for k, v in r.tags.items() if k not in ("device", "kind")),
            str(r.value),
            r.unit or "",
            f"{protocol}:{source}",
        )
        for r, source in sourced
    ]
    header = ("metric", "tags", "value", "unit", "source")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def explain_snmp_plan(plan: Any) -> str:
    """An SNMP plan as text: the GETs a poll sends and the table walks."""
    lines = [
        f"profile {plan.profile}: {len(plan.get_batches)} GET(s), {len(plan.tables)} table walk(s)"
    ]
    for number, batch in enumerate(plan.get_batches, start=1):
        lines.append(f"  GET {number}: {len(batch)} var-binds")
        lines.extend(f"    {'.'.join(map(str, oid))}" for oid in batch)
    for table in plan.tables:
        columns = ", ".join(".".join(map(str, oid)) for oid in table.walk_oids)
        lines.append(f"  GETBULK walk {table.name}: {columns}")
    return "\n".join(lines)


async def poll_inventory_device(args: argparse.Namespace) -> int:
    """`dcim poll DEVICE --config FILE [--explain]`: one inventory device, once."""
    import time

    from collectors.registry import CollectorFactory
    from dcim.inventory import iter_devices, load_config

    config = load_config(args.config)
    placed = next((p for p in iter_devices(config) if p.device.id == args.device), None)
    if placed is None:
        raise ConfigError(str(args.config), [f"no device {args.device!r} in the inventory"])
    device = placed.device
    if device.mqtt is not None:
        print(f"dcim poll: {device.id} publishes over MQTT; nothing to poll", file=sys.stderr)
        return 2
    factory = CollectorFactory()
    try:
        if args.explain:
            if device.modbus is not None:
                print(factory.modbus_plan(device.profile, device.modbus.max_gap).explain())
            else:
                print(explain_snmp_plan(factory.snmp_plan(device.profile)))
            print()
        collector = factory.build(placed)
        started = time.perf_counter()
        async with collector:
            readings = await collector.poll()
        elapsed_ms = (time.perf_counter() - started) * 1000
    except CollectError as exc:
        print(f"dcim poll: {exc} ({exc.error_class})", file=sys.stderr)
        return 1
    finally:
        factory.close()
    for reading in readings:
        if args.json:
            print(
                json.dumps(
                    {
                        "metric": reading.metric,
                        "value": reading.value,
                        "unit": reading.unit,
                        "tags": dict(reading.tags),
                        "ts": reading.timestamp.isoformat(),
                    }
                )
            )
        else:
            extra = " ".join(
                f"{k}={v}"
                for k, v in reading.tags.items()
                if k not in placed.tags or placed.tags[k] != v
            )
            print(f"{reading.metric:<32} {extra:<28} {reading.value!s:>14} {reading.unit or ''}")
    if not args.json:
        print(f"{len(readings)} readings in {elapsed_ms:.1f} ms")
    return 0


async def walk_and_print(args: argparse.Namespace) -> int:
    """`dcim walk`: the device's objects as snmprec lines on stdout (or --output)."""
    from collectors.snmp.client import SnmpHost
    from collectors.snmp.record import DEFAULT_SUBTREES, snmprec_line, walk

    config = _snmp_config(args)
    host = SnmpHost()
    out = args.output.open("w", encoding="ascii") if args.output else sys.stdout
    count = 0
    try:
        session = await host.session(config.host, config)
        subtrees = args.subtree or list(DEFAULT_SUBTREES)
        async for vb in walk(session, subtrees, max_repetitions=args.max_repetitions):
            line = snmprec_line(vb)
            if line is not None:
                out.write(line + "\n")
                count += 1
    except CollectError as exc:
        print(f"dcim walk: {exc} ({exc.error_class}) after {count} objects", file=sys.stderr)
        return 1
    finally:
        host.close()
        if out is not sys.stdout:
            out.close()
    print(f"dcim walk: {count} objects from {config.host}:{config.port}", file=sys.stderr)
    return 0
