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

from tests.support.helpers import require_binary
from tests.support.markdown import BLOB_URL, anchors
from tests.support.metric_contract import METRICS, metric_names, selectors
from tests.support.processes import Prometheus, exporter_process, scrape_config, wait_until
from tools import rules as generator

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "deploy" / "prometheus"
RULES = RULES_DIR / "citrix-cloud-exporter.rules.yml"
UNIT_TESTS = sorted((RULES_DIR / "tests").glob("*.yml"))
RUNBOOK = REPO / "docs" / "runbooks.md"
RUNBOOK_BASE = f"{BLOB_URL}/docs/runbooks.md"
SEVERITIES = {"critical", "warning", "info"}
# The alerts the rules must define (the list); a rule added or dropped fails the test.
EXPECTED_ALERTS = {
    "CitrixLicensesOverage": {"warning"},
    "CitrixLicensesLow": {"warning"},
    "CitrixLicensesExpiring": {"warning", "critical"},
    "CitrixLicensesOverageForecast": {"warning"},
    "CitrixExporterDown": {"critical"},
    "CitrixExporterAbsent": {"critical"},
    "CitrixCollectorDown": {"warning"},
    "CitrixDataStale": {"warning"},
    "CitrixTokenRequestsFailing": {"warning"},
    "CitrixUpstreamThrottled": {"info"},
    "CitrixExporterReloadFailing": {"warning"},
    "CitrixUpstreamDataIssues": {"warning"},
    "CitrixMachinesUnregistered": {"warning"},
    "CitrixDeliveryGroupDown": {"critical"},
    "CitrixConnectionFailureSpike": {"warning"},
    "CitrixMachinesFaulted": {"warning"},
    "CitrixLogonSlow": {"warning"},
    "CitrixLicenseServerNotPhoningHome": {"warning"},
    "CitrixLicenseServerLicensesExpiring": {"warning"},
    "CitrixPartnerCustomerOverage": {"warning"},
    "CitrixConcurrentLicensesNearLimit": {"warning"},
}

# Alerts about one exporter process rather than a customer: they name the instance instead.
PER_EXPORTER = {"CitrixExporterReloadFailing"}


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


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


# -- the generator (tools/rules.py) ---------------------------------------------------------------


def test_committed_rules_are_the_generators_defaults():
    assert RULES.read_text() == generator.render(), "run: python -m tools.rules"
    assert generator.main(["--check"]) == 0


def test_rules_with_other_parameters_pass_promtool(tmp_path):
    """Every threshold and `for` moved, another job selector and runbook URL: promtool accepts
    the result, and each value lands where it should (nothing else is hard-coded)."""
    promtool = require_binary("promtool")
    values = {
        name: ("2h" if param.is_duration else f"{float(param.default) + 0.25:g}")
        for name, param in generator.PARAMS.items()
    }
    out = tmp_path / "custom.rules.yml"
    argv = [f"--set={name}={value}" for name, value in values.items()]
    runbooks = "https://wiki.example.com/citrix/runbooks"
    argv += [
        "--out",
        str(out),
        '--job-selector=job="citrix", env="prod"',
        f"--runbook-url={runbooks}",
    ]
    assert generator.main(argv) == 0
    result = run(promtool, "check", "rules", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    custom = [r for g in yaml.safe_load(out.read_text())["groups"] for r in g["rules"]]
    assert {r["for"] for r in custom} == {"2h"}
    assert {r["annotations"]["runbook_url"] for r in custom} == {
        f"{runbooks}#{r['alert'].lower()}" for r in custom
    }
    text = out.read_text()
    for name, param in generator.PARAMS.items():
        if not param.is_duration:
            assert values[name] in text, name
    assert "[[" not in text


def test_parameters_and_defaults_are_documented():
    text = RUNBOOK.read_text()
    for name, param in generator.PARAMS.items():
        assert f"| `{name}` | `{param.default}` | {param.help} |" in text, name
    assert f"(default `{generator.DEFAULT_JOB_SELECTOR}`" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set=low_share=ten"], "low_share: 'ten' is not a decimal number"),
        (["--set=low_for=soon"], "low_for: 'soon' is not a duration"),
        (["--set=nonsense=1"], "unknown parameter(s): nonsense"),
        (["--job-selector=citrix"], "job selector: 'citrix'"),
        (["--runbook-url=docs/runbooks.md"], "runbook URL"),
    ],
)
def test_generator_rejects_bad_parameters(argv, message, tmp_path, capsys):
    assert generator.main([*argv, "--out", str(tmp_path / "x.yml")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.yml").exists()


# -- conventions ----------------------------------------------------------------------------------


def test_the_expected_alerts_with_their_severities():
    found: dict[str, set[str]] = {}
    for rule in alert_rules():
        found.setdefault(rule["alert"], set()).add(rule["labels"]["severity"])
    assert found == EXPECTED_ALERTS


def test_every_alert_has_severity_annotations_and_runbook():
    headings = anchors(RUNBOOK.read_text())
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert rule.get("for"), f"{name}: no `for`"
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        assert annotations["summary"].strip(), name
        if "customer_id" in _labels_of(rule["expr"]):  # not the exporter-wide alerts
            assert "$labels.customer_id" in annotations["description"], name
            # The measured value: $value, or a queried one where $value says nothing.
            assert re.search(r"\$value|\| value\b", annotations["description"]), name
        if "product" in _labels_of(rule["expr"]):
            assert "$labels.product" in annotations["description"], name
        anchor = name.lower()
        assert annotations["runbook_url"] == f"{RUNBOOK_BASE}#{anchor}", name
        assert anchor in headings, f"docs/runbooks.md has no runbook section for {name}"


def test_thresholds_are_listed_at_the_top():
    """The header comment names every alert, and each rule marks its tunable numbers."""
    header = RULES.read_text().split("\ngroups:")[0]
    for rule in alert_rules():
        assert rule["alert"] in header, f"{rule['alert']} missing from the threshold list"
        assert "# THRESHOLD" in _raw_rule(rule), f"{rule['alert']}: no `# THRESHOLD` marker"


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    firing, quiet = unit_test_files()
    for name, severities in EXPECTED_ALERTS.items():
        assert name in quiet, f"no unit test where {name} does not fire"
        for severity in severities:
            assert (name, severity) in firing, f"no unit test where {name} fires ({severity})"


def unit_test_files() -> tuple[dict[tuple[str, str], set[str]], dict[str, set[str]]]:
    """(alert, severity) -> the unit test files where it fires; alert -> those where it stays
    quiet. Every firing case checks exact annotations, not just labels."""
    firing: dict[tuple[str, str], set[str]] = {}
    quiet: dict[str, set[str]] = {}
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                name = check["alertname"]
                if not check.get("exp_alerts"):
                    quiet.setdefault(name, set()).add(path.name)
                for alert in check.get("exp_alerts") or []:
                    firing.setdefault((name, alert["exp_labels"]["severity"]), set()).add(path.name)
                    assert set(alert["exp_annotations"]) == {
                        "summary", "description", "runbook_url",
                    }, (path.name, name)  # fmt: skip
    return firing, quiet


def test_rules_use_contract_metrics_and_labels():
    for rule in alert_rules():
        for metric in metric_names(rule["expr"]):
            assert metric in METRICS, f"{rule['alert']}: unknown metric {metric}"
        for metric, matchers in selectors(rule["expr"]):
            # The contract leaves out job and instance, which only the job selector uses.
            labels = set(matchers) - {"job", "instance"}
            assert labels <= METRICS[metric], f"{rule['alert']}: {metric}{matchers}"


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
        scrape_config(url, rules=str(RULES)),
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


# -- thresholds: the header table, the markers and the boundary unit tests ------------------------

BOUNDARIES = RULES_DIR / "tests" / "boundaries.test.yml"
_COMPARISON = r"(?P<op>>=|<=|==|>|<)\s*(?P<num>\d+(?:\.\d+)?)"
_MARKED = re.compile(rf"^(?P<lead>\s*){_COMPARISON}(?P<rest>\s+# THRESHOLD.*)$")
_MARKED_FOR = re.compile(
    r"^(?P<lead>\s*for:\s*)(?P<num>\d+)(?P<unit>[smh])(?P<rest>\s+# THRESHOLD.*)$"
)
_WORDS = {"older than": ">", "more than": ">"}  # the header's words for an operator


def threshold_lines() -> list[tuple[int, str, str]]:
    """(line index, alert, line) of every `# THRESHOLD` line in the rule expressions."""
    lines = RULES.read_text().splitlines()
    found, alert = [], ""
    for index, line in enumerate(lines):
        name = re.match(r"\s*- alert:\s*(\w+)", line)
        if name:
            alert = name.group(1)
        if alert and "# THRESHOLD" in line:
            found.append((index, alert, line))
    return found


def header_table() -> dict[tuple[str, str], tuple[str, str]]:
    """(alert, severity) -> (what "fires when" says, the `for` column), from the header."""
    header = RULES.read_text().split("\ngroups:")[0].splitlines()
    start = next(i for i, line in enumerate(header) if line.startswith("#   ----"))
    rows: dict[tuple[str, str], tuple[str, str]] = {}
    key: tuple[str, str] | None = None
    alert = ""
    for line in header[start + 1 :]:
        if not line.startswith("#   "):
            break
        body = line[4:]
        match = re.match(r"(Citrix\w+)\s*(.*)$", body)
        if match:  # a new row; a long name puts its severity on the next line
            alert, body = match.group(1), match.group(2)
            key = None
            if not body:
                continue
        else:
            body = body.strip()
        severity = re.match(r"(critical|warning|info)\s+(.*)$", body.strip())
        if key is None and severity:
            key = (alert, severity.group(1))
            body = severity.group(2)
        assert key is not None, line
        text, for_ = rows.get(key, ("", ""))
        duration = re.search(r"\s{2,}(\d+[smhd])$", body)
        if duration:
            for_, body = duration.group(1), body[: duration.start()]
        rows[key] = (f"{text} {body.strip()}".strip(), for_)
    return rows


def header_comparisons(text: str) -> set[tuple[str, float]]:
    """The comparisons a "fires when" text states; `10 % (0.10)` reads as 0.10."""
    found = set()
    for words, op in _WORDS.items():
        text = text.replace(words, op)
    for match in re.finditer(rf"{_COMPARISON}(?:\s*%\s*\((?P<ratio>[\d.]+)\))?", text):
        found.add((match["op"], float(match["ratio"] or match["num"])))
    return found


def test_header_table_matches_the_rules():
    """The table operators read first says what the expressions do: each `# THRESHOLD` number,
    its comparison and each rule's `for` are in its alert's row, and every row is a rule."""
    table = header_table()
    rules = {(r["alert"], r["labels"]["severity"]): r for r in alert_rules()}
    assert set(table) == set(rules)
    for key, rule in rules.items():
        text, for_ = table[key]
        assert for_ == rule["for"], f"{key}: header says for {for_}, the rule {rule['for']}"
        stated = header_comparisons(text)
        raw = _raw_rule_at(rule)
        marked = {
            (m["op"], float(m["num"]))
            for m in map(_MARKED.match, raw.splitlines())
            if m is not None
        }
        assert marked <= stated, f"{key}: thresholds {marked - stated} not in the header: {text}"
        # What the header states beyond the markers must still be in the expression.
        expr = " ".join(rule["expr"].split())
        for op, num in stated - marked:
            literal = re.compile(rf"{re.escape(op)}\s*{num:g}(?![\d.])|{re.escape(op)}\s*{num}")
            assert literal.search(expr), (
                f"{key}: header states {op} {num:g}, the expression does not: {text}"
            )


def _raw_rule_at(rule: dict[str, Any]) -> str:
    """The source text of this very rule (alerts with two rules are told apart by severity)."""
    text = RULES.read_text()
    starts = [m.start() for m in re.finditer(rf"- alert: {rule['alert']}\n", text)]
    for start in starts:
        end = text.find("- alert:", start + 1)
        raw = text[start : end if end > 0 else len(text)]
        if re.search(rf"severity:\s*{rule['labels']['severity']}\b", raw):
            return raw
    raise AssertionError(f"no source for {rule['alert']}")


def test_warning_expiry_window_ends_where_critical_begins():
    expiring = [r for r in alert_rules() if r["alert"] == "CitrixLicensesExpiring"]
    bounds = {
        r["labels"]["severity"]: {
            (m["op"], float(m["num"]))
            for m in map(_MARKED.match, _raw_rule_at(r).splitlines())
            if m
        }
        for r in expiring
    }
    (low,) = [num for op, num in bounds["warning"] if op == ">="]
    assert bounds["critical"] == {("<", low)}


def _mutants(line: str) -> list[str]:
    """The threshold line moved one step up, one step down, and with its comparison's
    boundary flipped (`>` <-> `>=`)."""
    match = _MARKED_FOR.match(line)
    if match:
        num = int(match["num"])
        return [f"{match['lead']}{n}{match['unit']}{match['rest']}" for n in (num + 1, num - 1)]
    match = _MARKED.match(line)
    assert match, f"a `# THRESHOLD` line that is neither a comparison nor a `for`: {line!r}"
    num, op = match["num"], match["op"]
    step = 10 ** -len(num.split(".")[1]) if "." in num else 1
    flipped = {">": ">=", ">=": ">", "<": "<=", "<=": "<", "==": "!="}[op]
    return [
        f"{match['lead']}{op} {float(num) + step:g}{match['rest']}",
        f"{match['lead']}{op} {float(num) - step:g}{match['rest']}",
        f"{match['lead']}{flipped} {num}{match['rest']}",
    ]


def test_every_threshold_is_pinned_by_a_boundary_case(tmp_path):
    """Each `# THRESHOLD` moved one step either way, or with `>` and `>=` swapped, fails
    boundaries.test.yml: a threshold cannot change unnoticed. All mutants run in one promtool
    call, each against only its alert's cases."""
    promtool = require_binary("promtool")
    lines = RULES.read_text().splitlines()
    cases = yaml.safe_load(BOUNDARIES.read_text())
    files: dict[Path, str] = {}
    for index, alert, line in threshold_lines():
        groups = [
            group
            for group in cases["tests"]
            if any(check["alertname"] == alert for check in group["alert_rule_test"])
        ]
        assert groups, f"{alert}: no case in {BOUNDARIES.name}"
        for number, mutant in enumerate(_mutants(line)):
            rules = tmp_path / f"{alert}-{index}-{number}.rules.yml"
            rules.write_text("\n".join([*lines[:index], mutant, *lines[index + 1 :]]) + "\n")
            test = tmp_path / f"{alert}-{index}-{number}.test.yml"
            test.write_text(yaml.safe_dump({**cases, "rule_files": [rules.name], "tests": groups}))
            files[test] = f"{alert} line {index + 1}: {mutant.strip()}"
    result = run(promtool, "test", "rules", *map(str, files))
    # stdout: "Unit Testing:  FILE" then "SUCCESS" for a passing file (failures go to stderr).
    verdicts = {
        section.split()[0]: "SUCCESS" in section
        for section in result.stdout.split("Unit Testing:")[1:]
    }
    survivors = [label for path, label in files.items() if verdicts.get(str(path))]
    assert not survivors, f"threshold changes no boundary case notices: {survivors}"
    assert len(verdicts) == len(files), result.stdout[-2000:] + result.stderr[-2000:]
    # Every verdict is read under its file's name: a name that did not match would pass as no
    # survivor.
    assert set(verdicts) == set(map(str, files)), result.stdout[-2000:]


# -- docs/runbooks.md: which test fires each alert, which keeps it quiet ---------------------------

E2E_TESTS = (REPO / "tests" / "e2e" / "test_e2e_alerts.py", Path(__file__))
_TABLE_ROW = re.compile(r"^\| `(Citrix\w+)` \| (\w+) \| (.*) \| (.*) \| (.*) \|$")


def test_runbooks_say_which_test_fires_each_alert_and_which_keeps_it_quiet():
    text = RUNBOOK.read_text()
    section = text.split("## Each alert: the test that fires it, the test that keeps it quiet")[1]
    rows = {
        (m[1], m[2]): (m[3], m[4], m[5])
        for m in map(_TABLE_ROW.match, section.split("\n## ")[0].splitlines())
        if m
    }
    assert set(rows) == {(r["alert"], r["labels"]["severity"]) for r in alert_rules()}
    firing, quiet = unit_test_files()
    e2e = "\n".join(path.read_text() for path in E2E_TESTS)
    for (name, severity), (fires, stays_quiet, end_to_end) in rows.items():
        assert set(re.findall(r"`([\w.]+)`", fires)) == firing[(name, severity)], name
        assert set(re.findall(r"`([\w.]+)`", stays_quiet)) == quiet[name], name
        for test in re.findall(r"`(\w+)`", end_to_end):
            assert f"def {test}(" in e2e, f"{name}: no end-to-end test {test}"
