"""Prometheus alert rules: promtool check/test, conventions (severity, annotations, runbooks,
documented thresholds, unit tests for every alert), and the rules evaluated by a real
Prometheus against `citrix-cloud-exporter --demo`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e import Prometheus, exporter_process, wait_until
from tests.helpers import require_binary
from tests.test_dashboards import METRICS, metric_names, selectors

REPO = Path(__file__).resolve().parent.parent
RULES_DIR = REPO / "deploy" / "prometheus"
RULES = RULES_DIR / "citrix-cloud-exporter.rules.yml"
UNIT_TESTS = sorted((RULES_DIR / "tests").glob("*.yml"))
RUNBOOK = RULES_DIR.parent.parent / "README.md"
RUNBOOK_BASE = "https://github.com/citrix-cloud-exporter/citrix-cloud-exporter/blob/main/README.md"
SEVERITIES = {"critical", "warning", "info"}
# The alerts the rules must define (the list); a rule added or dropped fails the test.
EXPECTED_ALERTS = {
    "CitrixLicensesOverage": {"warning"},
    "CitrixLicensesLow": {"warning"},
    "CitrixLicensesExpiring": {"warning", "critical"},
    "CitrixCollectorDown": {"warning"},
    "CitrixDataStale": {"warning"},
    "CitrixTokenRequestsFailing": {"warning"},
    "CitrixUpstreamThrottled": {"info"},
    "CitrixMachinesUnregistered": {"warning"},
    "CitrixConnectionFailureSpike": {"warning"},
    "CitrixLicenseServerNotPhoningHome": {"warning"},
    "CitrixLicenseServerLicensesExpiring": {"warning"},
    "CitrixPartnerCustomerOverage": {"warning"},
}


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


# -- promtool ------------------------------------------------------------------------------------


def test_promtool_check_rules():
    promtool = require_binary("promtool")
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout, result.stdout


def test_promtool_unit_tests():
    promtool = require_binary("promtool")
    assert UNIT_TESTS, "no unit tests in deploy/prometheus/tests/"
    result = run(promtool, "test", "rules", *map(str, UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


# -- conventions ----------------------------------------------------------------------------------


def test_the_expected_alerts_with_their_severities():
    found: dict[str, set[str]] = {}
    for rule in alert_rules():
        found.setdefault(rule["alert"], set()).add(rule["labels"]["severity"])
    assert found == EXPECTED_ALERTS


def test_every_alert_has_severity_annotations_and_runbook():
    headings = {
        github_anchor(line.lstrip("#"))
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("#")
    }
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert rule.get("for"), f"{name}: no `for`"
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        assert annotations["summary"].strip(), name
        assert "$labels.customer_id" in annotations["description"], name
        # The measured value: $value, or a queried one where $value says nothing (citrix_up 0).
        assert re.search(r"\$value|\| value\b", annotations["description"]), name
        if "product" in _labels_of(rule["expr"]):
            assert "$labels.product" in annotations["description"], name
        anchor = f"runbook-{name.lower()}"
        assert annotations["runbook_url"] == f"{RUNBOOK_BASE}#{anchor}", name
        assert anchor in headings, f"README.md has no runbook section for {name}"


def test_runbook_internal_links_resolve():
    text = RUNBOOK.read_text()
    headings = {
        github_anchor(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")
    }
    for anchor in re.findall(r"\]\(#([\w-]+)\)", text):
        assert anchor in headings, anchor


def test_thresholds_are_listed_at_the_top():
    """The header comment names every alert, and each rule marks its tunable numbers."""
    header = RULES.read_text().split("\ngroups:")[0]
    for rule in alert_rules():
        assert rule["alert"] in header, f"{rule['alert']} missing from the threshold list"
        assert "# THRESHOLD" in _raw_rule(rule), f"{rule['alert']}: no `# THRESHOLD` marker"


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    firing: set[tuple[str, str]] = set()
    quiet: set[str] = set()
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                name = check["alertname"]
                if not check.get("exp_alerts"):
                    quiet.add(name)
                for alert in check.get("exp_alerts") or []:
                    firing.add((name, alert["exp_labels"]["severity"]))
                    # Exact annotations, not just labels.
                    assert set(alert["exp_annotations"]) == {
                        "summary", "description", "runbook_url",
                    }, (path.name, name)  # fmt: skip
    for name, severities in EXPECTED_ALERTS.items():
        assert name in quiet, f"no unit test where {name} does not fire"
        for severity in severities:
            assert (name, severity) in firing, f"no unit test where {name} fires ({severity})"


def test_rules_use_contract_metrics_and_labels():
    for rule in alert_rules():
        for metric in metric_names(rule["expr"]):
            assert metric in METRICS, f"{rule['alert']}: unknown metric {metric}"
        for metric, matchers in selectors(rule["expr"]):
            assert set(matchers) <= METRICS[metric], f"{rule['alert']}: {metric}{matchers}"


def _labels_of(expr: str) -> set[str]:
    return {label for metric in metric_names(expr) for label in METRICS.get(metric, set())}


def _raw_rule(rule: dict[str, Any]) -> str:
    """The rule's source text, from `- alert: NAME` to the next rule (YAML drops comments)."""
    text = RULES.read_text()
    start = text.index(f"- alert: {rule['alert']}")
    end = text.find("- alert:", start + 1)
    return text[start : end if end > 0 else len(text)]


# -- against a real Prometheus --------------------------------------------------------------------


async def test_rules_evaluate_against_the_demo(tmp_path):
    """Real data: globex-demo is in overage, initech-demo's licenses expire in 20 days, acme-demo
    is healthy. Pending alerts (their `for` has not elapsed) show that each expression selects
    exactly the right customers with the right labels."""
    prometheus_bin = require_binary("prometheus")
    exporter, url = await exporter_process(tmp_path, "--demo")
    prometheus = Prometheus(
        prometheus_bin,
        tmp_path,
        f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {RULES}
scrape_configs:
  - job_name: citrix-cloud
    static_configs:
      - targets: ['{url.removeprefix("http://")}']
""",
    )
    expected = {
        ("CitrixLicensesOverage", "warning", "globex-demo", "XenDesktop", "XAXDFull"),
        ("CitrixLicensesExpiring", "warning", "initech-demo", "XenDesktop", "XAXDFull"),
    }
    try:
        await prometheus.start()

        async def licensing_alerts() -> set[tuple[str, ...]] | None:
            result = await prometheus.query('ALERTS{alertname=~"CitrixLicenses.*"}')
            found = {
                tuple(r["metric"].get(k, "") for k in
                      ("alertname", "severity", "customer_id", "product", "edition"))
                for r in result
            }  # fmt: skip
            return found if found >= expected else None

        found = await wait_until(licensing_alerts, 30, prometheus.process)
        assert found == expected
        states = await prometheus.query('ALERTS{alertname=~"CitrixLicenses.*"}')
        assert {r["metric"]["alertstate"] for r in states} == {"pending"}
        # Licensing collectors are up and fresh: no exporter alert for them.
        health = await prometheus.query(
            'ALERTS{alertname=~"CitrixDataStale|CitrixTokenRequestsFailing|'
            'CitrixUpstreamThrottled"} or ALERTS{alertname="CitrixCollectorDown",'
            'collector="licensing"}'
        )
        assert health == []
    finally:
        await prometheus.stop()
        assert await exporter.stop() == 0


@pytest.mark.parametrize("path", UNIT_TESTS, ids=lambda p: p.name)
def test_unit_test_files_point_at_the_rules(path: Path):
    case = yaml.safe_load(path.read_text())
    assert [(path.parent / f).resolve() for f in case["rule_files"]] == [RULES.resolve()]
