"""The chart's alerts, checked and unit-tested by the real promtool (built from Prometheus' Go
module): every alert fires in alerts_test.yaml, and resolves."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from tests.monitoring.chart import promtool, rules_file

HERE = Path(__file__).parent


def test_the_rules_pass_promtool_check(tmp_path: Path) -> None:
    result = promtool("check", "rules", str(rules_file(tmp_path)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


def test_every_alert_fires_and_resolves_in_promtool_unit_tests(tmp_path: Path) -> None:
    rules = rules_file(tmp_path)
    shutil.copy(HERE / "alerts_test.yaml", tmp_path / "alerts_test.yaml")
    result = promtool("test", "rules", str(tmp_path / "alerts_test.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    # Each alert of the chart is expected to fire somewhere, and to be quiet somewhere else.
    alerts = {r["alert"] for g in yaml.safe_load(rules.read_text())["groups"] for r in g["rules"]}
    cases = [
        case
        for test in yaml.safe_load((HERE / "alerts_test.yaml").read_text())["tests"]
        for case in test["alert_rule_test"]
    ]
    fired = {case["alertname"] for case in cases if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert fired == alerts
    assert quiet == alerts


def test_every_alert_links_its_runbook_section(tmp_path: Path) -> None:
    docs = (HERE.parent.parent / "docs" / "operations" / "alerts.md").read_text()
    rules = yaml.safe_load(rules_file(tmp_path).read_text())
    for rule in rules["groups"][0]["rules"]:
        anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
        assert anchor == rule["alert"].lower()
        assert f"## {rule['alert']}" in docs, f"docs/operations/alerts.md lacks {rule['alert']}"
        assert {"summary", "description"} <= set(rule["annotations"])
        assert rule["labels"]["severity"] in ("warning", "critical")


def test_the_unit_tests_catch_a_broken_rule(tmp_path: Path) -> None:
    """A rule that no longer fires for the first failed run fails its promtool test."""
    rules = rules_file(tmp_path)
    loaded = yaml.safe_load(rules.read_text())
    (rule,) = [r for r in loaded["groups"][0]["rules"] if r["alert"] == "AksRunCommandRunsFailing"]
    # "and" instead of "or": a series born with the first failure no longer counts.
    assert "\n  or (" in rule["expr"]
    rule["expr"] = rule["expr"].replace("\n  or (", "\n  and (")
    rules.write_text(yaml.safe_dump(loaded, sort_keys=False))
    shutil.copy(HERE / "alerts_test.yaml", tmp_path / "alerts_test.yaml")
    result = promtool("test", "rules", str(tmp_path / "alerts_test.yaml"))
    assert result.returncode != 0
    assert "AksRunCommandRunsFailing" in result.stdout + result.stderr
