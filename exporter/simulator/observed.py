"""The observed (undocumented) licensing APIs of the Citrix Cloud console, under the base URL.

Citrix serves these from other hosts (``cloudlicense.``, ``licensing.`` and
``partner.citrixworkspacesapi.net``); the simulator serves every one of them under its single
base URL, and tests point each collector's ``url`` at it. Shapes:

* observed by community tools (reference "Licensing, observed"): the concurrent summary, the
  further cloud products, License Server status and usage, partner active use;
* **this project's own choice** (Citrix published neither paths nor fields): the partner
  summaries and per-customer lists. They match the exporter's default paths and the fields it
  reads, and docs/observed-apis.md marks them [unknown — configurable].

The customer or partner id in the path must be the authenticated customer's (403 otherwise,
as a token of another customer gets). Data comes from ``SimCustomer.observed``; missing data
answers 404, which the exporter reads as "not entitled".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from . import errors
from .licensing import format_timestamp, parse_month
from .observed_data import (
    CcuPeak,
    LicenseServer,
    ObservedData,
    PartnerData,
    PartnerTenant,
    ProductUsage,
)
from .state import CUSTOMER_KEY, STATE_KEY, SimCustomer

# Observed paths, relative to the host (cloudlicense.citrixworkspacesapi.net).
CCU_SUMMARY_PATH = "/{customer_id}/license/enterprise/cloud/cvad/ccu/summary"
PRODUCT_CURRENT_PATH = "/{customer_id}/cloudlicenseusages/products/{product}/current"
# Observed, host licensing.citrixworkspacesapi.net.
LICENSE_SERVERS_PATH = "/{customer_id}/licenseservers"
LICENSE_USAGE_PATH = "/{customer_id}/licenseusagedata"
# Observed, host partner.citrixworkspacesapi.net.
ACTIVE_USE_PATH = "/{partner_id}/activeuse/partner/tenant/cloud/cvad/current"
# Not published by Citrix: this project's choice (the exporter's configurable defaults).
DAAS_SUMMARY_PATH = "/{partner_id}/licenseusage/partner/cloud/cvad/summary"
DAAS_CUSTOMERS_PATH = "/{partner_id}/licenseusage/partner/cloud/cvad/customers"
ONPREM_SUMMARY_PATH = "/{partner_id}/licenseusage/partner/onprem/cvad/summary"
ONPREM_CUSTOMERS_PATH = "/{partner_id}/licenseusage/partner/onprem/cvad/customers"


def _customer(request: web.Request, key: str = "customer_id") -> SimCustomer | web.Response:
    """The authenticated customer if the path names it, else a 403 response."""
    customer = request[CUSTOMER_KEY]
    if request.match_info[key] != customer.customer_id:
        return errors.forbidden()
    return customer


def _observed(request: web.Request, key: str = "customer_id") -> ObservedData | web.Response:
    customer = _customer(request, key)
    return customer if isinstance(customer, web.Response) else customer.observed


def _partner(request: web.Request) -> PartnerData | web.Response:
    observed = _observed(request, "partner_id")
    if isinstance(observed, web.Response):
        return observed
    if observed.partner is None:
        return errors.not_found(request.path)
    return observed.partner


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else format_timestamp(moment)


def _peak(peak: CcuPeak) -> dict[str, Any]:
    return {"assignedLicenseCount": peak.assigned, "reportTime": format_timestamp(peak.report_time)}


# -- cloudlicense: concurrent model and further products ------------------------------------


async def ccu_summary_handler(request: web.Request) -> web.Response:
    """``GET /{customerId}/license/enterprise/cloud/cvad/ccu/summary`` (observed shape)."""
    observed = _observed(request)
    if isinstance(observed, web.Response):
        return observed
    ccu = observed.ccu
    if ccu is None:
        return errors.not_found(request.path)
    return web.json_response(
        {
            "currentCcu": {
                "totalLicenseCount": ccu.total,
                "assignedLicenseCount": ccu.assigned,
                "reportTime": format_timestamp(ccu.report_time),
            },
            "last24HoursPeak": _peak(ccu.last_24h_peak),
            "monthPeak": _peak(ccu.month_peak),
            "allTimePeak": _peak(ccu.all_time_peak),
        }
    )


def _days(moment: datetime, now: datetime) -> int:
    """Calendar days (UTC) from ``now`` to ``moment``, like ``daysToExpire`` of ud/current."""
    return (moment.astimezone(UTC).date() - now.astimezone(UTC).date()).days


def product_usage(customer_id: str, usage: ProductUsage, now: datetime) -> dict[str, Any]:
    """The observed ``cloudlicenseusages/products/{product}/current`` body."""
    expired: dict[str, Any] | None = None
    if usage.next_expiry is not None:
        expired = {
            "nextExpiredTime": format_timestamp(usage.next_expiry),
            "totalCount": usage.expiring_count,
            "daysToExpire": _days(usage.next_expiry, now),
        }
    return {
        "customerId": customer_id,
        "productName": usage.product_name,
        "productEdition": usage.product_edition,
        "licenseModel": usage.license_model,
        "totalAvailableLicenseCount": usage.available,
        "totalUsageCount": usage.used,
        "remainingLicenseCount": max(0, usage.available - usage.used),
        "nextExpiredLicenses": expired,
    }


async def product_current_handler(request: web.Request) -> web.Response:
    """``GET /{customerId}/cloudlicenseusages/products/{product}/current``; 404 when the
    customer is not entitled to the product."""
    customer = _customer(request)
    if isinstance(customer, web.Response):
        return customer
    usage = customer.observed.products.get(request.match_info["product"])
    if usage is None:
        return errors.not_found(request.path)
    now = request.app[STATE_KEY].now()
    return web.json_response(product_usage(customer.customer_id, usage, now))


# -- licensing: License Usage Insights --------------------------------------------------------


def license_server_status(server: LicenseServer, now: datetime) -> dict[str, Any]:
    days = None
    if server.license_expiration is not None:
        days = _days(server.license_expiration, now)
    return {
        "hostID": server.host_id,
        "fqdn": server.fqdn,
        "isPhoningHome": server.phoning_home,
        "lastPhoningHomeTime": _stamp(server.last_phone_home),
        "isEverReported": server.ever_reported,
        "isFoundInBackOffice": server.found_in_back_office,
        "isNonCspLicenseInstalled": server.non_csp_license_installed,
        "isCcu": server.ccu,
        "isExpired": server.expired,
        "licenseExpirationDate": _stamp(server.license_expiration),
        "daysToExpire": days,
        "isCompliant": server.compliant,
        "isLicenseServerFree": server.free,
    }


async def license_servers_handler(request: web.Request) -> web.Response:
    """``GET /{customerId}/licenseservers`` (observed shape)."""
    observed = _observed(request)
    if isinstance(observed, web.Response):
        return observed
    if observed.license_servers is None:
        return errors.not_found(request.path)
    now = request.app[STATE_KEY].now()
    return web.json_response(
        {"licenseServersStatus": [license_server_status(s, now) for s in observed.license_servers]}
    )


async def license_usage_handler(request: web.Request) -> web.Response:
    """``GET /{customerId}/licenseusagedata?date=yyyy-MM`` (observed shape); 400 on a bad
    date, 204 for a month without data, 404 without License Server insights."""
    observed = _observed(request)
    if isinstance(observed, web.Response):
        return observed
    if observed.license_servers is None:
        return errors.not_found(request.path)
    month = request.query.get("date")
    if parse_month(month) is None:
        return errors.licensing_validation(errors.INVALID_TIME_FORMAT)
    features = observed.usage.get(str(month))
    if not features:
        return web.Response(status=204)
    skus: dict[str, list[dict[str, Any]]] = {}
    for feature in features:
        servers = [
            {
                "fqdn": fqdn,
                "count": count,
                "freeUsersCount": free,
                "isLicenseServerFree": False,
            }
            for fqdn, (count, free) in feature.servers.items()
        ]
        skus.setdefault(feature.sku_id, []).append(
            {
                "featureID": feature.feature_id,
                "featureDescription": feature.description,
                "count": sum(count for count, _ in feature.servers.values()),
                "freeUsersCount": sum(free for _, free in feature.servers.values()),
                "licenseServerUsages": servers,
            }
        )
    return web.json_response(
        {"skus": [{"skuId": sku, "features": items} for sku, items in skus.items()]}
    )


# -- partner -----------------------------------------------------------------------------------


async def active_use_handler(request: web.Request) -> web.Response:
    """``GET /{partnerId}/activeuse/partner/tenant/cloud/cvad/current?customer=...``
    (observed shape); 404 for a customer the partner does not have in DaaS."""
    partner = _partner(request)
    if isinstance(partner, web.Response):
        return partner
    wanted = request.query.get("customer")
    for tenant in partner.tenants:
        if tenant.tenant_id == wanted and tenant.daas:
            return web.json_response(
                {"ccuActiveUse": tenant.ccu_active_use, "udActiveUse": tenant.ud_active_use}
            )
    return errors.not_found(request.path)


async def onprem_summary_handler(request: web.Request) -> web.Response:
    """Partner on-premises CVAD summary: [unknown] path and shape, this project's choice."""
    partner = _partner(request)
    if isinstance(partner, web.Response):
        return partner
    tenants = [t for t in partner.tenants if t.onprem]
    free = sum(t.onprem_free_users for t in tenants)
    total = sum(t.onprem_users for t in tenants)
    return web.json_response(
        {
            "totalUsers": total,
            "paidUsers": total - free,
            "freeUsers": free,
            "licenseServers": partner.license_servers,
            "customers": len(tenants),
        }
    )


async def daas_summary_handler(request: web.Request) -> web.Response:
    """Partner DaaS summary: [unknown] path and shape, this project's choice."""
    partner = _partner(request)
    if isinstance(partner, web.Response):
        return partner
    tenants = [t for t in partner.tenants if t.daas]
    return web.json_response(
        {
            "totalCustomers": len(tenants),
            "totalLicenses": sum(t.daas_licenses for t in tenants),
            "totalUsers": sum(t.daas_users for t in tenants),
            "totalOverage": sum(t.daas_overage for t in tenants),
        }
    )


def _onprem_customer(t: PartnerTenant) -> dict[str, Any]:
    """Partner on-premises CVAD figures of one customer: [unknown], this project's choice."""
    return {
        "customerId": t.tenant_id,
        "accountName": t.account_name,
        "totalUsers": t.onprem_users,
        "paidUsers": t.onprem_users - t.onprem_free_users,
        "freeUsers": t.onprem_free_users,
    }


def _daas_customer(t: PartnerTenant) -> dict[str, Any]:
    """Partner DaaS figures of one customer (organization id first, as seed 000 lists them):
    [unknown], this project's choice."""
    return {
        "orgId": t.tenant_id,
        "accountName": t.account_name,
        "totalLicenses": t.daas_licenses,
        "totalUsers": t.daas_users,
        "licenseOverage": t.daas_overage,
    }


def _customers_handler(
    listed: Callable[[PartnerTenant], bool], row: Callable[[PartnerTenant], dict[str, Any]]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A handler answering ``{"customers": [row(t) for the partner's listed tenants]}``."""

    async def handler(request: web.Request) -> web.Response:
        partner = _partner(request)
        if isinstance(partner, web.Response):
            return partner
        return web.json_response({"customers": [row(t) for t in partner.tenants if listed(t)]})

    return handler


onprem_customers_handler = _customers_handler(lambda t: t.onprem, _onprem_customer)
daas_customers_handler = _customers_handler(lambda t: t.daas, _daas_customer)


ROUTES = (
    (CCU_SUMMARY_PATH, ccu_summary_handler),
    (PRODUCT_CURRENT_PATH, product_current_handler),
    (LICENSE_SERVERS_PATH, license_servers_handler),
    (LICENSE_USAGE_PATH, license_usage_handler),
    (ACTIVE_USE_PATH, active_use_handler),
    (DAAS_SUMMARY_PATH, daas_summary_handler),
    (DAAS_CUSTOMERS_PATH, daas_customers_handler),
    (ONPREM_SUMMARY_PATH, onprem_summary_handler),
    (ONPREM_CUSTOMERS_PATH, onprem_customers_handler),
)


def setup_routes(app: web.Application) -> None:
    """Register the observed endpoints (authenticated by the app middleware)."""
    for path, handler in ROUTES:
        app.router.add_get(path, handler, allow_head=False)
