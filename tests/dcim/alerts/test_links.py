"""Every notification links its rule's runbook and its scope's dashboard and board: the
links resolve as configured, point at dashboards `dcim grafana` really generates, and
reach Alertmanager (annotations, generatorURL) and the webhook's JSON."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from dcim.alerts.config import AlertLinks
from dcim.alerts.model import Notification, Phase, Severity
from dcim.alerts.notify.alertmanager import to_alert
from dcim.alerts.notify.links import links_for
from dcim.alerts.notify.templating import Messages
from dcim.clock import ManualClock
from dcim.grafana.build import build_dashboards
from dcim.inventory import load_config
from tests.support.alert_rig import all_delivered, service, temp
from tests.support.alertmanager_server import Alertmanager, start_alertmanager

ROOT = Path(__file__).resolve().parents[3]
RUNBOOKS = "https://git.example.org/dcim/blob/main/"
LINKS = AlertLinks(
    runbook_base_url=RUNBOOKS,
    grafana_url="https://grafana.example.org/",
    board_url="https://noc.example.org/board",
)


def note(labels: dict[str, str], rule: str = "ups.load", runbook: str = "") -> Notification:
    return Notification(
        event="firing",
        at=100.0,
        incident_id="abc123",
        rule=rule,
        rule_name="",
        key="k",
        severity=Severity.WARNING,
        phase=Phase.FIRING,
        summary="s",
        labels=labels,
        started_at=0.0,
        fired_at=60.0,
        resolved_at=None,
        runbook_url=runbook,
    )


RACK = {"site": "par1", "room": "hall-a", "row": "row-01", "rack": "a01", "device": "ups-a01"}


def test_runbook_paths_resolve_against_the_base_and_site_overrides_win() -> None:
    path = "docs/runbooks.md#ups-load"
    assert links_for(note(RACK, runbook=path), LINKS).runbook == RUNBOOKS + path
    without_base = AlertLinks()
    assert links_for(note(RACK, runbook=path), without_base).runbook == path
    own = "https://wiki.example.org/ups"
    assert links_for(note(RACK, runbook=own), LINKS).runbook == own
    site = LINKS.model_copy(update={"runbooks": {"ups.*": "https://wiki.example.org/site-ups"}})
    assert links_for(note(RACK, runbook=path), site).runbook == "https://wiki.example.org/site-ups"
    assert (
        links_for(note(RACK, rule="pdu.branch_load", runbook=path), site).runbook == RUNBOOKS + path
    )


def test_dashboard_links_open_dashboards_dcim_grafana_generates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (
        "DCIM_SNMP_COMMUNITY",
        "DCIM_SNMPV3_AUTH",
        "DCIM_SNMPV3_PRIV",
        "DCIM_MQTT_PASSWORD",
        "DCIM_INFLUX_PASSWORD",
        "DCIM_INFLUX_TOKEN",
        "DCIM_TRAP_COMMUNITY",
        "DCIM_WEBHOOK_KEY",
        "DCIM_ALERTS_TOKEN",
    ):
        monkeypatch.setenv(name, "x" * 16)
    monkeypatch.setenv("DCIM_PAGERDUTY_KEY", "k" * 32)
    monkeypatch.setenv("DCIM_SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T/B/X")
    config = load_config(ROOT / "dcim" / "examples" / "site.yaml")
    uids = {generated.dashboard.uid for generated in build_dashboards(config)}
    device = links_for(note(RACK), LINKS).dashboard
    assert device == (
        "https://grafana.example.org/d/dcim-device-par1"
        "?var-site=par1&var-room=hall-a&var-row=row-01&var-rack=a01&var-device=ups-a01"
    )
    room = links_for(note({"site": "par1", "room": "hall-a"}), LINKS).dashboard
    assert room == "https://grafana.example.org/d/dcim-noc-par1?var-site=par1&var-room=hall-a"
    for url in (device, room):
        assert url.split("/d/")[1].split("?")[0] in uids
    # an alert about no place (a channel failing) opens Grafana's home
    assert links_for(note({"channel": "pager"}), LINKS).dashboard == "https://grafana.example.org/"


def test_board_links_carry_the_scope_and_the_incident() -> None:
    assert links_for(note(RACK), LINKS).board == (
        "https://noc.example.org/board?site=par1&room=hall-a&row=row-01&rack=a01"
        "&device=ups-a01&incident=abc123"
    )
    nothing = links_for(note(RACK), AlertLinks())
    assert (nothing.dashboard, nothing.board) == ("", "")


def test_alertmanager_alert_carries_links_as_annotations_and_generator_url() -> None:
    messages = Messages("alertmanager", "am", links=LINKS)
    alert = to_alert(note(RACK, runbook="docs/runbooks.md#ups-load"), 1000.0, 60.0, messages)
    annotations: Any = alert["annotations"]
    assert annotations["runbook_url"] == RUNBOOKS + "docs/runbooks.md#ups-load"
    assert annotations["dashboard_url"].startswith(
        "https://grafana.example.org/d/dcim-device-par1?"
    )
    assert annotations["description"] == "ups.load at par1 / hall-a / row-01 / a01 / ups-a01."
    assert alert["generatorURL"] == annotations["board_url"]
    # without links: no empty annotations, no generatorURL
    bare = to_alert(note(RACK), 1000.0, 60.0, Messages("alertmanager", "am"))
    assert "generatorURL" not in bare
    annotations = bare["annotations"]
    assert isinstance(annotations, dict)
    assert set(annotations) == {"summary", "description"}


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Alertmanager]:
    server = start_alertmanager(tmp_path / "am")
    yield server
    server.stop()


async def test_a_real_alertmanager_shows_the_runbook_and_the_view_of_the_scope(
    tmp_path: Path, alertmanager: Alertmanager
) -> None:
    clock = ManualClock(dt.datetime.now(dt.UTC).timestamp())
    channel = {"type": "alertmanager", "name": "am", "url": alertmanager.url}
    links = {"runbook_base_url": RUNBOOKS, "grafana_url": "https://grafana.example.org"}
    alerts = service(tmp_path, clock, channel, links=links)
    try:
        alerts.process([temp(33.0, clock)])
        await all_delivered(alerts, "am")
    finally:
        await alerts.aclose()
    (alert,) = alertmanager.alerts()
    assert alert["annotations"]["runbook_url"] == RUNBOOKS + "docs/runbooks.md#ashrae-inlet-temp"
    assert alert["generatorURL"] == alert["annotations"]["dashboard_url"]
    assert alert["generatorURL"].startswith("https://grafana.example.org/d/dcim-device-par1?")


class Hook:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(json.loads(await request.read()))
        return web.Response(status=204)


@pytest.fixture
async def hook() -> AsyncIterator[tuple[Hook, str]]:
    receiver = Hook()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield receiver, f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    await runner.cleanup()


async def test_webhook_json_carries_links_and_the_message_template(
    tmp_path: Path, hook: tuple[Hook, str]
) -> None:
    receiver, url = hook
    clock = ManualClock()
    channel = {
        "type": "webhook",
        "name": "hook",
        "url": url,
        "templates": {"message": "{{ severity }} at {{ where }}: {{ runbook_url }}"},
    }
    alerts = service(tmp_path, clock, channel, links={"runbook_base_url": RUNBOOKS})
    try:
        alerts.process([temp(33.0, clock)])
        await all_delivered(alerts, "hook")
    finally:
        await alerts.aclose()
    (body,) = receiver.bodies
    runbook = RUNBOOKS + "docs/runbooks.md#ashrae-inlet-temp"
    assert (body["runbook_url"], body["dashboard_url"], body["board_url"]) == (runbook, "", "")
    assert body["message"] == f"critical at par1 / hall-a / a01 / env-1: {runbook}"
