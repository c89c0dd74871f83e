"""Licensing collector: Citrix DaaS user/device licence usage, expiry and monthly history.

Endpoints (documented): `.../cvad/ud/current` every poll and `.../cvad/ud/historicalusage` for
the last 12 months at most once a day (the figures are monthly; polling them often only costs
rate limit). A 404 means the customer is not entitled to the product.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import Metric

from ..config import CollectorConfig
from ..log import get_logger
from ..upstream.errors import UpstreamError
from .base import Collector, CollectorContext, GaugeSet
from .current_usage import ASSIGNMENTS, add_current_usage
from .fields import Fields

log = get_logger("licensing")

CURRENT_PATH = "/licensing/license/enterprise/cloud/cvad/ud/current"
HISTORY_PATH = "/licensing/license/enterprise/cloud/cvad/ud/historicalusage"
HISTORY_REFRESH_SECONDS = 24 * 3600
HISTORY_MONTHS = 12
LABELS = ["customer_id", "product", "edition"]
HELP_SUFFIX = "Polled from the Citrix Cloud licensing API every licensing interval."


def months_back(now: datetime, months: int) -> str:
    """`yyyy-MM` of the month `months` before `now`'s month."""
    index = now.year * 12 + now.month - 1 - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


class LicensingCollector(Collector):
    name = "licensing"

    def __init__(self, ctx: CollectorContext, config: CollectorConfig) -> None:
        super().__init__(ctx)
        self.config = config  # no options of its own; the runtime reads its interval
        self._history: list[Metric] = []
        self._history_fetched: tuple[float, str] | None = None  # (when, for which month)
        self.fields = Fields(ctx.issues)

    async def poll(self) -> list[Metric]:
        response = await self.ctx.api.get_json(
            "licensing_current", self.ctx.api.base_url + CURRENT_PATH
        )
        if not isinstance(response.data, dict):
            self.ctx.issues.report("bad_shape", "current", "current usage is not a JSON object")
            raise UpstreamError("licensing_current: response is not a JSON object")
        product = self.fields.label(response.data, "productName")
        edition = self.fields.label(response.data, "productEdition")
        labels = [self.ctx.customer_id, product, edition]
        current = GaugeSet(LABELS, HELP_SUFFIX)
        add_current_usage(current, labels, response.data, self.fields)
        await self._refresh_history(labels)
        return current.families() + self._history

    # -- monthly history -----------------------------------------------------------------

    async def _refresh_history(self, labels: list[str]) -> None:
        """Fetch 12 months of history when a day has passed or the month changed; its gauges
        carry `labels`, the product and edition of the current usage polled with it.

        A failure keeps the previous figures and is retried at the next poll: monthly numbers
        are not worth failing the whole collector (and paging someone) over.
        """
        now = self.ctx.clock()
        today = datetime.fromtimestamp(now, UTC)
        month = months_back(today, 0)
        if self._history_fetched is not None:
            fetched_at, fetched_month = self._history_fetched
            if now - fetched_at < HISTORY_REFRESH_SECONDS and month == fetched_month:
                return
        params = {"startDate": months_back(today, HISTORY_MONTHS - 1), "endDate": month}
        try:
            response = await self.ctx.api.get_json(
                "licensing_historical_usage", self.ctx.api.base_url + HISTORY_PATH, params
            )
        except UpstreamError as err:
            log.warning(
                "historical usage not available; keeping previous figures, retrying next poll",
                extra={"customer_id": self.ctx.customer_id, "error": str(err)},
            )
            return
        self._history_fetched = (now, month)
        self._history = self._history_families(response.data, month, labels)

    def _history_families(self, data: Any, month: str, labels: list[str]) -> list[Metric]:
        months = history_months(data, self.fields)
        if not months:
            return []
        in_month = [item for item in months if item[0].strftime("%Y-%m") == month]
        when, entry = max(in_month or months, key=lambda item: item[0])
        gauges = GaugeSet(LABELS, "Polled from the licensing historical usage API once a day.")
        add_month_gauges(gauges, labels, when, entry, self.fields)
        return gauges.families()


MONTH_FIELDS = (
    ("cumulativeAssignedCount", "citrix_licenses_month_assigned",
     "Licenses assigned cumulatively up to this month, by assignment kind."),
    ("newAssignedCount", "citrix_licenses_month_newly_assigned",
     "Licenses newly assigned in the month, by assignment kind."),
    ("releasedCount", "citrix_licenses_month_released",
     "Licenses released in the month, by assignment kind."),
)  # fmt: skip


def history_months(data: Any, fields: Fields) -> list[tuple[datetime, dict[str, Any]]]:
    """(month start, entry) of each `historicalUsageList` entry with a readable timestamp."""
    if data is None:  # 204: no history yet
        return []
    if not isinstance(data, dict):
        fields.issues.report("bad_shape", "historicalusage", "not a JSON object")
        return []
    entries = data.get("historicalUsageList")
    if not isinstance(entries, list):
        return []
    months = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        when = fields.moment(entry, "timeStamp", "historicalUsageList.timeStamp")
        if when is not None:
            months.append((when, entry))
    return months


def add_month_gauges(
    gauges: GaugeSet, labels: list[str], when: datetime, entry: dict[str, Any], fields: Fields
) -> None:
    """The citrix_licenses_month_* gauges of one month (used live and by the backfill)."""
    gauges.add(
        "citrix_licenses_month_start_timestamp_seconds",
        "Start of the month the citrix_licenses_month_* figures describe "
        "(the current month when Citrix has reported it).",
        labels,
        when.timestamp(),
    )
    path = "historicalUsageList"
    available = fields.count(
        entry, "totalAvailableLicenseCount", f"{path}.totalAvailableLicenseCount"
    )
    if available is not None:
        gauges.add(
            "citrix_licenses_month_available",
            "Licenses available in the month (historical usage).",
            labels,
            available,
        )
    for assignment, key in ASSIGNMENTS:
        usage = fields.object(entry, key, path=f"{path}.{key}")
        if usage is None:
            continue
        for field, name, help_text in MONTH_FIELDS:
            value = fields.count(usage, field, f"{path}.{key}.{field}")
            if value is not None:
                gauges.add(name, help_text, labels, value, {"assignment": assignment})
