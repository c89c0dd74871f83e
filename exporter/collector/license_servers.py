"""License servers collector: on-premises License Servers registered with Citrix Cloud (seed
003), from the License Usage Insights API (observed, host licensing.citrixworkspacesapi.net).

* `GET {url}/{customer_id}/licenseservers`: `licenseServersStatus[]` with `fqdn`,
  `isPhoningHome`, `lastPhoningHomeTime`, `licenseExpirationDate`, `isCompliant`, `isCcu`,
  `isExpired`, ... One series per server and metric, labelled by `fqdn`.
* `GET {url}/{customer_id}/licenseusagedata?date=yyyy-MM` (the current UTC month):
  `skus[].features[].licenseServerUsages[]{fqdn, count, freeUsersCount}`: users per server and
  feature (summed over the SKUs that carry the feature), paid (count - freeUsersCount) and free.

A 404 on the server list means the customer has no License Server insights (not entitled); a
404 or 204 on the usage data only means no usage has been uploaded for the month yet.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.core import Metric

from ..config import LicenseServersCollectorConfig
from ..upstream.errors import NotEntitledError
from .base import Collector, GaugeSet
from .observed import (
    FQDN_LIMIT,
    UniqueKeys,
    flag,
    month_of,
    object_list,
    observed_url,
    text_label,
)

SERVERS_ENDPOINT = "license_servers_status"
USAGE_ENDPOINT = "license_servers_usage"
LABELS = ["customer_id", "fqdn"]
HELP_SUFFIX = (
    "Polled from the Citrix Cloud License Usage Insights API every license_servers interval."
)

# (field, metric, help) of the 0/1 gauges of a server.
FLAGS = (
    ("isPhoningHome", "citrix_license_server_phoning_home",
     "1 if the License Server currently sends usage data to Citrix Cloud (isPhoningHome)."),
    ("isCompliant", "citrix_license_server_compliant",
     "1 if the License Server's usage is within its licenses (isCompliant)."),
    ("isCcu", "citrix_license_server_ccu",
     "1 if the License Server serves concurrent (CCU) licenses (isCcu)."),
    ("isExpired", "citrix_license_server_expired",
     "1 if the License Server's licenses have expired (isExpired)."),
)  # fmt: skip
TIMES = (
    ("lastPhoningHomeTime", "citrix_license_server_last_phone_home_timestamp_seconds",
     "When the License Server last sent usage data to Citrix Cloud (lastPhoningHomeTime)."),
    ("licenseExpirationDate", "citrix_license_server_license_expiry_timestamp_seconds",
     "When the License Server's licenses expire (licenseExpirationDate)."),
)  # fmt: skip


class LicenseServersCollector(Collector[LicenseServersCollectorConfig]):
    name = "license_servers"

    async def poll(self) -> list[Metric]:
        gauges = GaugeSet(LABELS, HELP_SUFFIX)
        url = observed_url(
            self.config.url, self.config.servers_path, customer_id=self.ctx.customer_id
        )
        response = await self.ctx.api.get_json(SERVERS_ENDPOINT, url)
        if response.data is not None:  # 204: no server registered
            self._add_servers(gauges, response.data)
        if self.config.usage_path is not None:
            await self._add_usage(gauges, self.config.usage_path)
        return gauges.families()

    def _add_servers(self, gauges: GaugeSet, data: Any) -> None:
        fields = self.fields
        path = "licenseservers"
        servers = UniqueKeys(fields, f"{path}.fqdn")
        for server in object_list(fields, data, "licenseServersStatus", path):
            fqdn = text_label(fields, server, ("fqdn",), f"{path}.fqdn", FQDN_LIMIT)
            if fqdn is None or not servers.new(fqdn):
                continue
            labels = [self.ctx.customer_id, fqdn]
            for key, name, help_text in FLAGS:
                gauges.add(name, help_text, labels, flag(fields, server, key, f"{path}.{key}"))
            for key, name, help_text in TIMES:
                if server.get(key) is None:
                    continue  # never reported / no expiry: absent, not an issue
                gauges.add(name, help_text, labels, fields.timestamp(server, key, f"{path}.{key}"))

    async def _add_usage(self, gauges: GaugeSet, template: str) -> None:
        month = month_of(self.ctx.clock())
        url = observed_url(self.config.url, template, customer_id=self.ctx.customer_id, month=month)
        try:
            response = await self.ctx.api.get_json(USAGE_ENDPOINT, url)
        except NotEntitledError:
            return  # no usage uploaded for this month (yet)
        if response.data is None:
            return
        fields = self.fields
        path = "licenseusagedata"
        # (fqdn, feature) -> [paid, free], summed over the SKUs carrying the feature.
        users: dict[tuple[str, str], list[float]] = {}
        for sku in object_list(fields, response.data, "skus", path):
            for feature in object_list(fields, sku, "features", f"{path}.skus"):
                feature_id = text_label(
                    fields, feature, ("featureID",), f"{path}.skus.features.featureID"
                )
                if feature_id is None:
                    continue
                features = f"{path}.skus.features"
                usages = f"{features}.licenseServerUsages"
                for usage in object_list(fields, feature, "licenseServerUsages", features):
                    fqdn = text_label(fields, usage, ("fqdn",), f"{usages}.fqdn", FQDN_LIMIT)
                    count = fields.count(usage, "count", f"{usages}.count")
                    free = fields.count(usage, "freeUsersCount", f"{usages}.freeUsersCount")
                    if fqdn is None or count is None or free is None:
                        continue
                    totals = users.setdefault((fqdn, feature_id), [0.0, 0.0])
                    totals[0] += max(0.0, count - free)
                    totals[1] += free
        for (fqdn, feature_id), (paid, free) in users.items():
            labels = [self.ctx.customer_id, fqdn]
            for kind, value in (("paid", paid), ("free", free)):
                gauges.add(
                    "citrix_license_server_users",
                    "Users of a feature on the License Server this month, paid "
                    "(count - freeUsersCount) or free (freeUsersCount), summed over SKUs.",
                    labels,
                    value,
                    {"feature": feature_id, "kind": kind},
                )
