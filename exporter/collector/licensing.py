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
from ..timeutil import add_months
from ..upstream.client import ApiClient, ApiResponse
from ..upstream.errors import UpstreamError
from .base import Collector, CollectorContext, GaugeSet
from .current_usage import add_current_usage, add_per_assignment
from .fields import Fields

log = get_logger("licensing")

CURRENT_PATH = "/licensing/license/enterprise/cloud/cvad/ud/current"
HISTORY_PATH = "/licensing/license/enterprise/cloud/cvad/ud/historicalusage"
HISTORY_REFRESH_SECONDS = 24 * 3600
HISTORY_MONTHS = 12
LABELS = ["customer_id", "product", "edition"]
HELP_SUFFIX = "Polled from the Citrix Cloud licensing API every licensing interval."
HISTORY_HELP_SUFFIX = "Polled from the licensing historical usage API once a day."


def months_back(now: datetime, months: int) -> str:
    """`yyyy-MM` of the month `months` before `now`'s month."""
    return add_months(now.replace(day=1), -months).strftime("%Y-%m")


class LicensingCollector(Collector[CollectorConfig]):
    name = "licensing"

    def __init__(self, ctx: CollectorContext, config: CollectorConfig) -> None:
        super().__init__(ctx, config)
        self._history: list[Metric] = []
        self._history_fetched: tuple[float, str] | None = None  # (when, for which month)

    async def poll(self) -> list[Metric]:
        response = await self.ctx.api.get_json(
            "licensing_current", self.ctx.api.base_url + CURRENT_PATH
        )
        if not isinstance(response.data, dict):
            self.ctx.issues.report("bad_shape", "current", "current usage is not a JSON object")
            raise UpstreamError("licensing_current: response is not a JSON object")
        labels = product_labels(self.ctx.customer_id, response.data, self.fields)
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
        try:
            response = await get_history(self.ctx.api, today, HISTORY_MONTHS)
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
        return month_families(labels, when, entry, self.fields, HISTORY_HELP_SUFFIX)


def product_labels(customer_id: str, current: dict[str, Any], fields: Fields) -> list[str]:
    """The labels of every licensing gauge: the customer, and the product and edition its
    current usage names (the history carries none of its own)."""
    product = fields.label(current, "productName")
    edition = fields.label(current, "productEdition")
    return [customer_id, product, edition]


async def get_history(api: ApiClient, now: datetime, months: int) -> ApiResponse:
    """The historical usage answer for the `months` months up to and including `now`'s."""
    params = {"startDate": months_back(now, months - 1), "endDate": months_back(now, 0)}
    return await api.get_json("licensing_historical_usage", api.base_url + HISTORY_PATH, params)


async def fetch_month_history(
    api: ApiClient, months: int, now: datetime, fields: Fields, *, help_suffix: str
) -> list[tuple[datetime, list[Metric]]]:
    """(month start, month gauges) of each month the historical usage API reports for the
    customer of `api`, oldest first: the series the live collector exports, so `backfill`
    writes a history continuous with them. `help_suffix` ends each HELP text."""
    current = await api.get_json("licensing_current", api.base_url + CURRENT_PATH)
    labels = product_labels(
        api.customer.customer_id, current.data if isinstance(current.data, dict) else {}, fields
    )
    history = await get_history(api, now, months)
    reported = sorted(history_months(history.data, fields), key=lambda item: item[0])
    return [
        (when, month_families(labels, when, entry, fields, help_suffix)) for when, entry in reported
    ]


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


def month_families(
    labels: list[str], when: datetime, entry: dict[str, Any], fields: Fields, help_suffix: str
) -> list[Metric]:
    """The citrix_licenses_month_* families of one month, each HELP ending in `help_suffix`."""
    gauges = GaugeSet(LABELS, help_suffix)
    add_month_gauges(gauges, labels, when, entry, fields)
    return gauges.families()


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

    def usage_of(key: str) -> dict[str, Any] | None:
        return fields.object(entry, key, path=f"{path}.{key}")

    add_per_assignment(gauges, labels, usage_of, MONTH_FIELDS, fields, f"{path}.")
