"""Slack, Teams, PagerDuty and Opsgenie through the real alert engine: each receives the
firing and the resolve of one incident, with its runbook, dashboard and board links.

The services themselves cannot be reached from here, so recording servers stand in for
them (tests/support/paging_services.py): they check each request against the service's
documented payload shape and answer as the service does. A payload they would refuse
fails the test (`paging.problems`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from dcim.alerts.service import AlertEngine
from dcim.clock import ManualClock
from tests.support.alert_rig import service, temp
from tests.support.paging_services import OPSGENIE_KEY, ROUTING_KEY, SLACK_PATH, PagingServices

RUNBOOKS = "https://git.example.org/dcim/blob/main/"
RUNBOOK = RUNBOOKS + "docs/runbooks.md#ashrae-inlet-temp"
GRAFANA = "https://grafana.example.org"
BOARD = "https://noc.example.org/board"
LINKS = {"runbook_base_url": RUNBOOKS, "grafana_url": GRAFANA, "board_url": BOARD}
DASHBOARD = (
    GRAFANA + "/d/dcim-device-par1?var-site=par1&var-room=hall-a&var-rack=a01&var-device=env-1"
)


@pytest.fixture
async def paging() -> AsyncIterator[PagingServices]:
    services = PagingServices()
    await services.start()
    yield services
    await services.stop()


def incident_of(alerts: AlertEngine) -> str:
    (incident,) = alerts.store.recent(1)
    return incident.id


async def fire_and_resolve(alerts: AlertEngine, clock: ManualClock) -> str:
    """Inlet at 33 °C (critical), then back to 20 °C ten minutes later; the incident id."""
    alerts.process([temp(33.0, clock)])
    incident = incident_of(alerts)
    clock.advance(600)
    alerts.process([temp(20.0, clock)])
    return incident


async def test_slack_gets_firing_and_resolve_with_runbook_and_views(
    tmp_path: Path, paging: PagingServices, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = ManualClock()
    chat = {"type": "slack", "name": "chat", "url": paging.slack_url}
    alerts = service(tmp_path, clock, chat, links=LINKS)
    try:
        incident = await fire_and_resolve(alerts, clock)
        fired, resolved = (r.body for r in await paging.wait_for("slack", 2))
    finally:
        await alerts.aclose()
    assert paging.problems == []
    for message, heading in (
        (fired, ":red_circle: FIRING"),
        (resolved, ":white_check_mark: RESOLVED"),
    ):
        header, _section, context, actions = message["blocks"]
        assert header["text"]["text"] == f"{heading}: inlet"
        assert f"incident `{incident}`" in context["elements"][0]["text"]
        buttons = {b["text"]["text"]: b["url"] for b in actions["elements"]}
        assert buttons["Runbook"] == RUNBOOK
        assert buttons["Dashboard"] == DASHBOARD
        assert buttons["Board"].startswith(BOARD + "?site=par1&room=hall-a&rack=a01&device=env-1")
        assert "sensor.temp\\_c" not in message["text"]  # plain text, no markdown escapes
    assert "*Where:* par1 / hall-a / a01 / env-1" in fired["blocks"][1]["text"]["text"]
    assert "lasted* 10 min" in resolved["blocks"][1]["text"]["text"]
    assert SLACK_PATH not in caplog.text  # the webhook URL is a credential


async def test_teams_gets_an_adaptive_card_per_event_with_a_template_from_a_file(
    tmp_path: Path, paging: PagingServices
) -> None:
    title = tmp_path / "title.j2"
    title.write_text("{{ status }} in {{ labels.get('room', 'the site') }}: {{ rule }}\n")
    clock = ManualClock()
    teams = {
        "type": "teams",
        "name": "noc",
        "url": paging.teams_url,
        "templates": {"title": {"file": str(title)}},
    }
    alerts = service(tmp_path, clock, teams, links=LINKS)
    try:
        incident = await fire_and_resolve(alerts, clock)
        fired, resolved = (r.body for r in await paging.wait_for("teams", 2))
    finally:
        await alerts.aclose()
    assert paging.problems == []
    for message, state, colour in ((fired, "FIRING", "attention"), (resolved, "RESOLVED", "good")):
        card = message["attachments"][0]["content"]
        heading, _, facts = card["body"]
        assert (heading["text"], heading["color"]) == (f"{state} in hall-a: inlet", colour)
        assert {"title": "Incident", "value": incident} in facts["facts"]
        assert {"title": "Runbook", "url": RUNBOOK, "type": "Action.OpenUrl"} in card["actions"]
    assert "Over after 10 min" in resolved["attachments"][0]["content"]["body"][1]["text"]


async def test_pagerduty_triggers_acknowledges_and_resolves_one_alert(
    tmp_path: Path,
    paging: PagingServices,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("DCIM_TEST_PD_KEY", ROUTING_KEY)
    clock = ManualClock()
    pager = {
        "type": "pagerduty",
        "name": "pager",
        "routing_key": {"env": "DCIM_TEST_PD_KEY"},
        "url": paging.pagerduty_url,
    }
    alerts = service(tmp_path, clock, pager, links=LINKS)
    try:
        alerts.process([temp(33.0, clock)])
        incident = incident_of(alerts)
        (trigger,) = (r.body for r in await paging.wait_for("pagerduty", 1))
        alerts.acknowledge(incident, "alice")
        clock.advance(600)
        alerts.process([temp(20.0, clock)])
        events = [r.body for r in await paging.wait_for("pagerduty", 3)]
    finally:
        await alerts.aclose()
    assert paging.problems == []
    key = f"dcim-{incident}"
    assert [(e["event_action"], e["dedup_key"]) for e in events] == [
        ("trigger", key),
        ("acknowledge", key),
        ("resolve", key),
    ]
    payload = trigger["payload"]
    assert (payload["severity"], payload["source"], payload["class"]) == (
        "critical",
        "env-1",
        "inlet",
    )
    assert payload["summary"].endswith("[par1 / hall-a / a01 / env-1]")
    assert payload["custom_details"]["runbook_url"] == RUNBOOK
    assert {"href": RUNBOOK, "text": "Runbook"} in trigger["links"]
    assert {"href": DASHBOARD, "text": "Dashboard"} in trigger["links"]
    assert paging.pagerduty_alerts == {key: "resolved"}
    assert ROUTING_KEY not in caplog.text


async def test_opsgenie_creates_acknowledges_and_closes_by_alias(
    tmp_path: Path, paging: PagingServices, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key_file = tmp_path / "opsgenie.key"
    key_file.write_text(OPSGENIE_KEY + "\n")
    clock = ManualClock()
    genie = {
        "type": "opsgenie",
        "name": "genie",
        "api_key": {"file": str(key_file)},
        "api_url": paging.opsgenie_url,
        "tags": ["hall-a"],
    }
    alerts = service(tmp_path, clock, genie, links=LINKS)
    try:
        alerts.process([temp(33.0, clock)])
        incident = incident_of(alerts)
        await paging.wait_for("opsgenie", 1)
        alerts.acknowledge(incident, "alice")
        clock.advance(600)
        alerts.process([temp(20.0, clock)])
        create, ack, close = await paging.wait_for("opsgenie", 3)
    finally:
        await alerts.aclose()
    assert paging.problems == []
    alias = f"dcim-{incident}"
    assert (create.path, ack.path, close.path) == (
        "/opsgenie/v2/alerts",
        f"/opsgenie/v2/alerts/{alias}/acknowledge?identifierType=alias",
        f"/opsgenie/v2/alerts/{alias}/close?identifierType=alias",
    )
    body = create.body
    assert (body["alias"], body["priority"], body["entity"]) == (alias, "P1", "env-1")
    assert body["details"]["runbook_url"] == RUNBOOK
    assert f"Runbook: {RUNBOOK}" in body["description"]
    assert {"dcim", "critical", "site:par1", "hall-a"} <= set(body["tags"])
    assert ack.body["user"] == "alice"
    assert "10 min" in close.body["note"]
    alert = paging.opsgenie_alerts[alias]
    assert (alert["status"], alert["acknowledged"], alert["count"]) == ("closed", True, 1)
    assert OPSGENIE_KEY not in caplog.text


async def test_a_throttled_page_waits_as_long_as_the_service_asks_then_goes_out(
    tmp_path: Path, paging: PagingServices
) -> None:
    # PagerDuty answers 429 when events arrive too fast; Retry-After says when to come back
    throttled = '{"status":"throttle event","message":"Requests for this service are arriving too quickly."}'
    paging.fail_next["pagerduty"] = [(429, throttled, {"Retry-After": "1"})]
    clock = ManualClock()
    pager = {
        "type": "pagerduty",
        "name": "pager",
        "routing_key": ROUTING_KEY,
        "url": paging.pagerduty_url,
    }
    # backoff from 0.02 s: the header must win (within the longest backoff, 5 s here)
    alerts = service(tmp_path, clock, pager, retry_s=(0.02, 5.0))
    try:
        alerts.process([temp(33.0, clock)])
        first, second = await paging.wait_for("pagerduty", 2)
    finally:
        await alerts.aclose()
    assert second.at - first.at >= 0.95
    assert second.body == first.body  # the same event again, nothing lost
    assert list(paging.pagerduty_alerts.values()) == ["triggered"]


async def test_refusals_are_retried_and_reported_without_the_credentials(
    tmp_path: Path, paging: PagingServices, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = ManualClock()
    revoked = paging.slack_url.replace("s3cr3t", "r3v0k3d")  # Slack: 404 no_service
    wrong_key = "wrong-" + OPSGENIE_KEY
    # a relay that echoes what it was sent in its error page must not leak the key either
    echo = f'{{"status":"invalid event","errors":["Invalid routing key {ROUTING_KEY}"]}}'
    paging.fail_next["pagerduty"] = [(400, echo, {})] * 3
    channels: list[dict[str, Any]] = [
        {"type": "slack", "name": "chat", "url": revoked},
        {"type": "opsgenie", "name": "genie", "api_key": wrong_key, "api_url": paging.opsgenie_url},
        {
            "type": "pagerduty",
            "name": "pager",
            "routing_key": ROUTING_KEY,
            "url": paging.pagerduty_url,
        },
        {"type": "teams", "name": "noc", "url": paging.teams_url},
    ]
    alerts = service(tmp_path, clock, *channels)
    try:
        alerts.process([temp(33.0, clock)])
        # the working channel hears that the other three fail, and that the pager is back
        # once the relay lets the page through (its fourth try)
        messages = await paging.wait_for("teams", 5)
        assert alerts.store.pending("chat")  # kept for when the channel works again
        failing = dict(alerts.dispatcher.failing)
        inlet = next(i.id for i in alerts.store.recent() if i.rule == "inlet")
    finally:
        await alerts.aclose()
    headings = sorted(m.body["attachments"][0]["content"]["body"][0]["text"] for m in messages)
    assert headings == [
        *["FIRING: Notification channel failing"] * 3,
        "FIRING: inlet",
        "RESOLVED: Notification channel failing",
    ]
    assert "HTTP 404: no_service" in failing["chat"]
    assert "HTTP 422" in failing["genie"]
    assert "Invalid routing key <secret>" in caplog.text  # pager failed, then recovered
    assert set(failing) == {"chat", "genie"}
    everything = caplog.text + repr(failing)
    for secret in ("r3v0k3d", wrong_key, ROUTING_KEY):
        assert secret not in everything
    assert paging.pagerduty_alerts[f"dcim-{inlet}"] == "triggered"  # the page got through
