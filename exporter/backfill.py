"""`citrix-cloud-exporter backfill`: a year of licence history for a new Prometheus.

Fetches the documented UD historical usage (up to 12 months) of every configured customer and
writes OpenMetrics with sample timestamps, the input of
`promtool tsdb create-blocks-from openmetrics FILE DATA_DIR`. The series are the live
exporter's `citrix_licenses_month_*` gauges, repeated every `--step` through each month, so
dashboards show history continuous with what the exporter records from now on.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import TextIO

from prometheus_client.core import Metric

from .collector.base import GaugeSet
from .collector.fields import Fields
from .collector.licensing import (
    CURRENT_PATH,
    HISTORY_PATH,
    LABELS,
    add_month_gauges,
    history_months,
    months_back,
)
from .config import Config
from .log import get_logger
from .metrics import DataIssues
from .runtime import Exporter
from .snapshot import merge_families
from .timeutil import add_months
from .upstream.client import ApiClient

log = get_logger("backfill")

MAX_MONTHS = 12


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


async def _customer_months(
    api: ApiClient, months: int, now: datetime
) -> list[tuple[datetime, list[Metric]]]:
    """(month start, month gauges) for each month the API reports for `customer`."""
    customer = api.customer
    fields = Fields(DataIssues(api.metrics, customer.customer_id, "backfill"))
    current = await api.get_json("licensing_current", api.base_url + CURRENT_PATH)
    data = current.data if isinstance(current.data, dict) else {}
    labels = [
        customer.customer_id,
        fields.label(data, "productName"),
        fields.label(data, "productEdition"),
    ]
    params = {"startDate": months_back(now, months - 1), "endDate": months_back(now, 0)}
    history = await api.get_json("licensing_historical_usage", api.base_url + HISTORY_PATH, params)
    result = []
    for when, entry in sorted(history_months(history.data, fields), key=lambda m: m[0]):
        gauges = GaugeSet(LABELS, "Backfilled from the licensing historical usage API.")
        add_month_gauges(gauges, labels, when, entry, fields)
        result.append((when, gauges.families()))
    return result


async def backfill(
    config: Config, out: TextIO, months: int = MAX_MONTHS, step: float = 86400.0
) -> tuple[int, int]:
    """Write the history of every customer to `out`; returns (customers done, samples).

    OpenMetrics wants each family once and each series in time order, so samples are grouped
    by name and series before writing.
    """
    now = datetime.now(UTC)
    end = time.time()
    per_month: dict[datetime, list[list[Metric]]] = {}
    done = 0
    # The exporter's own wiring (sessions with the customer's CA file, tokens, retries); no
    # poll is started.
    async with Exporter(config, process_metrics=False) as exporter:
        for customer in config.customers:
            try:
                results = await _customer_months(
                    exporter.api_clients[customer.customer_id], months, now
                )
            except Exception as err:  # one customer failing must not lose the others
                log.error(
                    "backfill failed for customer",
                    extra={"customer_id": customer.customer_id, "error": str(err)},
                )
                continue
            done += 1
            for when, families in results:
                per_month.setdefault(when, []).append(families)
    # One family per name, with each month's samples stamped through that month.
    by_name: dict[str, list[tuple[Metric, list[float]]]] = {}
    for when in sorted(per_month):
        start = when.timestamp()
        stop = min(add_months(when, 1).timestamp(), end)
        stamps = [start + i * step for i in range(int((stop - start) // step) + 1)]
        stamps = [s for s in stamps if s < stop] or [start]
        for family in merge_families(per_month[when]):
            by_name.setdefault(family.name, []).append((family, stamps))
    samples = 0
    for name in sorted(by_name):
        parts = by_name[name]
        first = parts[0][0]
        out.write(f"# HELP {name} {first.documentation}\n")
        out.write(f"# TYPE {name} {first.type}\n")
        series: dict[str, list[tuple[float, float]]] = {}
        for family, stamps in parts:
            for sample in family.samples:
                labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(sample.labels.items()))
                series.setdefault(labels, []).extend((s, sample.value) for s in stamps)
        for labels, points in sorted(series.items()):
            for stamp, value in sorted(points):
                out.write(f"{name}{{{labels}}} {value} {stamp:.0f}\n")
                samples += 1
    out.write("# EOF\n")
    return done, samples


def run_backfill(config: Config, path: str, months: int, step: float) -> int:
    """CLI entry: exit 0 when every customer's history was written, 1 otherwise."""
    with open(path, "w", encoding="utf-8") as out:
        done, samples = asyncio.run(backfill(config, out, months, step))
    log.info(
        "backfill written",
        extra={"file": path, "customers": done, "samples": samples,
               "next": f"promtool tsdb create-blocks-from openmetrics {path} DATA_DIR"},
    )  # fmt: skip
    return 0 if done == len(config.customers) else 1
