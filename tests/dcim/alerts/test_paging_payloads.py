"""The payloads each paging channel builds stay inside the documented limits whatever the
alert says (huge summaries, emoji, many labels), and the recording servers' checks do
reject what the services refuse (so a passing channel test means something)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dcim.alerts.config import (
    AlertLinks,
    OpsgenieChannel,
    PagerDutyChannel,
    SlackChannel,
    TeamsChannel,
)
from dcim.alerts.model import Notification, Phase, Severity
from dcim.alerts.notify.opsgenie import OpsgenieNotifier
from dcim.alerts.notify.pagerduty import PagerDutyNotifier
from dcim.alerts.notify.slack import SlackNotifier
from dcim.alerts.notify.teams import TeamsNotifier
from dcim.errors import ConfigError
from dcim.inventory import parse_config
from tests.support.paging_services import (
    OPSGENIE_KEY,
    ROUTING_KEY,
    opsgenie_action_problems,
    opsgenie_create_problems,
    pagerduty_problems,
    slack_problems,
    teams_problems,
)

LINKS = AlertLinks(
    runbook_base_url="https://git.example.org/dcim/blob/main/",
    grafana_url="https://grafana.example.org",
    board_url="https://noc.example.org/board",
)
HOOK = "https://hooks.example.org/services/T/B/X"


def huge(event: str) -> Notification:
    """An alert at the edge: 20,000-character summary with emoji, 40 labels, long names."""
    labels = {f"label{i:02d}": "🔥" * 60 + "x" * 300 for i in range(40)}
    labels |= {"site": "s" * 200, "room": "r" * 200, "rack": "k" * 200, "device": "d" * 600}
    resolved = event == "resolved"
    return Notification(
        event=event,
        at=10_000.0,
        incident_id="f" * 12,
        rule="very.long." + "x" * 70,
        rule_name="🔥 " + "Rule name " * 40,
        key="device=" + "d" * 600,
        severity=Severity.CRITICAL,
        phase=Phase.RESOLVED if resolved else Phase.FIRING,
        summary=("Temperature <!channel> & 🔥 " * 800)[:20_000],
        labels=labels,
        started_at=0.0,
        fired_at=60.0,
        resolved_at=10_000.0 if resolved else None,
        acknowledged_by="a" * 300 if event == "acknowledged" else None,
        fire_alarm=True,
        children=12,
        runbook_url="docs/runbooks.md#" + "a" * 1000,
    )


EVENTS = ["firing", "escalated", "acknowledged", "resolved"]


@pytest.mark.parametrize("event", EVENTS)
def test_slack_message_stays_inside_block_kit_limits(event: str) -> None:
    notifier = SlackNotifier(SlackChannel(type="slack", name="chat", url=HOOK), LINKS)
    assert slack_problems(notifier.message(huge(event))) == []


@pytest.mark.parametrize("event", EVENTS)
def test_teams_message_stays_under_28_kb(event: str) -> None:
    notifier = TeamsNotifier(TeamsChannel(type="teams", name="noc", url=HOOK), LINKS)
    message = notifier.message(huge(event))
    raw = json.dumps(message, ensure_ascii=False).encode()
    assert teams_problems(raw, message) == []
    assert len(raw) <= 28_000


@pytest.mark.parametrize("event", EVENTS)
def test_pagerduty_event_stays_inside_the_events_api_limits(event: str) -> None:
    channel = PagerDutyChannel(type="pagerduty", name="pager", routing_key=ROUTING_KEY)
    body = PagerDutyNotifier(channel, LINKS).event(huge(event))
    assert pagerduty_problems(json.dumps(body).encode(), body) == []
    expected = {"acknowledged": "acknowledge", "resolved": "resolve"}.get(event, "trigger")
    assert body["event_action"] == expected


@pytest.mark.parametrize("event", EVENTS)
def test_opsgenie_request_stays_inside_the_alert_api_limits(event: str) -> None:
    channel = OpsgenieChannel(type="opsgenie", name="genie", api_key=OPSGENIE_KEY)
    url, body = OpsgenieNotifier(channel, LINKS).request(huge(event))
    if event in ("acknowledged", "resolved"):
        assert url.endswith("?identifierType=alias")
        assert opsgenie_action_problems(body, "alias") == []
    else:
        assert url == "https://api.opsgenie.com/v2/alerts"
        assert opsgenie_create_problems(body) == []
        details = body["details"]
        assert isinstance(details, dict)
        assert list(details)[:3] == ["runbook_url", "dashboard_url", "board_url"]


def test_eu_regions_have_their_own_endpoints() -> None:
    pager = PagerDutyChannel(type="pagerduty", name="p", routing_key=ROUTING_KEY, region="eu")
    genie = OpsgenieChannel(type="opsgenie", name="g", api_key=OPSGENIE_KEY, region="eu")
    assert pager.endpoint == "https://events.eu.pagerduty.com/v2/enqueue"
    assert genie.base_url == "https://api.eu.opsgenie.com"


# --- the checks catch what the services refuse --------------------------------------------


def test_slack_check_rejects_what_slack_refuses() -> None:
    header = {"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}
    assert slack_problems({"text": "t", "blocks": [header]}) == ["blocks[0].text longer than 150"]
    assert slack_problems({}) == ["no_text"]
    markdown_header = {"type": "header", "text": {"type": "mrkdwn", "text": "x"}}
    assert slack_problems({"text": "t", "blocks": [markdown_header]})
    button = {"type": "button", "text": {"type": "plain_text", "text": "Go"}, "url": "docs/x.md"}
    assert slack_problems({"text": "t", "blocks": [{"type": "actions", "elements": [button]}]})
    assert slack_problems({"text": "t", "blocks": [{"type": "divider"}] * 51})


def test_teams_check_rejects_what_teams_refuses() -> None:
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [{"type": "TextBlock", "text": "x"}],
        "actions": [{"type": "Action.Submit", "title": "Ack"}],
    }
    message = {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }
    assert teams_problems(b"{}", message) == [
        "attachments[0].actions[0]: 'Action.Submit' not supported"
    ]
    legacy = {"@type": "MessageCard", "text": "x"}
    assert teams_problems(b"{}", legacy) == ['type must be "message"']
    assert "message larger than 28 KB" in teams_problems(b"x" * 30_000, message)


def test_pagerduty_check_rejects_what_the_events_api_refuses() -> None:
    good = {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "payload": {"summary": "s", "source": "ups-1", "severity": "critical"},
    }
    assert pagerduty_problems(b"{}", good) == []
    too_long = good | {"payload": good["payload"] | {"summary": "x" * 1025}}  # type: ignore[operator]
    assert pagerduty_problems(b"{}", too_long) == ["payload.summary longer than 1024"]
    bad_severity = good | {"payload": good["payload"] | {"severity": "high"}}  # type: ignore[operator]
    assert pagerduty_problems(b"{}", bad_severity)
    assert pagerduty_problems(b"{}", good | {"event_action": "resolve"}) == [
        "resolve needs a dedup_key"
    ]
    assert pagerduty_problems(b"{}", good | {"routing_key": "short"})


def test_opsgenie_check_rejects_what_the_alert_api_refuses() -> None:
    assert opsgenie_create_problems({"message": "x" * 131}) == ["message longer than 130"]
    assert opsgenie_create_problems({"message": "m", "priority": "P0"})
    assert opsgenie_create_problems({"message": "m", "details": {"n": 1}})
    assert opsgenie_create_problems({"message": "m", "tags": ["t"] * 21})
    assert opsgenie_action_problems({}, "name") == ["identifierType 'name' not in id, tiny, alias"]


# --- configuration mistakes: said clearly, without the secret ---------------------------------


@pytest.mark.parametrize(
    ("channel", "problem"),
    [
        (
            {"type": "slack", "url": "http://hooks.slack.com/services/T/B/s3cret"},
            "must be an https:// URL",
        ),
        ({"type": "teams", "url": "not a url s3cret"}, "must be an https:// URL"),
        ({"type": "pagerduty", "routing_key": "s3cret"}, "32-character integration key (got 6"),
        (
            {"type": "pagerduty", "routing_key": ROUTING_KEY, "url": "http://relay.example/x"},
            "https://",
        ),
        ({"type": "opsgenie", "api_key": "s3cret", "tags": ["t" * 51]}, "at most 50 characters"),
        ({"type": "opsgenie", "api_key": "s3cret", "priorities": {"critical": "P0"}}, "'P1'"),
    ],
)
def test_channel_config_mistakes_are_named_without_the_secret(
    channel: dict[str, Any], problem: str
) -> None:
    text = json.dumps({"sites": [{"id": "s1"}], "alerts": {"channels": [{"name": "c", **channel}]}})
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "dcim.yaml")  # JSON is YAML: how `dcim validate` reports it
    (message,) = caught.value.problems
    assert message.startswith("alerts.channels[0]")
    assert problem in message
    assert "s3cret" not in message
