"""`dcim run`, `validate`, `shards`, `reload`: the monitor as a service and its config."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcim import eventloop
from dcim.cli.common import (
    CONFIG_HELP,
    load_checked,
    load_site_config,
    report_config_error,
    setup_command_logging,
)
from dcim.configfiles import locate_config
from dcim.errors import ConfigError
from dcim.inventory import Config, iter_devices, load_config

if TYPE_CHECKING:
    from aiomqtt import Client, Will

    from dcim.inventory import MqttBrokerConfig
    from dcim.shard import Shard


def add_parser(sub: Any) -> None:
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


def cmd_validate(args: argparse.Namespace) -> int:
    from collectors.registry import check_profiles

    path = locate_config(args.config)
    try:
        config = load_site_config(path)
    except ConfigError as exc:
        return report_config_error(exc)
    devices = list(iter_devices(config))
    # every problem at once: the profiles the devices name, the directories it writes to
    problems = check_profiles(devices, config.device_origins()) + _state_problems(config)
    if problems:
        return report_config_error(ConfigError(str(path), problems))
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


def cmd_run(args: argparse.Namespace) -> int:
    from dcim.ops.service import Service

    path = locate_config(args.config)
    try:
        config = load_checked(path)
        shard = _shard(args)
    except ConfigError as exc:
        return report_config_error(exc)
    setup_command_logging(args, "INFO", config)
    from collectors.shipped import log_overrides

    log_overrides()
    if args.member and config.coordination is None:
        return report_config_error(
            ConfigError("--member", ["a member name needs a coordination section (etcd)"])
        )
    if shard is not None and config.coordination is not None:
        return report_config_error(
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
    from collectors.registry import CollectorFactory

    service = Service(
        path,
        config,
        shard=shard,
        load=load_checked,
        collectors=CollectorFactory.for_config,
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
    return eventloop.run(service.run(args.duration))


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
    from dcim.mqttclient import make_client

    return make_client(broker, client_id=client_id, persistent=False, will=will)


def cmd_reload(args: argparse.Namespace) -> int:
    from dcim.ops.reloadcmd import request_reload

    path = locate_config(args.config)
    try:
        config = load_checked(path)
    except ConfigError as exc:
        report_config_error(exc)
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
        return report_config_error(exc)
    print(describe(config, args.count))
    return 0
