"""Partner collector: a Citrix partner's customers' license usage (seed 000).

Citrix's licensing overview promises partners, for on-premises Citrix Virtual Apps and Desktops,
a summary (total, paid and free users, License Servers, customers) and per-customer figures
(account name, total, paid and free users), and for Citrix DaaS a summary (customers,
licenses, users, overage) and per-customer figures (organization id, licenses, users,
overage). **Citrix published no paths or field names for these**: the four `*_path` options
default to this exporter's guesses and must be pointed at the real calls (docs/observed-apis.md
lists the shapes read). The one observed partner call, active use per
customer (`/{partnerId}/activeuse/partner/tenant/cloud/cvad/current?customer=...`, answering
`ccuActiveUse` and `udActiveUse`), is optional (`active_use`), as it costs one request per
customer.

Series: a handful per partner plus six per customer (two more with `active_use`); nothing
per user. Customers are labelled `tenant_id` (their id); their account name (sanitised: valid,
printable, trimmed, at most 64 characters) is on one info series per customer,
`citrix_partner_tenant_info{tenant_id, tenant_name} 1`, joined by `tenant_id`, so free text
sits on no figure. Users are `kind="paid"` and `kind="free"` only: their sum is the total (a
`kind="total"` beside them made `sum` count every user twice). `customer_id` stays the
partner's own id, as on every other metric. A 404 on one call skips that part; 404 on every call is
"not entitled" (the account is not a partner; a state, not a failure: README "Not entitled").
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import Metric

from ..config import PartnerCollectorConfig
from ..log import LogOnce, get_logger
from ..upstream.client import ApiResponse
from ..upstream.errors import NotEntitledError
from .base import Collector, CollectorContext, GaugeSet
from .observed import NAME_LIMIT, UniqueKeys, object_list, observed_url, text_label

log = get_logger("partner")

LABELS = ["customer_id"]
TENANT_LABELS = ["customer_id", "tenant_id"]
INFO_LABELS = ["customer_id", "tenant_id", "tenant_name"]
HELP_SUFFIX = "Polled from the Citrix Cloud partner licensing API every partner interval."
ID_KEYS = ("customerId", "orgId")
NAME_KEYS = ("accountName", "customerName")
LIST_KEY = "customers"

# The parts only: the total (totalUsers) is their sum.
ONPREM_USERS = (("paid", "paidUsers"), ("free", "freeUsers"))


@dataclass
class Tenant:
    tenant_id: str
    name: str
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return [self.tenant_id]


class PartnerCollector(Collector[PartnerCollectorConfig]):
    name = "partner"

    def __init__(self, ctx: CollectorContext, config: PartnerCollectorConfig) -> None:
        super().__init__(ctx, config)
        self.partner_id = self.config.partner_id or ctx.customer_id
        self._missing_logged: LogOnce[str] = LogOnce()
        self._calls = 0
        self._not_found = 0

    async def poll(self) -> list[Metric]:
        self._calls = self._not_found = 0
        config = self.config
        summary = GaugeSet(LABELS, HELP_SUFFIX)
        tenants = GaugeSet(TENANT_LABELS, HELP_SUFFIX)
        seen: dict[str, str] = {}  # tenant id -> its name, as first listed
        listed = False

        data = await self._get("partner_onprem_summary", config.onprem_summary_path)
        if self._is_object(data, "onprem_summary"):
            self._onprem_summary(summary, data)
        data = await self._get("partner_daas_summary", config.daas_summary_path)
        if self._is_object(data, "daas_summary"):
            self._daas_summary(summary, data)
        data = await self._get("partner_onprem_customers", config.onprem_customers_path)
        if data is not None:
            listed = True
            for tenant in self._tenants(data, "onprem_customers"):
                seen.setdefault(tenant.tenant_id, tenant.name)
                self._onprem_tenant(tenants, tenant)
        data = await self._get("partner_daas_customers", config.daas_customers_path)
        if data is not None:
            listed = True
            daas = self._tenants(data, "daas_customers")
            for tenant in daas:
                seen.setdefault(tenant.tenant_id, tenant.name)
                self._daas_tenant(tenants, tenant)
            if config.active_use:
                await self._active_use(tenants, daas)
        if self._calls and self._not_found == self._calls:
            raise NotEntitledError(
                f"partner: HTTP 404 for every partner call of partner id {self.partner_id}", 404
            )
        if listed:
            summary.add(
                "citrix_partner_customers",
                "Customers of the partner listed by the per-customer calls (on-premises and "
                "DaaS lists together, each customer counted once).",
                [self.ctx.customer_id],
                len(seen),
            )
        return summary.families() + tenants.families() + self._tenant_info(seen)

    def _tenant_info(self, names: dict[str, str]) -> list[Metric]:
        info = GaugeSet(INFO_LABELS, HELP_SUFFIX)
        for tenant_id, name in names.items():
            info.add(
                "citrix_partner_tenant_info",
                "Always 1 for each of the partner's customers; tenant_name is its account "
                "name. Join on tenant_id: the figures carry the id only.",
                [self.ctx.customer_id, tenant_id, name],
                1,
            )
        return info.families()

    def _is_object(self, data: Any, path: str) -> bool:
        """True for a JSON object; anything but None (not called, 204, 404) is reported."""
        if isinstance(data, dict):
            return True
        if data is not None:
            self.ctx.issues.report("bad_shape", path, "not a JSON object")
        return False

    async def _get(self, endpoint: str, template: str | None) -> Any:
        """The JSON of one partner call; None when not configured, 204 or 404."""
        if template is None:
            return None
        self._calls += 1
        response = await self._request(endpoint, template, {})
        if response is None:
            self._not_found += 1
            return None
        return response.data

    async def _request(
        self, endpoint: str, template: str, values: dict[str, str], quiet: bool = False
    ) -> ApiResponse | None:
        """The response, or None for a 404 (logged once per endpoint unless `quiet`)."""
        url = observed_url(
            self.config.url,
            template,
            partner_id=self.partner_id,
            customer_id=self.ctx.customer_id,
            **values,
        )
        try:
            response = await self.ctx.api.get_json(endpoint, url)
        except NotEntitledError:
            if not quiet and self._missing_logged.first(endpoint):
                log.info(
                    "partner call answered 404; skipping it (check the configured path)",
                    extra={"customer_id": self.ctx.customer_id, "endpoint": endpoint},
                )
            return None
        self._missing_logged.clear(endpoint)
        return response

    # -- summaries -------------------------------------------------------------------------

    def _onprem_summary(self, gauges: GaugeSet, data: dict[str, Any]) -> None:
        labels = [self.ctx.customer_id]
        for kind, key in ONPREM_USERS:
            gauges.add(
                "citrix_partner_onprem_users",
                "Users of on-premises Citrix Virtual Apps and Desktops across the "
                "partner's customers, paid or free (their sum is the total), as the summary "
                "states.",
                labels,
                self.fields.count(data, key, f"onprem_summary.{key}"),
                {"kind": kind},
            )
        for key, name, help_text in (
            ("licenseServers", "citrix_partner_onprem_license_servers",
             "License Servers of the partner's on-premises customers, as the summary states."),
            ("customers", "citrix_partner_onprem_customers",
             "Customers with on-premises usage, as the partner summary states."),
        ):  # fmt: skip
            gauges.add(
                name, help_text, labels, self.fields.count(data, key, f"onprem_summary.{key}")
            )

    def _daas_summary(self, gauges: GaugeSet, data: dict[str, Any]) -> None:
        labels = [self.ctx.customer_id]
        for key, name, help_text in (
            ("totalCustomers", "citrix_partner_daas_customers",
             "Current Citrix DaaS customers of the partner, as the summary states."),
            ("totalLicenses", "citrix_partner_daas_licenses",
             "Citrix DaaS licenses across the partner's customers, as the summary states."),
            ("totalUsers", "citrix_partner_daas_users",
             "Citrix DaaS users across the partner's customers, as the summary states."),
            ("totalOverage", "citrix_partner_daas_overage",
             "Citrix DaaS license overage across the partner's customers, as the summary "
             "states."),
        ):  # fmt: skip
            gauges.add(name, help_text, labels, self.fields.count(data, key, f"daas_summary.{key}"))

    # -- per customer ----------------------------------------------------------------------

    def _tenants(self, data: Any, path: str) -> list[Tenant]:
        """The customers of one list with a usable id; a repeated id is reported and skipped."""
        tenants: list[Tenant] = []
        ids = UniqueKeys(self.fields, f"{path}.customerId")
        for entry in object_list(self.fields, data, LIST_KEY, path):
            name = text_label(self.fields, entry, NAME_KEYS, f"{path}.accountName")
            tenant_id = self._tenant_id(entry, path) or name
            if tenant_id is not None and ids.new(tenant_id):
                tenants.append(Tenant(tenant_id, name or "unknown", entry))
        return tenants

    def _tenant_id(self, entry: dict[str, Any], path: str) -> str | None:
        for key in ID_KEYS:
            value = entry.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if isinstance(value, str) and (
                clean := self.fields.label_text(value, f"{path}.customerId", NAME_LIMIT, tidy=True)
            ):
                return clean
        self.ctx.issues.report("null", f"{path}.customerId")
        return None

    def _onprem_tenant(self, gauges: GaugeSet, tenant: Tenant) -> None:
        labels = [self.ctx.customer_id, *tenant.labels]
        for kind, key in ONPREM_USERS:
            gauges.add(
                "citrix_partner_tenant_onprem_users",
                "Users of on-premises Citrix Virtual Apps and Desktops of one of the "
                "partner's customers: paid or free (their sum is the total).",
                labels,
                self.fields.count(tenant.figures, key, f"onprem_customers.{key}"),
                {"kind": kind},
            )

    def _daas_tenant(self, gauges: GaugeSet, tenant: Tenant) -> None:
        labels = [self.ctx.customer_id, *tenant.labels]
        figures = tenant.figures
        licenses = self.fields.count(figures, "totalLicenses", "daas_customers.totalLicenses")
        users = self.fields.count(figures, "totalUsers", "daas_customers.totalUsers")
        if "licenseOverage" in figures:
            overage = self.fields.count(figures, "licenseOverage", "daas_customers.licenseOverage")
        elif licenses is not None and users is not None:
            overage = max(0.0, users - licenses)
        else:
            overage = None
        for name, help_text, value in (
            ("citrix_partner_tenant_daas_licenses",
             "Citrix DaaS licenses one of the partner's customers owns.", licenses),
            ("citrix_partner_tenant_daas_users",
             "Citrix DaaS users of one of the partner's customers.", users),
            ("citrix_partner_tenant_daas_overage",
             "Citrix DaaS license overage of one of the partner's customers (licenseOverage, "
             "else max(0, users - licenses)).", overage),
        ):  # fmt: skip
            gauges.add(name, help_text, labels, value)

    async def _active_use(self, gauges: GaugeSet, tenants: list[Tenant]) -> None:
        """The observed per-customer active-use call, `active_use_concurrency` at a time."""
        limit = asyncio.Semaphore(self.config.active_use_concurrency)

        async def fetch(tenant: Tenant) -> tuple[Tenant, ApiResponse | None]:
            async with limit:
                # 404: this customer has no DaaS active use; nothing to log per customer.
                response = await self._request(
                    "partner_active_use",
                    self.config.active_use_path,
                    {"tenant_id": tenant.tenant_id},
                    quiet=True,
                )
                return tenant, response

        tasks = [asyncio.ensure_future(fetch(tenant)) for tenant in tenants]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:  # one failure fails the poll: stop the remaining requests
                task.cancel()
            raise
        for tenant, response in results:
            if response is None or not isinstance(response.data, dict):
                continue
            labels = [self.ctx.customer_id, *tenant.labels]
            for model, key in (("ccu", "ccuActiveUse"), ("ud", "udActiveUse")):
                gauges.add(
                    "citrix_partner_tenant_daas_active_users",
                    "Active use of Citrix DaaS by one of the partner's customers, by "
                    "license model: ccu (ccuActiveUse) or ud (udActiveUse).",
                    labels,
                    self.fields.count(response.data, key, f"active_use.{key}"),
                    {"model": model},
                )
