"""Rule files are data: validated with line numbers; shipped packs load and cite sources."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dcim.alerts.config import DEFAULT_PACKS
from dcim.alerts.kinds.base import RuleBase
from dcim.alerts.rules import RuleError, available_packs, load_pack, merge_rules, parse_rules
from dcim.alerts.storms import DEGRADED_RULE, NOTIFY_FAILED_RULE
from dcim.vocabulary import load_vocabulary

METRIC_FIELDS = ("metric", "ratio_to", "capacity_metric", "smoke_metric", "temp_metric")


def _metrics(rule: RuleBase) -> list[str]:
    names = [getattr(rule, name, None) for name in METRIC_FIELDS]
    for term in ("numerator", "denominator"):
        if (value := getattr(rule, term, None)) is not None:
            names.append(value.metric)
    for name in ("runtime_metric", "source_metric", "mains_metric", "state_metric"):
        names.append(getattr(rule, name, None))
    names.extend(getattr(rule, "metrics", None) or [])  # dropout: several per rule
    return [n for n in names if isinstance(n, str)]


@pytest.mark.parametrize("pack", available_packs())
def test_shipped_pack_loads_cites_sources_and_speaks_the_vocabulary(pack: str) -> None:
    rules = load_pack(pack)
    assert rules, pack
    vocabulary = load_vocabulary()
    for rule in rules:
        assert rule.source, f"{pack}: {rule.id} has no source"
        # a REFERENCE key, a site parameter, or an operational choice that says why
        assert re.search(r"\[[A-Z]+\d*\]|site parameter|operational choice: \w", rule.source), (
            rule.id
        )
        for metric in _metrics(rule):
            vocabulary.get(metric)  # raises for a name not in the vocabulary


def test_default_packs_exist_and_have_unique_ids() -> None:
    assert set(DEFAULT_PACKS) <= set(available_packs())
    rules = merge_rules(load_pack(name) for name in DEFAULT_PACKS)
    assert len({rule.id for rule in rules}) == len(rules) == 41


def test_a_site_file_overrides_a_pack_rule_by_id() -> None:
    site = parse_rules(
        """
rules:
  - id: ups.runtime_vs_generator
    kind: ups_runtime
    generator_start_s: 15
  - id: env.door_open
    kind: state
    metric: sensor.door_open
    states: {"true": warning}
    enabled: false
""",
        "site.yaml",
    )
    merged = {
        rule.id: rule
        for rule in merge_rules([load_pack("ups"), load_pack("fire-environment"), site])
    }
    assert getattr(merged["ups.runtime_vs_generator"], "generator_start_s", None) == 15
    assert "env.door_open" not in merged


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "rules:\n  - id: t\n    kind: threshold\n    metric: x\n    levels: {high_warning: 30, high_critical: 20}\n",
            "rules[0].levels: high_warning (30) must be below high_critical (20) (line 5)",
        ),
        (
            "rules:\n  - id: ok\n    kind: state\n    metric: m\n    states: {a: warning}\n  - id: bad\n    kind: teleport\n",
            "rules[1]: Input tag 'teleport' found using 'kind'",
        ),
        (
            "rules:\n  - id: s\n    kind: state\n    metric: m\n    states: {a: loud}\n",
            "rules[0].states.a: Input should be 'info', 'warning' or 'critical' (line 5)",
        ),
        (
            "rules:\n  - id: f\n    kind: fire_risk\n    fire_alarm: false\n",
            "a fire_risk rule is a fire alarm",
        ),
        ("rules:\n  - id: a\n    kind: [\n", "invalid YAML"),
        (
            "rules:\n  - {id: d, kind: state, metric: m, states: {a: info}}\n  - {id: d, kind: state, metric: m, states: {a: info}}\n",
            "rule ids used twice: d",
        ),
    ],
)
def test_bad_rule_files_name_the_problem_and_line(text: str, expected: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rules(text, "rules.yaml")
    assert expected in str(caught.value)
    assert str(caught.value).startswith("rules.yaml")


def _runbook_anchors() -> set[str]:
    root = Path(__file__).resolve().parents[3]
    text = (root / "docs" / "runbooks.md").read_text()
    return set(re.findall(r'<a id="([^"]+)"></a>', text))


@pytest.mark.parametrize("pack", available_packs())
def test_every_shipped_rule_links_its_section_of_the_runbooks(pack: str) -> None:
    anchors = _runbook_anchors()
    for rule in load_pack(pack):
        page, _, anchor = rule.runbook_url.partition("#")
        assert page == "docs/runbooks.md", f"{pack}: {rule.id} has no runbook"
        assert anchor in anchors, f"{pack}: {rule.id} links #{anchor}, not in docs/runbooks.md"


def test_the_monitors_own_alerts_have_runbooks_too() -> None:
    anchors = _runbook_anchors()
    for rule in (DEGRADED_RULE, NOTIFY_FAILED_RULE):
        assert rule.runbook.partition("#")[2] in anchors, rule.id


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("docs/runbooks.md#ups-load", True),
        ("https://wiki.example/ups load", False),
        ("https://wiki.example/ups#load", True),
        ("javascript:alert(1)", False),
        ("file:///etc/passwd", False),
    ],
)
def test_runbook_url_is_a_web_link_or_a_relative_path(value: str, ok: bool) -> None:
    text = f"rules:\n  - {{id: r, kind: stale, runbook_url: {value!r}}}\n"
    if ok:
        assert parse_rules(text, "site.yaml")[0].runbook_url == value
    else:
        with pytest.raises(
            RuleError, match=r"rules\[0\]\.runbook_url: runbook_url must be an http"
        ):
            parse_rules(text, "site.yaml")
