"""`dcim grafana export DIR`: dashboard JSON and Grafana provisioning files, ready to mount.

    DIR/dashboards/<site>/<view>.json        one folder per site
    DIR/provisioning/dashboards/dcim.yaml    a file provider per site folder
    DIR/provisioning/datasources/dcim.yaml   an InfluxDB (InfluxQL) datasource per sink

Mount DIR/provisioning at /etc/grafana/provisioning and DIR/dashboards at
`dashboards_path` (default /var/lib/grafana/dashboards/dcim). Secrets stay out
of the files: Grafana fills `${DCIM_INFLUX_PASSWORD}`/`${DCIM_INFLUX_TOKEN}`
from its own environment when it reads them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dcim.grafana.build import Generated
from dcim.grafana.model import GENERATED_MARKER, render_json
from dcim.grafana.site import Site
from dcim.grafana.variables import INFLUXQL_NAME
from dcim.inventory import Config, InfluxSinkConfig, iter_devices

DASHBOARDS_PATH = "/var/lib/grafana/dashboards/dcim"
YAML_HEADER = f"# {GENERATED_MARKER}\n"
#: In every provisioned datasource name: the dashboards' datasource variable lists only
#: datasources whose name says InfluxQL (a Flux or SQL one would break every query).
INFLUXQL_SUFFIX = f" ({INFLUXQL_NAME})"
#: Used when the inventory has no InfluxDB sink (the demo writes to a file).
DEFAULT_DATASOURCE: dict[str, Any] = {
    "name": "dcim InfluxDB" + INFLUXQL_SUFFIX,
    "uid": "dcim-influxdb",
    "type": "influxdb",
    "access": "proxy",
    "url": "http://127.0.0.1:8086",
    "jsonData": {"dbName": "dcim", "httpMode": "POST", "version": "InfluxQL"},
}


@dataclass(frozen=True, slots=True)
class Written:
    """One file export touched: `status` is new, changed, unchanged or removed."""

    path: Path
    status: str


def _datasource(sink: InfluxSinkConfig) -> dict[str, Any]:
    """InfluxQL on every version: v1 by database, v2/v3 by bucket through a DBRP mapping."""
    source: dict[str, Any] = {
        "name": f"dcim {sink.name}{INFLUXQL_SUFFIX}",
        "uid": f"dcim-{sink.name}",
        "type": "influxdb",
        "access": "proxy",
        "url": sink.url,
        "jsonData": {"httpMode": "POST", "version": "InfluxQL"},
    }
    if sink.api == "v1":
        source["jsonData"]["dbName"] = sink.database
        if sink.username:
            source["user"] = sink.username
            source["secureJsonData"] = {"password": "${DCIM_INFLUX_PASSWORD}"}
    else:
        source["jsonData"].update(dbName=sink.bucket, httpHeaderName1="Authorization")
        source["secureJsonData"] = {"httpHeaderValue1": "Token ${DCIM_INFLUX_TOKEN}"}
    return source


def time_interval(config: Config) -> str:
    """Grafana's minimum interval: the shortest poll, so a bucket never falls between polls."""
    polls = [p.device.poll_interval_s for p in iter_devices(config)]
    return f"{min(polls, default=30.0):g}s"


def datasources_yaml(config: Config, influx_url: str | None = None) -> str:
    """One datasource per InfluxDB sink; `influx_url` replaces their URL (as Grafana reaches it)."""
    sinks = [s for s in config.sinks if isinstance(s, InfluxSinkConfig)]
    sources = [_datasource(s) for s in sinks] or [copy.deepcopy(DEFAULT_DATASOURCE)]
    sources[0]["isDefault"] = True
    for source in sources:
        source["jsonData"]["timeInterval"] = time_interval(config)
        if influx_url:
            source["url"] = influx_url
    doc = {"apiVersion": 1, "datasources": sources}
    return YAML_HEADER + yaml.safe_dump(doc, sort_keys=True, allow_unicode=True)


def providers_yaml(sites: list[Site], dashboards_path: str = DASHBOARDS_PATH) -> str:
    """One file provider per site: folder title and uid match what `push` creates."""
    providers = [
        {
            "name": f"dcim-{site.id}",
            "folder": site.title,
            "folderUid": site.folder_uid,
            "type": "file",
            "disableDeletion": False,
            # the files are generated: edits in the UI would be lost on the next export
            "allowUiUpdates": False,
            "updateIntervalSeconds": 30,
            "options": {"path": f"{dashboards_path}/{site.id}"},
        }
        for site in sites
    ]
    return YAML_HEADER + yaml.safe_dump({"apiVersion": 1, "providers": providers}, sort_keys=True)


def _write(path: Path, text: str) -> Written:
    old = path.read_text(encoding="utf-8") if path.exists() else None
    if old == text:
        return Written(path, "unchanged")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return Written(path, "new" if old is None else "changed")


def export(
    config: Config,
    generated: list[Generated],
    out: Path,
    dashboards_path: str = DASHBOARDS_PATH,
    influx_url: str | None = None,
) -> list[Written]:
    """Write everything under `out`; generated JSON no longer produced is removed."""
    written = [_write(out / "dashboards" / g.path, render_json(g.to_json())) for g in generated]
    keep = {w.path for w in written}
    for stale in sorted((out / "dashboards").glob("*/*.json")):
        # only files we generated: anything else in the folder is someone else's
        if stale not in keep and GENERATED_MARKER in stale.read_text(encoding="utf-8"):
            stale.unlink()
            written.append(Written(stale, "removed"))
    sites = list({g.site.id: g.site for g in generated}.values())
    written.append(
        _write(
            out / "provisioning" / "dashboards" / "dcim.yaml",
            providers_yaml(sites, dashboards_path),
        )
    )
    written.append(
        _write(
            out / "provisioning" / "datasources" / "dcim.yaml", datasources_yaml(config, influx_url)
        )
    )
    return written
