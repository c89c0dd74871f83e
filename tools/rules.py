"""Generate deploy/prometheus/citrix-cloud-exporter.rules.yml from tools/alerts.py and a few
parameters, as the monitoring mixins do: the job selector, the runbook base URL, every
threshold and every `for` duration are settings, never edits of the output.

    python -m tools.rules                      # rewrite the committed rules (the defaults)
    python -m tools.rules --check              # exit 1 if the committed file is out of date
    python -m tools.rules --list               # the parameters and their defaults
    python -m tools.rules --out my.rules.yml --job-selector 'job="citrix"' \\
        --runbook-url https://wiki.example.com/citrix-runbooks --set low_share=0.20 \\
        --set overage_for=2h

tests/deploy/test_alert_rules.py fails when the committed file differs from the defaults'
output, and runs promtool on an output with other values. After changing the committed rules,
run `python deploy/kubernetes/generate.py` for the PrometheusRule copy.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .alerts import GROUPS, Alert

REPO = Path(__file__).resolve().parent.parent
RULES_FILE = REPO / "deploy" / "prometheus" / "citrix-cloud-exporter.rules.yml"
DEFAULT_JOB_SELECTOR = 'job="citrix-cloud-exporter"'
DEFAULT_RUNBOOK_URL = (
    "https://github.com/citrix-cloud-exporter/citrix-cloud-exporter/blob/main/docs/runbooks.md"
)


@dataclass(frozen=True)
class Param:
    """A threshold (a plain decimal number, as PromQL and the boundary tests read it) or a
    duration (a Prometheus duration such as 15m or 1h30m)."""

    default: str
    help: str

    @property
    def is_duration(self) -> bool:
        return bool(_DURATION.fullmatch(self.default))


_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_DURATION = re.compile(r"(?:\d+(?:ms|s|m|h|d|w|y))+")
_MATCHERS = re.compile(
    r'\s*\w+\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*(?:,\s*\w+\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*)*'
)
_PLACEHOLDER = re.compile(r"\[\[(\w+)(%?)\]\]")

PARAMS: dict[str, Param] = {
    "overage_licenses": Param("0", "CitrixLicensesOverage: licenses in overage"),
    "overage_for": Param("30m", "CitrixLicensesOverage"),
    "low_share": Param("0.10", "CitrixLicensesLow: share of available licenses remaining"),
    "low_for": Param("1h", "CitrixLicensesLow"),
    "expiry_warning_days": Param("30", "CitrixLicensesExpiring: days, warning"),
    "expiry_critical_days": Param("7", "CitrixLicensesExpiring: days, critical"),
    "expiry_warning_for": Param("1h", "CitrixLicensesExpiring (warning)"),
    "expiry_critical_for": Param("15m", "CitrixLicensesExpiring (critical)"),
    "forecast_days": Param("30", "CitrixLicensesOverageForecast: days until overage"),
    "forecast_window": Param("7d", "CitrixLicensesOverageForecast: the trend's time range"),
    "forecast_for": Param("1h", "CitrixLicensesOverageForecast"),
    "exporter_down_for": Param("5m", "CitrixExporterDown"),
    "exporter_absent_for": Param("15m", "CitrixExporterAbsent"),
    "reload_failing_for": Param("10m", "CitrixExporterReloadFailing"),
    "collector_down_for": Param("15m", "CitrixCollectorDown"),
    "stale_seconds": Param("3600", "CitrixDataStale: seconds since the last successful poll"),
    "stale_for": Param("5m", "CitrixDataStale"),
    "token_failures": Param("0", "CitrixTokenRequestsFailing: failed token requests in 30m"),
    "token_for": Param("10m", "CitrixTokenRequestsFailing"),
    "throttled_share": Param("0.10", "CitrixUpstreamThrottled: share of requests answered 429"),
    "throttled_for": Param("30m", "CitrixUpstreamThrottled"),
    "data_issues": Param("0", "CitrixUpstreamDataIssues: unreadable values in an hour"),
    "data_issues_for": Param("15m", "CitrixUpstreamDataIssues"),
    "unregistered_share": Param(
        "0.10", "CitrixMachinesUnregistered: share of a group's powered-on machines"
    ),
    "unregistered_for": Param("15m", "CitrixMachinesUnregistered"),
    "group_down_machines": Param("0", "CitrixDeliveryGroupDown: machines powered on, more than"),
    "group_down_for": Param("10m", "CitrixDeliveryGroupDown"),
    "spike_failures": Param("5", "CitrixConnectionFailureSpike: failures in 10 minutes"),
    "spike_factor": Param("3", "CitrixConnectionFailureSpike: times the 1-day average rate"),
    "spike_for": Param("5m", "CitrixConnectionFailureSpike"),
    "faulted_machines": Param("0", "CitrixMachinesFaulted: faulted machines in a group"),
    "faulted_for": Param("30m", "CitrixMachinesFaulted"),
    "logon_p95_seconds": Param("60", "CitrixLogonSlow: 95th percentile logon, seconds"),
    "logon_min_count": Param("5", "CitrixLogonSlow: logons in 30 minutes needed"),
    "logon_for": Param("15m", "CitrixLogonSlow"),
    "phone_home_hours": Param("24", "CitrixLicenseServerNotPhoningHome: hours"),
    "phone_home_for": Param("15m", "CitrixLicenseServerNotPhoningHome"),
    "license_server_expiry_days": Param("30", "CitrixLicenseServerLicensesExpiring: days"),
    "license_server_expiry_for": Param("1h", "CitrixLicenseServerLicensesExpiring"),
    "partner_overage_licenses": Param("0", "CitrixPartnerCustomerOverage: licenses in overage"),
    "partner_overage_for": Param("1h", "CitrixPartnerCustomerOverage"),
    "concurrent_share": Param("0.90", "CitrixConcurrentLicensesNearLimit: share in use"),
    "concurrent_for": Param("30m", "CitrixConcurrentLicensesNearLimit"),
}


class SettingsError(ValueError):
    """A parameter is unknown or its value unusable; the message names it."""


@dataclass(frozen=True)
class Settings:
    """What a deployment may change. `values` overrides parameter defaults by name."""

    job_selector: str = DEFAULT_JOB_SELECTOR
    runbook_url: str = DEFAULT_RUNBOOK_URL
    values: Mapping[str, str] = field(default_factory=dict)

    def resolved(self) -> dict[str, str]:
        """Every parameter's value, checked; plus `job` and `runbook`."""
        unknown = sorted(set(self.values) - set(PARAMS))
        if unknown:
            raise SettingsError(f"unknown parameter(s): {', '.join(unknown)}")
        values = {name: self.values.get(name, p.default) for name, p in PARAMS.items()}
        for name, value in values.items():
            pattern = _DURATION if PARAMS[name].is_duration else _NUMBER
            if not pattern.fullmatch(value):
                kind = "a duration like 15m" if PARAMS[name].is_duration else "a decimal number"
                raise SettingsError(f"{name}: {value!r} is not {kind}")
        if not _MATCHERS.fullmatch(self.job_selector):
            raise SettingsError(f'job selector: {self.job_selector!r} is not like job="name"')
        if not re.fullmatch(r"https?://\S+", self.runbook_url):
            raise SettingsError(f"runbook URL: {self.runbook_url!r} is not an http(s) URL")
        return {**values, "job": self.job_selector.strip(), "runbook": self.runbook_url}


def fill(template: str, values: Mapping[str, str]) -> str:
    """`[[name]]` -> the value; `[[name%]]` -> a share as a percentage (0.10 -> 10)."""

    def one(match: re.Match[str]) -> str:
        value = values[match[1]]
        return f"{float(value) * 100:g}" if match[2] else value

    return _PLACEHOLDER.sub(one, template)


# -- rendering ----------------------------------------------------------------------------------

_HEADER = """\
# Prometheus alerting rules for citrix-cloud-exporter.
#
# GENERATED by tools/rules.py from tools/alerts.py: do not edit. To change a threshold, a `for`
# duration, the job selector or the runbook URL, generate your own copy with parameters
# (`python -m tools.rules --list` shows them; docs/runbooks.md has the defaults).
#
# Load with `rule_files: [citrix-cloud-exporter.rules.yml]`. Check with
# `promtool check rules citrix-cloud-exporter.rules.yml`; unit tests are in tests/ next to this
# file (`promtool test rules tests/*.yml`). What to do when an alert fires: the runbooks in
# docs/runbooks.md, linked from every alert's runbook_url.
#
# THRESHOLDS. Each one appears once, in the expression of the rule named here, on a line
# marked `# THRESHOLD`; annotations show measured values, never the threshold.
#
"""

_FOOTER = """\
#
# Licensing data is polled every 15 minutes by default and Monitor data every minute; values
# only change when a poll completes. CitrixDataStale's [[stale_seconds]] s should stay above the
# exporter's poll.max_staleness (1 h by default), after which a failing collector's values are
# dropped, and above your longest collector interval.
#
# Labels: licensing alerts carry customer_id, product, edition; DaaS alerts customer_id and
# delivery_group; exporter alerts customer_id (and collector, job, instance where they apply);
# License Server alerts customer_id and fqdn; the partner alert customer_id (the partner),
# tenant_id and tenant_name (its customer).
#
# The DaaS alerts work the same whether the exporter zero-fills Monitor state series (the
# default) or leaves the zeros out (`omit_zero_states`): with no unregistered machines there is
# no numerator series and so no result, as with a ratio of 0. tests/daas.test.yml has both.
#
# The License Server and partner alerts use the license_servers and partner collectors, which
# read observed (undocumented) Citrix APIs and are disabled by default: without them these
# rules have no series and never fire. See docs/observed-apis.md.
# max by (...) folds identical series from redundant exporter replicas into one alert.

"""

_NAME_WIDTH, _SEVERITY_WIDTH, _TEXT_WIDTH = 31, 10, 48


def _table(values: Mapping[str, str]) -> Iterator[str]:
    """The header table: alert, severity, what makes it fire, for."""
    yield (
        "#   "
        + "alert".ljust(_NAME_WIDTH)
        + "severity".ljust(_SEVERITY_WIDTH)
        + ("fires when".ljust(_TEXT_WIDTH) + "for")
    )
    yield (
        "#   "
        + "-" * (_NAME_WIDTH - 2)
        + "  "
        + "-" * (_SEVERITY_WIDTH - 2)
        + "  "
        + ("-" * (_TEXT_WIDTH - 2) + "  ---")
    )
    indent = " " * (_NAME_WIDTH + _SEVERITY_WIDTH)
    for alert in (alert for group in GROUPS for alert in group.alerts):
        name = alert.name.ljust(_NAME_WIDTH)
        if len(alert.name) >= _NAME_WIDTH:
            yield f"#   {alert.name}"
            name = " " * _NAME_WIDTH
        lines = fill(alert.fires_when, values).splitlines()
        duration = values[alert.for_param]
        first = f"{name}{alert.severity.ljust(_SEVERITY_WIDTH)}{lines[0].ljust(_TEXT_WIDTH - 2)}  "
        yield f"#   {first}{duration}".rstrip()
        for line in lines[1:]:
            yield f"#   {indent}{line}".rstrip()


def _block(text: str, indent: int) -> Iterator[str]:
    for line in text.splitlines():
        yield f"{' ' * indent}{line}".rstrip()


def _rule(alert: Alert, values: Mapping[str, str]) -> Iterator[str]:
    if alert.comment:
        comment = fill(alert.comment, values)
        yield from _block("\n".join(f"# {line}" for line in comment.splitlines()), 6)
    yield f"      - alert: {alert.name}"
    yield "        expr: |"
    yield from _block(fill(alert.expr, values), 10)
    marker = f"  # THRESHOLD {alert.for_comment}" if alert.for_comment else ""
    yield f"        for: {values[alert.for_param]}{marker}"
    yield "        labels:"
    yield f"          severity: {alert.severity}"
    yield "        annotations:"
    yield f"          summary: {alert.summary}"
    yield "          description: >-"
    yield from _block(fill(alert.description, values), 12)
    yield f"          runbook_url: {values['runbook']}#{alert.name.lower()}"


def render(settings: Settings | None = None) -> str:
    """The rules file for these settings (the defaults when None)."""
    values = (settings or Settings()).resolved()
    lines = [*_HEADER.splitlines(), *_table(values), *fill(_FOOTER, values).splitlines()]
    lines.append("groups:")
    for number, group in enumerate(GROUPS):
        if number:
            lines.append("")
        lines += [f"  - name: {group.name}", "    rules:"]
        for index, alert in enumerate(group.alerts):
            if index:
                lines.append("")
            lines += _rule(alert, values)
    return "\n".join(lines) + "\n"


# -- command line -------------------------------------------------------------------------------


def _assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE")
    return name.strip(), value.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RULES_FILE, help="the file to write")
    parser.add_argument("--check", action="store_true", help="exit 1 if --out is out of date")
    parser.add_argument("--list", action="store_true", help="print the parameters and exit")
    parser.add_argument("--job-selector", default=DEFAULT_JOB_SELECTOR, help="PromQL matchers")
    parser.add_argument("--runbook-url", default=DEFAULT_RUNBOOK_URL, help="runbooks' base URL")
    parser.add_argument(
        "--set", type=_assignment, action="append", default=[], metavar="NAME=VALUE"
    )
    args = parser.parse_args(argv)
    if args.list:
        for name, param in PARAMS.items():
            print(f"{name:28} {param.default:6} {param.help}")
        return 0
    try:
        text = render(Settings(args.job_selector, args.runbook_url, dict(args.set)))
    except SettingsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    current = args.out.read_text(encoding="utf-8") if args.out.exists() else None
    if args.check:
        if current != text:
            print(f"out of date: {args.out}; run: python -m tools.rules", file=sys.stderr)
        return 0 if current == text else 1
    if current != text:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
