"""`dcim profile lint|test`: check a profile a site wrote before it goes into the inventory.

`lint` reads one or more profile files (SNMP profile, Modbus register map or MQTT
topic map, told apart by their folder or their keys) and reports, each at its
line: YAML errors and duplicate keys, schema errors, metrics outside the
vocabulary (the shipped one and the site's extensions), malformed OIDs, the same
quantity read twice, includes that do not exist.

`test` polls a device with the profile through the production client and prints
every reading with the OID (or register) it came from, what was dropped and why
(outside its plausible range, undecodable), and which fields found nothing:
against a `dcim walk` recording (replayed over UDP by the simulators' fast agent)
or a live agent; for a Modbus register map, against a register dump (served by
`simulators.register_dump` on pymodbus' server) or a live device.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from dcim.errors import CollectError, ProfileError
from dcim.yamlsource import YamlSourceError, load_yaml_with_lines

PROTOCOLS = ("snmp", "modbus", "mqtt")


@dataclass
class LintReport:
    path: Path
    protocol: str = ""
    summary: str = ""
    #: (line or None, message), in file order
    problems: list[tuple[int | None, str]] = field(default_factory=list)

    def lines(self) -> Iterator[str]:
        for line, message in sorted(self.problems, key=lambda p: (p[0] or 0, p[1])):
            yield f"{self.path}:{line if line is not None else '-'}: {message}"


def detect_protocol(path: Path, data: object) -> str | None:
    """snmp/modbus/mqtt from the profile's folder name, else from its keys."""
    if path.parent.name in PROTOCOLS:
        return path.parent.name
    if not isinstance(data, dict):
        return None
    if "topics" in data:
        return "mqtt"
    if "fields" in data:
        return "modbus"
    if {"scalars", "tables", "sys_object_ids", "probe_oids"} & set(data):
        return "snmp"
    return None


def duplicate_keys(text: str) -> list[tuple[int | None, str]]:
    """Mapping keys given twice (YAML keeps the last silently)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []  # reported as invalid YAML by the parser
    found: list[tuple[int | None, str]] = []
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                name, line = str(key.value), key.start_mark.line + 1
                if name in seen:
                    found.append((line, f"key {name!r} given twice (first at line {seen[name]})"))
                seen[name] = line
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return found


def _repeated_quantities(
    data: dict[str, Any], lines: dict[Any, int]
) -> list[tuple[int | None, str]]:
    """SNMP: one metric with the same fixed tags read by two scalars, or two columns of a table."""
    problems: list[tuple[int | None, str]] = []

    def check(entries: list[Any], where: tuple[Any, ...], what: str) -> None:
        seen: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}

        def shown(key: tuple[str, tuple[tuple[str, str], ...]]) -> dict[str, str]:
            return {k: v for k, v in key[1] if k != "(precedence)"}

        for n, entry in enumerate(entries):
            if not isinstance(entry, dict) or "metric" not in entry:
                continue
            tags = entry.get("tags") or {}
            # two fields of one quantity ranked apart (`precedence`) are on purpose: the
            # finer resolution wins, the other fills in
            tags = {**tags, "(precedence)": entry.get("precedence")}
            key = (str(entry["metric"]), tuple(sorted((str(k), str(v)) for k, v in tags.items())))
            line = lines.get((*where, n))
            if key in seen:
                problems.append(
                    (
                        line,
                        f"{what}: {key[0]}{' ' + str(shown(key)) if shown(key) else ''} is read twice (also entry "
                        f"{seen[key]}); give one field `fallback_oids` or tell them apart "
                        "by tags",
                    )
                )
            else:
                seen[key] = n

    check(list(data.get("scalars") or []), ("scalars",), "scalars")
    for t, table in enumerate(data.get("tables") or []):
        if isinstance(table, dict):
            name = table.get("name", t)
            check(list(table.get("columns") or []), ("tables", t, "columns"), f"table {name}")
    return problems


def lint_file(path: Path, protocol: str | None = None) -> LintReport:
    """Every problem of one profile file, each at its line."""
    report = LintReport(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        report.problems.append((None, f"cannot read: {exc.strerror or exc}"))
        return report
    try:
        data, lines = load_yaml_with_lines(text, str(path))
    except YamlSourceError as exc:
        report.problems.extend(exc.problems)
        return report
    report.problems.extend(duplicate_keys(text))
    found = protocol or detect_protocol(path, data)
    if found is None:
        report.problems.append(
            (
                1,
                "cannot tell the protocol: put the file in snmp/, modbus/ or mqtt/, or give "
                "--protocol",
            )
        )
        return report
    report.protocol = found
    try:
        report.summary = _validate(found, text, str(path))
    except YamlSourceError as exc:
        report.problems.extend(exc.problems)
    except ProfileError as exc:
        report.problems.append((None, str(exc)))
    if found == "snmp" and isinstance(data, dict):
        report.problems.extend(_repeated_quantities(data, lines))
    return report


def _validate(protocol: str, text: str, source: str) -> str:
    """Validate as the loader does; a one-line summary of what the profile reads."""
    from dcim.yamlsource import validate_yaml

    if protocol == "snmp":
        from collectors.snmp.profile import SnmpProfile, load_snmp_profile

        profile = validate_yaml(text, source, SnmpProfile.model_validate)
        for name in profile.include:
            load_snmp_profile(name)  # ProfileError when it does not exist
        columns = sum(len(t.columns) + len(t.switched) for t in profile.tables)
        return (
            f"SNMP profile {profile.name} ({profile.kind}): {len(profile.scalars)} scalar(s), "
            f"{len(profile.tables)} table(s) with {columns} column(s)"
        )
    if protocol == "modbus":
        from collectors.modbus.profile import ModbusProfile

        modbus = validate_yaml(text, source, ModbusProfile.model_validate, drop=("function-after",))
        return f"Modbus map {modbus.name} ({modbus.kind}): {len(modbus.fields)} field(s)"
    from collectors.mqtt.topicmap import TopicMap

    topic_map = validate_yaml(text, source, TopicMap.model_validate, drop=("json", "plain"))
    return f"MQTT topic map {topic_map.name} ({topic_map.kind}): {len(topic_map.topics)} topic(s)"


def _use_paths(args: argparse.Namespace) -> None:
    """The given site folders, and the library each file sits in, on the search path."""
    from collectors.shipped import use_profile_paths

    roots = list(args.profile_path)
    for path in getattr(args, "files", None) or [args.file]:
        if path.parent.name in PROTOCOLS and path.parent.parent not in roots:
            roots.append(path.parent.parent.resolve())
    use_profile_paths(roots)


def run_lint(args: argparse.Namespace) -> int:
    _use_paths(args)
    failed = 0
    for path in args.files:
        report = lint_file(path, args.protocol)
        if report.problems:
            failed += 1
            for line in report.lines():
                print(line)
        else:
            print(f"{path}: OK ({report.summary})")
    return 1 if failed else 0


# --- dcim profile test ------------------------------------------------------


class _Dropped(logging.Handler):
    """Collects the collector's 'dropped' warnings (values outside range, undecodable)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def _poll_snmp(args: argparse.Namespace) -> int:
    from collectors.snmp.client import SnmpHost
    from collectors.snmp.collector import SnmpCollector
    from collectors.snmp.discovery import discover, shipped_profiles
    from collectors.snmp.plan import plan_profile
    from collectors.snmp.profile import compose_profiles, load_snmp_profile, parse_snmp_profile
    from dcim.cli.poll import snmp_from_args
    from dcim.inventory import DeviceConfig, PlacedDevice, SnmpConfig

    profile = parse_snmp_profile(args.file.read_text(encoding="utf-8"), str(args.file))
    for name in profile.include:
        load_snmp_profile(name)
    # as loaded from a library: included profiles merged in
    extra = [load_snmp_profile(name) for name in profile.include]
    profile = profile.model_copy(
        update={
            "scalars": [*profile.scalars, *(f for p in extra for f in p.scalars)],
            "tables": [*profile.tables, *(t for p in extra for t in p.tables)],
        }
    )
    agent = None
    if args.recording is not None:
        from simulators.fast_agent import FastAgent
        from simulators.recording import RecordedDevice

        device = RecordedDevice.from_file(args.recording)
        agent = FastAgent({"recording": device})
        await agent.start("127.0.0.1", 0)
        config = SnmpConfig.model_validate(
            {"host": "127.0.0.1", "port": agent.port, "community": "recording", "timeout_s": 2}
        )
        where = f"recording {args.recording} ({len(device)} objects)"
    else:
        config = SnmpConfig.model_validate(snmp_from_args(args))
        where = f"{config.host}:{config.port}"
    dropped = _Dropped()
    logging.getLogger("collectors.snmp.collector").addHandler(dropped)
    host = SnmpHost()
    try:
        others = [p for p in shipped_profiles() if p.name != profile.name]
        found = await discover(config, host=host, profiles=[*others, profile], poll=False)
        print(f"# {where}: sysObjectID {found.sys_object_id}, sysDescr {found.sys_descr[:60]!r}")
        chosen = found.profile or "nothing"
        verdict = "chosen" if profile.name in found.profiles else "NOT chosen"
        print(f"# identification: {chosen} ({profile.name} {verdict}: {found.reason})")
        spec = compose_profiles([profile])
        placed = PlacedDevice(
            DeviceConfig.model_validate(
                {"id": "test", "kind": spec.kind, "profile": "test", "snmp": config.model_dump()}
            ),
            "",
            "",
            "",
            "",
            MappingProxyType({"device": "test"}),
        )
        collector = SnmpCollector(placed, plan_profile(spec), host, config)
        async with collector:
            sourced = await collector.poll_with_sources()
    except CollectError as exc:
        print(f"dcim profile test: {exc} ({exc.error_class})", file=sys.stderr)
        return 1
    finally:
        logging.getLogger("collectors.snmp.collector").removeHandler(dropped)
        host.close()
        if agent is not None:
            agent.close()
    _print_readings(sourced)
    problems = _unanswered(profile, {source for _, source in sourced}, dropped.messages)
    for message in dropped.messages:
        print(f"FLAG {message}")
    for message in problems:
        print(f"NOTE {message}")
    print(
        f"# {len(sourced)} reading(s), {len(dropped.messages)} value(s) dropped, "
        f"{len(problems)} field(s) without a value"
    )
    return 1 if not sourced or dropped.messages else 0


async def _poll_modbus(args: argparse.Namespace) -> int:
    from collectors.modbus.client import ModbusGateway
    from collectors.modbus.collector import ModbusCollector
    from collectors.modbus.plan import plan_profile
    from collectors.modbus.profile import parse_modbus_profile
    from dcim.inventory import DeviceConfig, ModbusConfig, PlacedDevice

    profile = parse_modbus_profile(args.file.read_text(encoding="utf-8"), str(args.file))
    server = None
    if args.registers is not None:
        from simulators.register_dump import DumpError, DumpServer, load_dump

        try:
            dump = load_dump(args.registers)
        except DumpError as exc:
            print(f"dcim profile test: {exc}", file=sys.stderr)
            return 2
        if dump.profile and dump.profile != profile.name:
            print(f"# note: the dump is for map {dump.profile}, testing {profile.name}")
        server = DumpServer(dump, args.unit)
        await server.start("127.0.0.1", 0)
        host, port, unit = "127.0.0.1", server.port, server.unit_id
        where = f"register dump {args.registers} ({len(dump)} registers, unit {unit})"
    else:
        host, port, unit = args.host, args.port or 502, args.unit or 1
        where = f"{host}:{port} unit {unit}"
    config = ModbusConfig(
        host=host,
        port=port,
        unit_id=unit,
        transport=args.transport,
        timeout_s=args.timeout,
        retries=0 if server is not None else args.retries,
    )
    plan = plan_profile(profile, config.max_gap)
    placed = PlacedDevice(
        DeviceConfig.model_validate(
            {"id": "test", "kind": profile.kind, "profile": "test", "modbus": config.model_dump()}
        ),
        "",
        "",
        "",
        "",
        MappingProxyType({"device": "test"}),
    )
    print(f"# {where}: map {profile.name} ({profile.kind}), {len(plan.blocks)} request(s) per poll")
    dropped = _Dropped()
    logging.getLogger("collectors.modbus.collector").addHandler(dropped)
    gateway = ModbusGateway(config)
    try:
        readings = await ModbusCollector(placed, plan, gateway, config).poll()
    except CollectError as exc:
        print(f"dcim profile test: {exc} ({exc.error_class})", file=sys.stderr)
        return 1
    finally:
        logging.getLogger("collectors.modbus.collector").removeHandler(dropped)
        gateway.close()
        if server is not None:
            await server.close()
    sources = modbus_sources(profile, plan)
    sourced = [(r, sources.get(_reading_key(r), "?")) for r in readings]
    _print_readings(sourced, "modbus")
    seen = {sources.get(_reading_key(r)) for r in readings}
    notes = [
        f"{where_}: {metric}: no value (not available, or outside what the device answered)"
        for (metric, _), where_ in sources.items()
        if where_ not in seen and not any(where_ in m for m in dropped.messages)
    ]
    flags = [f"FLAG {message}" for message in dropped.messages]
    for line in [*flags, *(f"NOTE {n}" for n in sorted(set(notes)))]:
        print(line)
    print(
        f"# {len(readings)} reading(s), {len(dropped.messages)} value(s) dropped, "
        f"{len(set(notes))} field(s) without a value"
    )
    return 1 if not readings or dropped.messages else 0


def _reading_key(reading: Any) -> tuple[str, tuple[tuple[str, str], ...]]:
    tags = tuple(sorted((k, v) for k, v in reading.tags.items() if k != "device"))
    return reading.metric, tags


def modbus_sources(profile: Any, plan: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], str]:
    """(metric, tags) of every reading the map can give -> where it is read, as
    `holding 3027-3028` (wire addresses) plus the map's own numbering when 1-based."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
    for block in plan.blocks:
        for planned in block.fields:
            field_ = planned.field
            last = planned.end - 1
            where = f"{block.function} {planned.address}" + (
                f"-{last}" if last != planned.address else ""
            )
            if profile.address_base:
                where += f" (#{field_.address})"
            if field_.type.value == "bits":
                where += f" bits {field_.bit}-{field_.bit + field_.width - 1}"
            tags = dict(field_.tags)
            names = [name for _, name in sorted(field_.flags.items())] or [None]
            for name in names:
                full = {**tags, field_.flag_tag: name} if name else tags
                out[(field_.metric, tuple(sorted(full.items())))] = where
    return out


def _unanswered(profile: Any, sources: set[str], dropped: list[str]) -> list[str]:
    """Fields of the profile that gave nothing (the device lacks them, or the OID is wrong)."""
    notes = []
    dropped_text = " ".join(dropped)
    for scalar in profile.scalars:
        oids = [scalar.oid, *scalar.fallback_oids]
        if not any(oid in sources or oid in dropped_text for oid in oids):
            notes.append(f"scalar {scalar.metric} ({scalar.oid}): no value")
    for table in profile.tables:
        oids = [c.oid for c in table.columns] + [c.oid for c in table.switched]
        if not any(s.startswith(oid + ".") for oid in oids for s in sources):
            notes.append(f"table {table.name}: no rows with a value")
    return notes


def _print_readings(sourced: list[Any], protocol: str = "snmp") -> None:
    from dcim.cli.poll import _print_table

    _print_table(sourced, protocol)


def run_test(args: argparse.Namespace) -> int:
    _use_paths(args)
    report = lint_file(args.file, args.protocol)
    if report.problems:
        for line in report.lines():
            print(line)
        return 1
    if report.protocol == "modbus":
        if args.registers is None and args.host is None:
            print("dcim profile test: give --registers DUMP or --host HOST", file=sys.stderr)
            return 2
        return asyncio.run(_poll_modbus(args))
    if report.protocol != "snmp":
        print(
            "dcim profile test: MQTT topic maps are tested against a broker "
            "(docs/profiles.md, 'MQTT: from a gateway's payloads to a topic map')",
            file=sys.stderr,
        )
        return 2
    if args.recording is None and args.host is None:
        print("dcim profile test: give --recording FILE or --host HOST", file=sys.stderr)
        return 2
    if args.port is None:
        args.port = 161
    return asyncio.run(_poll_snmp(args))


def add_parser(sub: Any) -> None:
    from dcim.cli.poll import add_snmp_options

    profile = sub.add_parser("profile", help="check a profile you wrote (lint, test)")
    profile.set_defaults(func=cmd_profile)
    what = profile.add_subparsers(dest="profile_command", required=True)
    lint = what.add_parser("lint", help="schema, vocabulary, OIDs, duplicates, with line numbers")
    lint.add_argument("files", nargs="+", type=Path)
    lint.add_argument("--protocol", choices=PROTOCOLS)
    lint.add_argument(
        "--profile-path", action="append", type=Path, default=[], help="site profile folder"
    )
    lint.set_defaults(profile_func=run_lint)
    test = what.add_parser("test", help="poll a recording or a device with the profile")
    test.add_argument("file", type=Path)
    test.add_argument("--protocol", choices=PROTOCOLS)
    test.add_argument("--recording", type=Path, help="a `dcim walk` recording (.snmprec)")
    test.add_argument("--registers", type=Path, help="a Modbus register dump (YAML) to serve")
    test.add_argument("--host", help="a live SNMP agent or Modbus device instead of a file")
    add_snmp_options(test)
    test.set_defaults(port=None)  # 161 for SNMP, 502 for Modbus
    test.add_argument("--unit", type=int, help="Modbus unit id (default: the dump's, or 1)")
    test.add_argument(
        "--transport", choices=["tcp", "rtu-over-tcp"], default="tcp", help="Modbus framing"
    )
    test.add_argument(
        "--profile-path", action="append", type=Path, default=[], help="site profile folder"
    )
    test.set_defaults(profile_func=run_test)


def cmd_profile(args: argparse.Namespace) -> int:
    from dcim.cli.common import setup_command_logging

    setup_command_logging(args, "WARNING")
    code: int = args.profile_func(args)
    return code
