"""Licensing collector: Citrix DaaS user/device licence usage, expiry and monthly history.

Endpoints (documented): `.../cvad/ud/current` every poll and `.../cvad/ud/historicalusage` for
the last 12 months at most once a day (the figures are monthly; polling them often only costs
rate limit). A 404 means the customer is not entitled to the product.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import Metric

from ..log import get_logger
from ..timeutil import parse_timestamp
from ..upstream.errors import UpstreamError
from .base import Collector, CollectorContext, GaugeSet

log = get_logger("licensing")

CURRENT_PATH = "/licensing/license/enterprise/cloud/cvad/ud/current"
HISTORY_PATH = "/licensing/license/enterprise/cloud/cvad/ud/historicalusage"
HISTORY_REFRESH_SECONDS = 24 * 3600
HISTORY_MONTHS = 12
LABELS = ["customer_id", "product", "edition"]
HELP_SUFFIX = "Polled from the Citrix Cloud licensing API every licensing interval."
ASSIGNMENTS = (("user", "userLicenseUsage"), ("device", "deviceLicenseUsage"))


def months_back(now: datetime, months: int) -> str:
    """`yyyy-MM` of the month `months` before `now`'s month."""
    index = now.year * 12 + now.month - 1 - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


class LicensingCollector(Collector):
    name = "licensing"

    def __init__(self, ctx: CollectorContext) -> None:
        super().__init__(ctx)
        self._history: list[Metric] = []
        self._history_fetched_at: float | None = None
        self._history_month: str | None = None
        self._labels = [ctx.customer_id, "unknown", "unknown"]

    async def poll(self) -> list[Metric]:
        response = await self.ctx.api.get_json(
            "licensing_current", self.ctx.api.base_url + CURRENT_PATH
        )
        if not isinstance(response.data, dict):
            self.ctx.issues.report("bad_shape", "current", "current usage is not a JSON object")
            raise UpstreamError("licensing_current: response is not a JSON object")
        current = self._current_families(response.data)
        await self._refresh_history()
        return current + self._history

    # -- current usage -------------------------------------------------------------------

    def _current_families(self, data: dict[str, Any]) -> list[Metric]:
        product = self._label(data, "productName")
        edition = self._label(data, "productEdition")
        labels = [self.ctx.customer_id, product, edition]
        self._labels = labels
        gauges = GaugeSet(LABELS, HELP_SUFFIX)

        available = self._number(data, "totalAvailableLicenseCount")
        used = self._number(data, "totalUsageCount")
        remaining = self._number(data, "remainingLicenseCount")
        if available is not None:
            gauges.add(
                "citrix_licenses_available",
                "Licenses available (totalAvailableLicenseCount).",
                labels,
                available,
            )
        if used is not None:
            gauges.add(
                "citrix_licenses_used",
                "Licenses in use, the smaller of user and device usage (totalUsageCount).",
                labels,
                used,
            )
        if remaining is not None:
            gauges.add(
                "citrix_licenses_remaining",
                "Licenses not yet consumed (remainingLicenseCount).",
                labels,
                remaining,
            )
        if available is not None and used is not None:
            gauges.add(
                "citrix_licenses_overage",
                "Licenses used beyond those available: max(0, used - available).",
                labels,
                max(0.0, used - available),
            )
        for assignment, key in ASSIGNMENTS:
            usage = self._object(data, key)
            if usage is None:
                continue
            extra = {"assignment": assignment}
            count = self._number(usage, "totalUsageCount", f"{key}.totalUsageCount")
            if count is not None:
                gauges.add(
                    "citrix_licenses_usage",
                    "Licenses in use by assignment kind (user or device).",
                    labels,
                    count,
                    extra,
                )
            released = self._number(usage, "releasedCount", f"{key}.releasedCount")
            if released is not None:
                gauges.add(
                    "citrix_licenses_released",
                    "Licenses released by assignment kind (releasedCount).",
                    labels,
                    released,
                    extra,
                )

        expiry = self._object(data, "nextExpiredLicenses")
        if expiry is not None:
            when = self._timestamp(expiry, "nextExpiredTime", "nextExpiredLicenses.nextExpiredTime")
            if when is not None:
                gauges.add(
                    "citrix_licenses_next_expiry_timestamp_seconds",
                    "When the next licenses expire (nextExpiredLicenses.nextExpiredTime).",
                    labels,
                    when,
                )
            count = self._number(expiry, "totalCount", "nextExpiredLicenses.totalCount")
            if count is not None:
                gauges.add(
                    "citrix_licenses_expiring",
                    "Licenses that expire at the next expiry time "
                    "(nextExpiredLicenses.totalCount).",
                    labels,
                    count,
                )
        activation = self._object(data, "nextActivatingLicense", null_expected=True)
        if activation is not None:
            when = self._timestamp(
                activation, "activatingTime", "nextActivatingLicense.activatingTime"
            )
            if when is not None:
                gauges.add(
                    "citrix_licenses_next_activation_timestamp_seconds",
                    "When the next purchased licenses become available "
                    "(nextActivatingLicense.activatingTime); absent when none is scheduled.",
                    labels,
                    when,
                )
            count = self._number(
                activation, "activatingCount", "nextActivatingLicense.activatingCount"
            )
            if count is not None:
                gauges.add(
                    "citrix_licenses_activating",
                    "Licenses that become available at the next activation time "
                    "(nextActivatingLicense.activatingCount); absent when none is scheduled.",
                    labels,
                    count,
                )
        return gauges.families()

    # -- monthly history -----------------------------------------------------------------

    async def _refresh_history(self) -> None:
        """Fetch 12 months of history when a day has passed or the month changed.

        A failure keeps the previous figures and is retried at the next poll: monthly numbers
        are not worth failing the whole collector (and paging someone) over.
        """
        now = self.ctx.clock()
        today = datetime.fromtimestamp(now, UTC)
        month = months_back(today, 0)
        if (
            self._history_fetched_at is not None
            and now - self._history_fetched_at < HISTORY_REFRESH_SECONDS
            and month == self._history_month
        ):
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
        self._history_fetched_at = now
        self._history_month = month
        self._history = self._history_families(response.data, month)

    def _history_families(self, data: Any, month: str) -> list[Metric]:
        if data is None:  # 204: no history yet
            return []
        if not isinstance(data, dict):
            self.ctx.issues.report("bad_shape", "historicalusage", "not a JSON object")
            return []
        entries = data.get("historicalUsageList")
        if not isinstance(entries, list) or not entries:
            return []
        dated: list[tuple[datetime, dict[str, Any]]] = []
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            stamp = entry.get("timeStamp")
            try:
                dated.append((parse_timestamp(str(stamp)), entry))
            except ValueError:
                self.ctx.issues.report("bad_timestamp", "historicalUsageList.timeStamp", str(stamp))
        if not dated:
            return []
        in_month = [item for item in dated if item[0].strftime("%Y-%m") == month]
        when, entry = max(in_month or dated, key=lambda item: item[0])
        labels = self._labels
        gauges = GaugeSet(LABELS, "Polled from the licensing historical usage API once a day.")
        gauges.add(
            "citrix_licenses_month_start_timestamp_seconds",
            "Start of the month the citrix_licenses_month_* figures describe "
            "(the current month when Citrix has reported it).",
            labels,
            when.timestamp(),
        )
        available = self._number(
            entry, "totalAvailableLicenseCount", "historicalUsageList.totalAvailableLicenseCount"
        )
        if available is not None:
            gauges.add(
                "citrix_licenses_month_available",
                "Licenses available in the month (historical usage).",
                labels,
                available,
            )
        fields = (
            ("cumulativeAssignedCount", "citrix_licenses_month_assigned",
             "Licenses assigned cumulatively up to this month, by assignment kind."),
            ("newAssignedCount", "citrix_licenses_month_newly_assigned",
             "Licenses newly assigned in the month, by assignment kind."),
            ("releasedCount", "citrix_licenses_month_released",
             "Licenses released in the month, by assignment kind."),
        )  # fmt: skip
        for assignment, key in ASSIGNMENTS:
            usage = entry.get(key)
            if not isinstance(usage, dict):
                continue
            for field, name, help_text in fields:
                value = self._number(usage, field, f"historicalUsageList.{key}.{field}")
                if value is not None:
                    gauges.add(name, help_text, labels, value, {"assignment": assignment})
        return gauges.families()

    # -- tolerant field access -----------------------------------------------------------

    def _label(self, data: dict[str, Any], key: str) -> str:
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
        self.ctx.issues.report("null" if value is None else "bad_type", key)
        return "unknown"

    def _number(self, data: dict[str, Any], key: str, path: str | None = None) -> float | None:
        value = data.get(key)
        if isinstance(value, bool) or value is None:
            self.ctx.issues.report("null" if value is None else "bad_type", path or key)
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            self.ctx.issues.report("bad_number", path or key, repr(value))
            return None

    def _object(
        self, data: dict[str, Any], key: str, null_expected: bool = False
    ) -> dict[str, Any] | None:
        value = data.get(key)
        if isinstance(value, dict):
            return value
        if value is None and null_expected:
            return None
        self.ctx.issues.report("null" if value is None else "bad_type", key)
        return None

    def _timestamp(self, data: dict[str, Any], key: str, path: str) -> float | None:
        value = data.get(key)
        if value is None:
            self.ctx.issues.report("null", path)
            return None
        try:
            return parse_timestamp(str(value)).timestamp()
        except ValueError:
            self.ctx.issues.report("bad_timestamp", path, repr(value))
            return None
