"""`citrix-cloud-exporter backfill`: a year of licence history for a new Prometheus.

Fetches the documented UD historical usage (up to 12 months) of every configured customer and
writes OpenMetrics with sample timestamps, the input of
`promtool tsdb create-blocks-from openmetrics FILE DATA_DIR`. The series are the live
exporter's `citrix_licenses_month_*` gauges, repeated every `--step` through each month, so
dashboards show history continuous with what the exporter records from now on.

It reaches Citrix Cloud through the exporter's own connections (sessions with the customer's
CA file, tokens, retries); nothing is polled or served.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TextIO

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.registry import Collector

from .collector.fields import Fields
from .collector.licensing import fetch_month_history
from .config import Config
from .log import get_logger
from .metrics import DataIssues, SelfMetrics
from .timeutil import add_months
from .upstream.client import ApiClient
from .upstream.connections import Connections

log = get_logger("backfill")

MAX_MONTHS = 12
HELP_SUFFIX = "Backfilled from the licensing historical usage API."

# One customer's months: (month start, that month's citrix_licenses_month_* families).
History = list[tuple[datetime, list[Metric]]]
# Each series of one family, by its labels (sorted, as OpenMetrics writes them): its points
# (timestamp, value).
Series = dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]


async def _histories(config: Config, months: int, now: datetime) -> tuple[int, list[History]]:
    """(customers done, their histories); one customer failing must not lose the others."""
    histories = []
    connections = Connections(config, SelfMetrics(CollectorRegistry()))
    try:
        for customer_id, api in connections.open().items():
            try:
                histories.append(await _history(api, months, now))
            except Exception as err:
                log.error(
                    "backfill failed for customer",
                    extra={"customer_id": customer_id, "error": str(err)},
                )
    finally:
        await connections.close()
    return len(histories), histories


async def _history(api: ApiClient, months: int, now: datetime) -> History:
    issues = DataIssues(api.metrics, api.customer.customer_id, "backfill")
    return await fetch_month_history(api, months, now, Fields(issues), help_suffix=HELP_SUFFIX)


def _stamps(when: datetime, step: float, end: float) -> list[int]:
    """Every `step` seconds from the month start `when` to the month's end (or `end`, now),
    in whole seconds; at least the month start."""
    start = when.timestamp()
    stop = min(add_months(when, 1).timestamp(), end)
    stamps = [start + i * step for i in range(int((stop - start) // step) + 1)]
    return [round(s) for s in stamps if s < stop] or [round(start)]


def stamped_families(histories: Iterable[History], step: float, end: float) -> list[Metric]:
    """One family per name (sorted), each series' samples stamped through each of its months.

    OpenMetrics wants each family once and each series' samples together and in time order;
    the first HELP and TYPE seen for a name are kept.
    """
    first: dict[str, Metric] = {}
    points: dict[str, Series] = {}
    for history in histories:
        for when, families in history:
            stamps = _stamps(when, step, end)
            for family in families:
                first.setdefault(family.name, family)
                _add_points(points.setdefault(family.name, {}), family, stamps)
    return [_in_time_order(first[name], points[name]) for name in sorted(points)]


def _add_points(series: Series, family: Metric, stamps: list[int]) -> None:
    for sample in family.samples:
        key = tuple(sorted(sample.labels.items()))
        series.setdefault(key, []).extend((stamp, sample.value) for stamp in stamps)


def _in_time_order(like: Metric, series: Series) -> Metric:
    """A family named, documented and typed as `like`, series by series, each in time order."""
    family = Metric(like.name, like.documentation, like.type)
    for key, points in sorted(series.items()):
        for stamp, value in sorted(points):
            family.add_sample(like.name, dict(key), value, stamp)
    return family


class _Fixed(Collector):
    """Hands prometheus_client's exposition a list of families already built."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


async def backfill(
    config: Config, out: TextIO, months: int = MAX_MONTHS, step: float = 86400.0
) -> tuple[int, int]:
    """Write the history of every customer to `out`; returns (customers done, samples)."""
    end = time.time()
    done, histories = await _histories(config, months, datetime.fromtimestamp(end, UTC))
    families = stamped_families(histories, step, end)
    # The OpenMetrics writer is untyped; it escapes label values and writes sample timestamps.
    text = generate_latest(_Fixed(families))  # type: ignore[no-untyped-call]
    out.write(text.decode("utf-8"))
    return done, sum(len(family.samples) for family in families)


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
