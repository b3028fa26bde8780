"""The inventory for dashboard generation: secrets are not needed to draw a dashboard.

A config whose `{env: ...}`/`{file: ...}` secrets cannot be resolved on this
machine (a workstation exporting dashboards has no SNMP keys) is loaded again
with placeholders in their place. Any other problem is reported as
`dcim validate` would, with its line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dcim.errors import ConfigError
from dcim.inventory import Config, load_config, parse_config

#: Stands in for an unresolvable secret; long enough for SNMPv3 key rules.
PLACEHOLDER = "unresolved-secret"
_SECRET_PROBLEMS = ("environment variable ", "cannot read secret file ")


def _only_secrets_missing(exc: ConfigError) -> bool:
    return all(any(p in problem for p in _SECRET_PROBLEMS) for problem in exc.problems)


def _without_secret_refs(node: Any) -> Any:
    if isinstance(node, dict):
        if set(node) in ({"env"}, {"file"}):
            return PLACEHOLDER
        return {key: _without_secret_refs(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_without_secret_refs(item) for item in node]
    return node


def load_inventory(path: Path) -> Config:
    """The config at `path`, with unresolvable secrets replaced (never read or printed)."""
    try:
        return load_config(path)
    except ConfigError as exc:
        if not _only_secrets_missing(exc):
            raise
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    # dashboards need no alert channels, whose secrets have shapes (a 32-character key,
    # an https URL) that no placeholder can fake
    data.pop("alerts", None)
    return parse_config(yaml.safe_dump(_without_secret_refs(data), sort_keys=False), str(path))
