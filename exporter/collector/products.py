"""Products collector: current license usage of further Citrix Cloud services (observed API).

`GET {url}/{customer_id}/cloudlicenseusages/products/{product}/current` for every configured
product (default `secureworkspaceaccess`, Secure Private Access, and `xenmobile`, Endpoint
Management); the answer has the fields of the documented DaaS `ud/current` call. Figures are
exported through the licensing collector's `citrix_licenses_*` metrics with the product's path
name as the `product` label, so the licensing alerts and dashboard cover them too.

A 404 for one product means the customer is not entitled to it: that product's series are
removed quietly (logged once) and the others stay. Only when every product answers 404 is the
poll "not entitled" (a state, not a failure: README "Not entitled").
"""

from __future__ import annotations

from typing import Any

from prometheus_client.core import Metric

from ..config import ProductsCollectorConfig
from ..log import LogOnce, get_logger
from ..upstream.errors import NotEntitledError
from .base import Collector, CollectorContext, GaugeSet
from .current_usage import add_current_usage
from .observed import observed_url

log = get_logger("products")

ENDPOINT = "licensing_product_current"
LABELS = ["customer_id", "product", "edition"]
HELP_SUFFIX = "Polled from the Citrix Cloud licensing API every products interval."
# The observed answer leaves these out; read them when present, as in ud/current.
OPTIONAL_SECTIONS = (
    "userLicenseUsage", "deviceLicenseUsage", "nextExpiredLicenses", "nextActivatingLicense",
)  # fmt: skip


class ProductsCollector(Collector[ProductsCollectorConfig]):
    name = "products"

    def __init__(self, ctx: CollectorContext, config: ProductsCollectorConfig) -> None:
        super().__init__(ctx, config)
        self._not_entitled: LogOnce[str] = LogOnce()

    async def poll(self) -> list[Metric]:
        gauges = GaugeSet(LABELS, HELP_SUFFIX)
        entitled = 0
        for product in self.config.products:
            url = observed_url(
                self.config.url,
                self.config.path,
                customer_id=self.ctx.customer_id,
                product=product,
            )
            try:
                response = await self.ctx.api.get_json(ENDPOINT, url)
            except NotEntitledError:
                self._log_not_entitled(product)
                continue
            entitled += 1
            self._not_entitled.clear(product)
            if response.data is None:  # 204: nothing to report for this product
                continue
            if not isinstance(response.data, dict):
                self.ctx.issues.report("bad_shape", f"{product}.current", "not a JSON object")
                continue
            self._add_product(gauges, product, response.data)
        if not entitled:
            raise NotEntitledError(
                f"{ENDPOINT}: HTTP 404 for every product ({', '.join(self.config.products)})",
                404,
            )
        return gauges.families()

    def _log_not_entitled(self, product: str) -> None:
        if self._not_entitled.first(product):
            log.info(
                "customer is not entitled to this product (HTTP 404); its series are removed, "
                "will keep checking at the normal interval",
                extra={"customer_id": self.ctx.customer_id, "product": product},
            )

    def _add_product(self, gauges: GaugeSet, product: str, data: dict[str, Any]) -> None:
        edition = self.fields.label(data, "productEdition", f"{product}.productEdition")
        add_current_usage(
            gauges,
            [self.ctx.customer_id, product, edition],
            data,
            self.fields,
            prefix=f"{product}.",
            optional=OPTIONAL_SECTIONS,
        )
