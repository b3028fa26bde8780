"""What every `dcim` command shares: logging from the options, loading a config, errors."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dcim.configfiles import CONFIG_ENV, DEFAULT_CONFIG
from dcim.errors import ConfigError
from dcim.inventory import Config, iter_devices, load_config
from dcim.logsetup import setup_logging

CONFIG_HELP = f"config file (default: ${CONFIG_ENV}, else {DEFAULT_CONFIG}; conf.d/*.yaml beside it are merged)"


def setup_command_logging(
    args: argparse.Namespace, level: str, config: Config | None = None
) -> None:
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


def report_config_error(exc: ConfigError) -> int:
    """Every problem of a config on stderr; the exit code of a bad config."""
    print(f"{exc.source}: {len(exc.problems)} problem(s):", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)
    return 2
