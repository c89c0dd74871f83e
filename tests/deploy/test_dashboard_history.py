"""Panels that need more history than the real-Prometheus test's young Prometheus has: months
of licence figures (the 12-month trend, as `citrix-cloud-exporter backfill` loads them), a week
of usage (the overage forecast), a month (the billing peak) and a day of sessions at the
subquery's 1-minute steps (daily peak sessions). Each query, as Grafana sends it, runs under
`promtool test rules` against made-up series and must give the value that history implies."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.dashboard_queries import (
    SUBSTITUTIONS,
    VARIABLE,
    load_dashboards,
    targets,
)
from tests.support.helpers import require_binary

LICENSING = "citrix-cloud-licensing.json"
DAAS = "citrix-daas-sessions-machines.json"
# Grafana's $__range for "this month so far" late in a month.
VALUES = {**SUBSTITUTIONS, "__range": "30d", "customer_id": ".+"}
TARGET = 'job="citrix-cloud", instance="exporter:9597"'


def lic(customer: str) -> str:
    return f'customer_id="{customer}", product="XenDesktop", edition="XAXDFull"'


def series(metric: str, labels: str, values: str) -> dict[str, str]:
    return {"series": f"{metric}{{{TARGET}, {labels}}}", "values": values}


def query(board: str, panel: str, ref: str = "A") -> str:
    (expr,) = [
        t.expr for t in targets(load_dashboards()[board]) if t.panel == panel and t.ref == ref
    ]
    return VARIABLE.sub(lambda m: VALUES[m.group(1) or m.group(2)], expr)


def sample(labels: str, value: float) -> dict[str, Any]:
    return {"labels": "{" + labels + "}", "value": value}


def case(expr: str, at: str, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """A promql_expr_test: `expr` at `at` (a duration after the series start) gives `samples`."""
    return {"expr": expr, "eval_time": at, "exp_samples": samples}


def trend_test() -> dict[str, Any]:
    """A year of daily samples (what a backfill writes): 200 days back the trend shows that
    day's figures, the smaller assignment (user) as used."""
    acme = lic("acme")
    return {
        "interval": "1d",
        "input_series": [
            series("citrix_licenses_month_available", acme, "100x180 120x183"),
            series("citrix_licenses_month_assigned", f'{acme}, assignment="user"', "50+1x364"),
            series("citrix_licenses_month_assigned", f'{acme}, assignment="device"', "60+1x364"),
        ],
        "promql_expr_test": [
            case(query(LICENSING, "Usage trend (12 months)", ref), "200d", [sample(acme, value)])
            for ref, value in (("A", 250), ("B", 120))
        ],
    }


def forecast_test() -> dict[str, Any]:
    """Hourly usage for a week: acme grows 24 a day from 300 and has 500 (at 468 after a week:
    32 / 24 = 1.33 days left); globex is flat (no forecast: NaN); initech is already over and
    still growing (0 days)."""
    acme, globex, initech = lic("acme"), lic("globex"), lic("initech")
    forecast = query(LICENSING, "Overage forecast")
    growth = query(LICENSING, "Overage forecast", "B")
    return {
        "interval": "1h",
        "input_series": [
            series("citrix_licenses_used", acme, "300+1x200"),
            series("citrix_licenses_available", acme, "500x200"),
            series("citrix_licenses_used", globex, "100x200"),
            series("citrix_licenses_available", globex, "100x200"),
            series("citrix_licenses_used", initech, "600+1x200"),
            series("citrix_licenses_available", initech, "500x200"),
        ],
        "promql_expr_test": [
            # NaN equals nothing, not even in promtool: `== itself` drops it, `!= bool
            # itself` is 1 only for it.
            case(
                f"({forecast}) == ({forecast})", "168h", [sample(acme, 32 / 24), sample(initech, 0)]
            ),
            case(
                f"({forecast}) != bool ({forecast})",
                "168h",
                [sample(acme, 0), sample(globex, 1), sample(initech, 0)],
            ),
            case(growth, "168h", [sample(acme, 24), sample(globex, 0), sample(initech, 24)]),
        ],
    }


def billing_peak_test() -> dict[str, Any]:
    """Hourly usage around 100 with one hour at 150, 50 hours before the month's evaluation:
    the peak used is 150, 30 % of 500; the peak overage 0."""
    acme = lic("acme")
    title = "Monthly peak (billing)"
    return {
        "interval": "1h",
        "input_series": [
            series("citrix_licenses_used", acme, "100x100 150 100x100"),
            series("citrix_licenses_available", acme, "500x201"),
            series("citrix_licenses_overage", acme, "0x201"),
        ],
        "promql_expr_test": [
            case(query(LICENSING, title, ref), "150h", [sample(acme, value)])
            for ref, value in (("A", 0), ("B", 150), ("D", 0.3))
        ],
    }


def daily_peak_test() -> dict[str, Any]:
    """A day of sessions, one sample a minute: 5 active throughout, 1 disconnected but 4 for
    one minute: the day's peak is 9, although neither state's own peak adds up to it at
    another time. A group with no session series shows 0 (the in-maintenance fallback)."""
    day = 'customer_id="acme", delivery_group="DG-Day"'
    empty = 'customer_id="acme", delivery_group="DG-Empty"'
    return {
        "interval": "1m",
        "input_series": [
            series("citrix_sessions", f'{day}, state="active"', "5x1500"),
            series("citrix_sessions", f'{day}, state="disconnected"', "1x700 4 1x800"),
            series("citrix_machines_in_maintenance", day, "0x1500"),
            series("citrix_machines_in_maintenance", empty, "0x1500"),
        ],
        "promql_expr_test": [
            case(query(DAAS, "Daily peak sessions"), "1440m", [sample(day, 9), sample(empty, 0)])
        ],
    }


def test_history_panels_under_promtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    tests = [trend_test(), forecast_test(), billing_peak_test(), daily_peak_test()]
    path = tmp_path / "history.test.yml"
    path.write_text(yaml.safe_dump({"rule_files": [], "evaluation_interval": "1m", "tests": tests}))
    result = subprocess.run(
        [promtool, "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
