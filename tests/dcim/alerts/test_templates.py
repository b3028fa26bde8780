"""Message templates as data: shipped defaults for every channel, overrides checked by
`dcim validate` (syntax, unknown names, the sandbox, labels an alert may lack), and a
template that still fails on a real notification never holds the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dcim.alerts.config import AlertsConfig
from dcim.alerts.model import Notification, Phase, Severity
from dcim.alerts.notify.links import Links
from dcim.alerts.notify.templating import (
    PARTS,
    SAMPLES,
    Messages,
    check_templates,
    defaults,
    duration,
    fit,
    utf16_len,
)
from dcim.cli import main

ROOT = Path(__file__).resolve().parents[3]


def note(**extra: Any) -> Notification:
    fields: dict[str, Any] = {
        "event": "firing",
        "at": 100.0,
        "incident_id": "abc123",
        "rule": "ups.load",
        "rule_name": "UPS output load",
        "key": "device=ups-1",
        "severity": Severity.CRITICAL,
        "phase": Phase.FIRING,
        "summary": "UPS output load: ups.load_pct 93 % on device=ups-1 above 90",
        "labels": {"site": "par1", "room": "hall-a", "device": "ups-1"},
        "started_at": 0.0,
        "fired_at": 60.0,
        "resolved_at": None,
    }
    return Notification(**(fields | extra))


@pytest.mark.parametrize("channel_type", sorted(PARTS))
def test_shipped_templates_give_every_part_and_render_every_sample(channel_type: str) -> None:
    assert set(defaults(channel_type)) == set(PARTS[channel_type])
    check_templates(channel_type, "shipped", defaults(channel_type))
    messages = Messages(channel_type, "shipped")
    for _, notification, links in SAMPLES:
        for part, spec in PARTS[channel_type].items():
            text = messages.render(part, notification, links)
            assert text.strip(), (channel_type, part)
            assert spec.limit is None or utf16_len(text) <= spec.limit
            assert not spec.one_line or "\n" not in text


def test_email_keeps_its_subject_and_carries_the_links() -> None:
    messages = Messages("email", "mail")
    links = Links("https://docs.example/rb#ups-load", "https://grafana.example/d/x", "")
    n = note(event="escalated")
    assert messages.render("subject", n, links) == (
        "[CRITICAL] ESCALATED: UPS output load: ups.load_pct 93 % on device=ups-1 above 90"
    )
    body = messages.render("body", n, links)
    assert "runbook:   https://docs.example/rb#ups-load" in body
    assert "dashboard: https://grafana.example/d/x" in body
    assert "\nboard:" not in body  # no board configured: no empty line for it


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{{ summary ", "template 'title' of channel 'chat': line 1: unexpected end of template"),
        ("{{ sumary }}", "'sumary' is undefined"),
        ("{{ labels.rack }}", "use labels.get('name')"),  # a row-level alert has no rack
        ("{{ ''.__class__.__mro__ }}", "SecurityError"),
        ("{{ labels.clear() }}", "SecurityError"),  # immutable: a template changes nothing
    ],
)
def test_a_bad_override_is_refused_naming_channel_and_part(template: str, problem: str) -> None:
    with pytest.raises(ValueError, match="channel 'chat'") as caught:
        check_templates("slack", "chat", {"title": template})
    assert problem in str(caught.value)


def test_an_unknown_part_lists_the_parts_of_that_channel() -> None:
    with pytest.raises(
        ValueError, match=r"no template part subject for slack \(parts: text, title, body\)"
    ):
        check_templates("slack", "chat", {"subject": "x"})


def test_dcim_validate_reports_a_template_error_with_the_channel_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "body.j2"
    body.write_text("Alert {{ summary }}\n{% if fire_alarm %}FIRE\n")  # {% endif %} missing
    config = tmp_path / "dcim.yaml"
    config.write_text(
        f"""
sites:
  - id: par1
    rooms: [{{id: hall-a}}]
alerts:
  channels:
    - type: email
      name: oncall-mail
      host: smtp.example
      sender: dcim@example.org
      to: [noc@example.org]
      templates:
        subject: "{{{{ status }}}}: {{{{ summary }}}}"
        body: {{file: {body}}}
"""
    )
    assert main(["validate", str(config)]) == 2
    err = capsys.readouterr().err
    assert "template 'body' of channel 'oncall-mail'" in err
    assert "Unexpected end of template" in err
    assert "(line 7)" in err  # the channel's line in the config file

    body.write_text("Alert {{ summary }}\n{% if fire_alarm %}FIRE\n{% endif %}\n")
    assert main(["validate", str(config)]) == 0


def test_a_missing_template_file_is_named() -> None:
    with pytest.raises(ValueError, match=r"cannot read template file /nonexistent/body\.j2"):
        AlertsConfig.model_validate(
            {
                "channels": [
                    {
                        "type": "webhook",
                        "name": "hook",
                        "url": "https://hook.example",
                        "templates": {"message": {"file": "/nonexistent/body.j2"}},
                    }
                ]
            }
        )


def test_a_template_failing_on_a_real_alert_falls_back_to_the_shipped_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # renders for every validation sample, but not for this UPS's labels
    tricky = "{% if labels.get('device') == 'ups-1' %}{{ labels.phase }}{% endif %}{{ summary }}"
    check_templates("pagerduty", "pager", {"summary": tricky})
    messages = Messages("pagerduty", "pager", {"summary": tricky})
    text = messages.render("summary", note(), Links())
    assert (
        text
        == "UPS output load: ups.load_pct 93 % on device=ups-1 above 90 [par1 / hall-a / ups-1]"
    )
    assert "channel pager: template 'summary' failed for incident abc123" in caplog.text


def test_fit_cuts_by_utf16_units_and_marks_the_cut() -> None:
    assert fit("short", 130) == "short"
    cut = fit("🔥" * 100, 130)  # each emoji is two UTF-16 units
    assert utf16_len(cut) <= 130
    assert cut.endswith("…")
    assert cut == "🔥" * 64 + "…"


def test_durations_read_like_people_say_them() -> None:
    assert [duration(s) for s in (4, 600, 3600, 3900, 90000, 86400)] == [
        "4 s",
        "10 min",
        "1 h",
        "1 h 5 min",
        "1 d 1 h",
        "1 d",
    ]


def test_slack_escapes_what_would_become_a_mention_or_link() -> None:
    messages = Messages("slack", "chat")
    text = messages.render("text", note(summary="load <!channel> & more"), Links())
    assert "&lt;!channel&gt; &amp; more" in text


def test_the_readme_paging_example_validates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Paging: channels, links, message templates") :]
    example = section[
        section.index("```yaml\n") + 8 : section.index("```\n", section.index("```yaml"))
    ]
    monkeypatch.setenv("DCIM_PAGERDUTY_KEY", "k" * 32)
    monkeypatch.setenv("DCIM_SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/x")
    (tmp_path / "templates").mkdir()
    (tmp_path / "opsgenie-key").write_text("key\n")
    (tmp_path / "teams-workflow-url").write_text("https://prod.example.logic.azure.com/w?sig=x\n")
    (tmp_path / "templates" / "teams-body.j2").write_text("**{{ summary }}** at {{ where }}\n")
    config = tmp_path / "dcim.yaml"
    text = example.replace("/etc/dcim/", f"{tmp_path}/")
    config.write_text("sites: [{id: par1}]\n" + text)
    assert main(["validate", str(config)]) == 0
