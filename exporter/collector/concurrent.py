"""Concurrent collector: the concurrent-user (CCU) license model summary (observed API).

`GET {url}/{customer_id}/license/enterprise/cloud/cvad/ccu/summary?UsageType=device&
LicenseModel=Concurrent` answers `currentCcu{totalLicenseCount, assignedLicenseCount,
reportTime}` and three peaks, `last24HoursPeak`, `monthPeak` and `allTimePeak`, each
`{assignedLicenseCount, reportTime}`. A 404 means the customer has no concurrent licenses
(not entitled: `citrix_collector_entitled` 0, values removed, logged once; README "Not
entitled").
"""

from __future__ import annotations

from prometheus_client.core import Metric

from ..config import ConcurrentCollectorConfig
from ..upstream.errors import UpstreamError
from .base import Collector, GaugeSet
from .observed import observed_url

ENDPOINT = "licensing_ccu_summary"
LABELS = ["customer_id"]
HELP_SUFFIX = "Polled from the Citrix Cloud concurrent license summary every concurrent interval."
PEAKS = (("24h", "last24HoursPeak"), ("month", "monthPeak"), ("all_time", "allTimePeak"))


class ConcurrentCollector(Collector[ConcurrentCollectorConfig]):
    name = "concurrent"

    async def poll(self) -> list[Metric]:
        url = observed_url(self.config.url, self.config.path, customer_id=self.ctx.customer_id)
        response = await self.ctx.api.get_json(ENDPOINT, url)
        data = response.data
        if response.status == 204:
            return []
        if not isinstance(data, dict):
            self.ctx.issues.report("bad_shape", "ccu.summary", "not a JSON object")
            raise UpstreamError(f"{ENDPOINT}: response is not a JSON object")
        fields = self.fields
        labels = [self.ctx.customer_id]
        gauges = GaugeSet(LABELS, HELP_SUFFIX)
        current = fields.object(data, "currentCcu")
        if current is not None:
            gauges.add(
                "citrix_licenses_concurrent_available",
                "Concurrent licenses available (currentCcu.totalLicenseCount).",
                labels,
                fields.count(current, "totalLicenseCount", "currentCcu.totalLicenseCount"),
            )
            gauges.add(
                "citrix_licenses_concurrent_assigned",
                "Concurrent licenses in use at the last report (currentCcu.assignedLicenseCount).",
                labels,
                fields.count(current, "assignedLicenseCount", "currentCcu.assignedLicenseCount"),
            )
            gauges.add(
                "citrix_licenses_concurrent_report_timestamp_seconds",
                "When Citrix last measured the concurrent usage (currentCcu.reportTime).",
                labels,
                fields.timestamp(current, "reportTime", "currentCcu.reportTime"),
            )
        for window, key in PEAKS:
            peak = fields.object(data, key)
            if peak is None:
                continue
            extra = {"window": window}
            gauges.add(
                "citrix_licenses_concurrent_peak",
                "Highest concurrent license usage in the window: 24h (last24HoursPeak), "
                "month (monthPeak) or all_time (allTimePeak).",
                labels,
                fields.count(peak, "assignedLicenseCount", f"{key}.assignedLicenseCount"),
                extra,
            )
            gauges.add(
                "citrix_licenses_concurrent_peak_timestamp_seconds",
                "When the window's concurrent usage peak was measured (reportTime).",
                labels,
                fields.timestamp(peak, "reportTime", f"{key}.reportTime"),
                extra,
            )
        return gauges.families()
