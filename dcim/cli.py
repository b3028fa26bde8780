"""The `dcim` command: run, validate, poll, simulate, demo."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dcim import __version__
from dcim.configfiles import CONFIG_ENV, DEFAULT_CONFIG, locate_config
from dcim.errors import ConfigError, DcimError
from dcim.inventory import Config, iter_devices, load_config
from dcim.logsetup import LOG_FORMATS, LOG_LEVELS, setup_logging

if TYPE_CHECKING:
    from aiomqtt import Client, Will

    from dcim.inventory import MqttBrokerConfig
    from dcim.shard import Shard


def _logging(args: argparse.Namespace, level: str, config: Config | None = None) -> None:
    """Logging from the global options, else the config's monitor section, else `level`."""
    monitor = config.monitor if config is not None else None
    setup_logging(
        args.log_level or (monitor.log_level if monitor else level),
        args.log_format or (monitor.log_format if monitor else "text"),
    )


def load_checked(path: Path) -> Config:
    """Load a config (its profile folders first on the search path) and check every
    device's profile; ConfigError lists the problems."""
    from collectors.registry import check_profiles

    config = load_site_config(path)
    problems = check_profiles(list(iter_devices(config)), config.device_origins())
    if problems:
        raise ConfigError(str(path), problems)
    return config


def load_site_config(path: Path) -> Config:
    """Load a config file and put its profile folders first on the search path."""
    from collectors.shipped import use_profile_paths

    config = load_config(path)
    use_profile_paths(config.profiles.paths)
    return config


def cmd_validate(args: argparse.Namespace) -> int:
    from collectors.registry import check_profiles

    path = locate_config(args.config)
    try:
        config = load_site_config(path)
    except ConfigError as exc:
        return _report_config_error(exc)
    devices = list(iter_devices(config))
    # every problem at once: the profiles the devices name, the directories it writes to
    problems = check_profiles(devices, config.device_origins()) + _state_problems(config)
    if problems:
        return _report_config_error(ConfigError(str(path), problems))
    sites = len(config.sites)
    print(f"{path}: OK ({sites} site(s), {len(devices)} device(s), {len(config.sinks)} sink(s))")
    from collectors.shipped import overrides

    for protocol, name, where in overrides():
        print(
            f"  note: {protocol} profile {name} is the site's {where} (overrides the shipped one)"
        )
    return 0


def _state_problems(config: Config) -> list[str]:
    """Directories the monitor will write to that it cannot (without creating anything)."""
    from dcim.inventory import InfluxSinkConfig
    from dcim.statedir import state_dir_problem
    from dcim.yamlsource import format_path

    places: list[tuple[tuple[str | int, ...], Path]] = [
        (("monitor", "state_dir"), config.monitor.state_dir)
    ]
    places += [
        (("sinks", index, "spool", "dir"), sink.spool.dir)
        for index, sink in enumerate(config.sinks)
        if isinstance(sink, InfluxSinkConfig) and sink.spool.dir is not None
    ]
    problems = []
    for where, path in places:
        problem = state_dir_problem(path)
        if problem is not None:
            origin = config.origin_of(where) if where[0] in config.model_fields_set else None
            suffix = f" ({origin})" if origin else ""
            setting = format_path(where)
            problems.append(f"{setting}: {problem}{suffix}")
    return problems


def _report_config_error(exc: ConfigError) -> int:
    print(f"{exc.source}: {len(exc.problems)} problem(s):", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)
    return 2


def cmd_run(args: argparse.Namespace) -> int:
    from dcim.ops.service import Service

    path = locate_config(args.config)
    try:
        config = load_checked(path)
        shard = _shard(args)
    except ConfigError as exc:
        return _report_config_error(exc)
    _logging(args, "INFO", config)
    from collectors.shipped import log_overrides

    log_overrides()
    if args.member and config.coordination is None:
        return _report_config_error(
            ConfigError("--member", ["a member name needs a coordination section (etcd)"])
        )
    if shard is not None and config.coordination is not None:
        return _report_config_error(
            ConfigError(
                "--shard",
                [
                    "the config has a coordination section (rooms shared through etcd): "
                    "run without --shard, or remove coordination for a static split"
                ],
            )
        )
    from dcim.statedir import prepare_state_dir

    # before anything writes there (pid file, spool, alert store): one line if it cannot
    prepare_state_dir(config.monitor.state_dir)
    service = Service(
        path,
        config,
        shard=shard,
        load=load_checked,
        mqtt_client=_mqtt_client,
        member=args.member,
    )
    if shard is not None:
        part = service.config
        rooms = [f"{site.id}/{room.id}" for site in part.sites for room in site.rooms]
        logging.getLogger("dcim").info(
            "shard %d/%d: rooms %s; state in %s",
            shard.index,
            shard.count,
            ", ".join(rooms) or "none",
            part.monitor.state_dir,
        )
    return asyncio.run(service.run(args.duration))


def _shard(args: argparse.Namespace) -> Shard | None:
    from dcim.shard import Shard

    if not args.shard:
        return None
    try:
        return Shard.parse(args.shard)
    except ValueError as exc:
        raise ConfigError("--shard", [str(exc)]) from None


def _member_name(text: str) -> str:
    import re

    from dcim.coord.config import MEMBER_PATTERN

    if not re.fullmatch(MEMBER_PATTERN, text):
        msg = (
            f"{text!r}: letters, digits, '_', '.', '-' (up to 63), starting with a letter or digit"
        )
        raise argparse.ArgumentTypeError(msg)
    return text


def _mqtt_client(broker: MqttBrokerConfig, client_id: str, will: Will) -> Client:
    """An MQTT client for the shard heartbeat (the collectors' TLS and auth handling)."""
    from collectors.mqtt.client import make_client

    return make_client(broker, client_id=client_id, persistent=False, will=will)


def cmd_reload(args: argparse.Namespace) -> int:
    from dcim.ops.reloadcmd import request_reload

    path = locate_config(args.config)
    try:
        config = load_checked(path)
    except ConfigError as exc:
        _report_config_error(exc)
        print("dcim reload: not sent; the running monitor keeps its config", file=sys.stderr)
        return 2
    return request_reload(config, timeout_s=args.timeout)


def cmd_shards(args: argparse.Namespace) -> int:
    from dcim.shard import describe

    if args.count < 1:
        print("dcim shards: the count must be at least 1", file=sys.stderr)
        return 2
    try:
        config = load_config(locate_config(args.config))
    except ConfigError as exc:
        return _report_config_error(exc)
    print(describe(config, args.count))
    return 0


def cmd_poll(args: argparse.Namespace) -> int:
    from dcim.oneshot import poll_inventory_device, poll_once_and_print

    _logging(args, "WARNING")
    if args.device:
        if args.config is None:
            print("dcim poll DEVICE needs --config FILE", file=sys.stderr)
            return 2
        try:
            return asyncio.run(poll_inventory_device(args))
        except ConfigError as exc:
            return _report_config_error(exc)
    if not args.host:
        print("dcim poll: give a DEVICE with --config, or --host", file=sys.stderr)
        return 2
    return asyncio.run(poll_once_and_print(args))


def cmd_discover(args: argparse.Namespace) -> int:
    from dcim.oneshot import discover_and_print

    _logging(args, "WARNING")
    return asyncio.run(discover_and_print(args))


def cmd_profile(args: argparse.Namespace) -> int:
    _logging(args, "WARNING")
    code: int = args.profile_func(args)
    return code


def cmd_walk(args: argparse.Namespace) -> int:
    from dcim.oneshot import walk_and_print

    _logging(args, "WARNING")
    return asyncio.run(walk_and_print(args))


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulators.cli import run_simulate

    _logging(args, "INFO")
    return run_simulate(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from dcim.demo.run import run_demo

    _logging(args, "WARNING")
    return asyncio.run(run_demo(args))


def cmd_vocabulary(args: argparse.Namespace) -> int:
    from dcim.vocabulary import load_vocabulary

    del args
    print("| metric | type | unit | InfluxDB measurement.field | meaning |")
    print("|---|---|---|---|---|")
    for spec in load_vocabulary().metrics.values():
        kind = spec.type + (f" ({', '.join(spec.values)})" if spec.values else "")
        print(
            f"| `{spec.name}` | {kind} | {spec.unit or ''} | "
            f"`{spec.measurement}.{spec.field}` | {spec.description} |"
        )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from dcim.bench import run_bench

    _logging(args, "WARNING")
    return asyncio.run(run_bench(args))


def cmd_bench_snmp(args: argparse.Namespace) -> int:
    from dcim.benchsnmp import run_bench as run_snmp_bench

    _logging(args, "WARNING")
    return run_snmp_bench(args)


def cmd_bench_report(args: argparse.Namespace) -> int:
    from dcim.benchreport import run_report

    return run_report(args)


def cmd_modbus(args: argparse.Namespace) -> int:
    from collectors.modbus.preview import run_poll, run_preview

    _logging(args, "WARNING")
    return asyncio.run(run_preview(args) if args.modbus_command == "preview" else run_poll(args))


CONFIG_HELP = f"config file (default: ${CONFIG_ENV}, else {DEFAULT_CONFIG}; conf.d/*.yaml beside it are merged)"


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Options every command takes, before or after the subcommand.

    Below the top level their default is SUPPRESS: a subcommand that was not given
    the option leaves what the top level parsed in place.
    """
    default = None if top else argparse.SUPPRESS
    parser.add_argument("--log-level", choices=LOG_LEVELS, default=default, help="log level")
    parser.add_argument(
        "--log-format", choices=LOG_FORMATS, default=default, help="log lines as text or JSON"
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_global_options(child, top=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dcim", description=__doc__)
    parser.add_argument("--version", action="version", version=f"dcim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="poll the inventory and write to the configured sinks")
    run.add_argument("config", type=Path, nargs="?", help=CONFIG_HELP)
    run.add_argument("--duration", type=float, help="stop after this many seconds")
    run.add_argument(
        "--shard", help="I/N: poll only this process's share of the rooms (N processes in all)"
    )
    run.add_argument(
        "--member",
        type=_member_name,
        help="this monitor's name among the coordinated members (default: "
        "coordination.member, else the host name)",
    )
    run.set_defaults(func=cmd_run)

    reload = sub.add_parser(
        "reload",
        help="check the config, then have the running monitor(s) re-read it (as SIGHUP does)",
    )
    reload.add_argument("config", type=Path, nargs="?", help=CONFIG_HELP)
    reload.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for the monitor's answer"
    )
    reload.set_defaults(func=cmd_reload)

    shards = sub.add_parser(
        "shards", help="print how N `dcim run --shard I/N` processes split the inventory"
    )
    shards.add_argument("config", type=Path, nargs="?", help=CONFIG_HELP)
    shards.add_argument("count", type=int, help="number of shards (N)")
    shards.set_defaults(func=cmd_shards)

    validate = sub.add_parser("validate", help="check a config file without running")
    validate.add_argument("config", type=Path, nargs="?", help=CONFIG_HELP)
    validate.set_defaults(func=cmd_validate)

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

    from dcim.oneshot import add_snmp_options

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

    from dcim.profiletool import add_profile_parser

    add_profile_parser(sub)
    sub.choices["profile"].set_defaults(func=cmd_profile)

    simulate = sub.add_parser("simulate", help="serve simulated devices over SNMP")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument(
        "--port",
        type=int,
        default=None,
        help="UDP port (default 1161; with --site: each device's port from the inventory)",
    )
    simulate.add_argument("--count", type=int, default=1, help="number of simulated UPS")
    simulate.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    simulate.add_argument("--duration", type=float, help="stop after this many seconds")
    simulate.add_argument(
        "--site", type=Path, help="serve a whole site inventory (see simulators/sites)"
    )
    simulate.add_argument("--scenario", help="with --site: play a scenario (name or file)")
    simulate.add_argument(
        "--trap",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="with --site: send v2c traps here",
    )
    from simulators.cli import add_site_arguments

    add_site_arguments(simulate)  # --mqtt-url, --mqtt-interval
    simulate.set_defaults(func=cmd_simulate)

    from dcim.alerts.commands import add_alerts_parser

    add_alerts_parser(sub)

    demo = sub.add_parser(
        "demo", help="the simulated data hall, the monitor and the NOC board; no server needed"
    )
    from dcim.demo.run import add_arguments as add_demo_arguments

    add_demo_arguments(demo)
    demo.set_defaults(func=cmd_demo)
    vocabulary = sub.add_parser("vocabulary", help="print the metric vocabulary (Markdown)")
    vocabulary.set_defaults(func=cmd_vocabulary)

    benches = sub.add_parser("bench", help="measure the pipeline or SNMP polling at scale")
    bench_sub = benches.add_subparsers(dest="what", required=True)
    snmp_bench = bench_sub.add_parser("snmp", help="poll a simulated fleet; vs snmp_exporter")
    from dcim.benchsnmp import add_arguments as add_snmp_bench_arguments

    add_snmp_bench_arguments(snmp_bench)
    snmp_bench.add_argument("--json", metavar="FILE", help="write the results here")
    snmp_bench.set_defaults(func=cmd_bench_snmp)
    report = bench_sub.add_parser("report", help="render `bench snmp --json` results as a table")
    from dcim.benchreport import add_arguments as add_report_arguments

    add_report_arguments(report)
    report.set_defaults(func=cmd_bench_report)
    bench = bench_sub.add_parser("pipeline", help="readings/s through the bus into a sink")
    bench.add_argument("--readings", type=int, default=200_000)
    bench.add_argument("--batch-size", type=int, default=5000)
    bench.add_argument("--influx-url", help="also write to this InfluxDB")
    bench.add_argument("--influx-api", choices=["v1", "v2"], default="v1")
    bench.add_argument("--database", default="dcim_bench")
    bench.add_argument("--bucket", default="dcim_bench")
    bench.add_argument("--org", default="")
    bench.add_argument("--token-env", help="environment variable holding the v2 token")
    bench.add_argument("--json", action="store_true")
    bench.set_defaults(func=cmd_bench)
    from collectors.modbus.preview import add_parser as add_modbus_parser

    add_modbus_parser(sub)
    sub.choices["modbus"].set_defaults(func=cmd_modbus)
    from collectors.registry import profile_metrics, profile_tag_values
    from dcim.grafana.cli import add_grafana_parser
    from dcim.grafana.site import Profiles

    add_grafana_parser(sub, Profiles(profile_tag_values, profile_metrics))
    _add_global_options(parser, top=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except DcimError as exc:
        print(f"dcim: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
