"""The shipped Grafana dashboards as the tests read them: every panel's queries, and what
Grafana would substitute for the dashboards' variables when they run against the demo."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exporter.simulator.scenarios import DEMO_CUSTOMER_IDS

REPO = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = REPO / "grafana" / "dashboards"

# (dashboard uid, panel) whose queries are subqueries at whole-minute steps: a Prometheus younger
# than a minute may have no sample before the last whole minute, so they are evaluated at the
# next one (a future time is allowed: its lookback sees the latest samples).
# tests/deploy/test_dashboard_history.py checks their values over days of samples.
MINUTE_STEP_PANELS = frozenset({("citrix-daas-sessions-machines", "Daily peak sessions")})


def evaluation_time(dashboard: str, panel: str) -> dict[str, str]:
    """The `time` parameter of an instant query of the panel: none (now), or the next whole
    minute for MINUTE_STEP_PANELS."""
    if (dashboard, panel) not in MINUTE_STEP_PANELS:
        return {}
    return {"time": str((int(time.time()) // 60 + 1) * 60)}


VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


@dataclass(frozen=True)
class Target:
    dashboard: str  # uid
    panel: str
    ref: str
    expr: str

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref}: {self.expr}"


def load_dashboards() -> dict[str, dict[str, Any]]:
    """File name -> parsed dashboard, for every JSON file in grafana/dashboards/."""
    return {
        path.name: json.loads(path.read_text()) for path in sorted(DASHBOARD_DIR.glob("*.json"))
    }


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel except row headers, including those inside collapsed rows."""
    out = []
    for panel in board["panels"]:
        if panel["type"] == "row":
            out.extend(panel.get("panels", []))
        else:
            out.append(panel)
    return out


def targets(board: dict[str, Any]) -> list[Target]:
    return [
        Target(board["uid"], panel["title"], target["refId"], target["expr"])
        for panel in panels(board)
        for target in panel["targets"]
    ]


JOB = "citrix-cloud"
DEMO_CUSTOMERS = list(DEMO_CUSTOMER_IDS)
# What Grafana substitutes: a multi-select is sent as a regex of the chosen values; All is `.+`.
# $__rate_interval is normally max(4 x scrape interval, $__interval); Prometheus scrapes every
# second here, so 15 s gives enough samples within seconds of start.
SUBSTITUTIONS = {
    "job": JOB,
    "instance": ".+",
    "customer_id": "(" + "|".join(DEMO_CUSTOMERS) + ")",
    "product": ".+",
    "delivery_group": ".+",
    "collector": ".+",
    "__rate_interval": "15s",
    "__interval": "5s",
    "__interval_ms": "5000",
    "__range": "1m",
    "__range_s": "60",
    "__range_ms": "60000",
}
