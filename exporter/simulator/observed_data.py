"""What the simulator knows about a customer for the observed (undocumented) licensing APIs.

The concurrent (CCU) summary, further cloud products, registered on-premises License Servers
and their usage, and a partner's customers; see :mod:`exporter.simulator.observed` for the
answers built from it and ``docs/observed-apis.md`` for which shapes were observed and which
are this project's own choice. ``None`` (or a missing product) means "not entitled": 404.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class ProductUsage:
    """One cloud product's ``cloudlicenseusages/products/{product}/current`` figures."""

    product_name: str
    product_edition: str
    available: int
    used: int
    license_model: str = "UserDevice"
    next_expiry: datetime | None = None
    expiring_count: int = 0


@dataclass
class CcuPeak:
    assigned: int
    report_time: datetime


@dataclass
class CcuSummary:
    """The concurrent model's ``ccu/summary``: current usage and three peaks."""

    total: int
    assigned: int
    report_time: datetime
    last_24h_peak: CcuPeak
    month_peak: CcuPeak
    all_time_peak: CcuPeak


@dataclass
class LicenseServer:
    """One entry of ``licenseServersStatus`` (seed 003's registered License Server)."""

    fqdn: str
    host_id: str
    phoning_home: bool = True
    last_phone_home: datetime | None = None
    license_expiration: datetime | None = None
    compliant: bool = True
    ccu: bool = False
    expired: bool = False
    ever_reported: bool = True
    found_in_back_office: bool = True
    non_csp_license_installed: bool = False
    free: bool = False


@dataclass
class FeatureUsage:
    """One feature of one SKU in ``licenseusagedata``: (count, freeUsersCount) per server."""

    sku_id: str
    feature_id: str
    description: str
    servers: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass
class PartnerTenant:
    """One customer of a partner, in the on-premises and/or the DaaS lists."""

    tenant_id: str
    account_name: str
    onprem_users: int = 0
    onprem_free_users: int = 0
    daas_licenses: int = 0
    daas_users: int = 0
    ccu_active_use: int = 0
    ud_active_use: int = 0
    onprem: bool = True
    daas: bool = True

    @property
    def daas_overage(self) -> int:
        return max(0, self.daas_users - self.daas_licenses)


@dataclass
class PartnerData:
    """A partner's customers; the summaries are computed from them."""

    tenants: list[PartnerTenant] = field(default_factory=list)
    license_servers: int = 0


@dataclass
class ObservedData:
    """Everything the observed APIs answer for one customer (all 404 by default)."""

    ccu: CcuSummary | None = None
    products: dict[str, ProductUsage] = field(default_factory=dict)
    license_servers: list[LicenseServer] | None = None
    usage: dict[str, list[FeatureUsage]] = field(default_factory=dict)
    """License Server usage per month ``yyyy-MM``; a month without an entry answers 204."""
    partner: PartnerData | None = None


def make_partner(tenants: int, *, license_servers: int = 0) -> PartnerData:
    """A partner with ``tenants`` customers whose figures vary deterministically with the index:
    every seventh customer is in DaaS overage, and customer 0 has an unruly account name (a
    newline, a tab, surrounding spaces, more than 64 characters)."""
    result = PartnerData(license_servers=license_servers)
    for i in range(tenants):
        name = f"Customer {i:04d} Ltd"
        if i == 0:
            name = "  Ünïcode\nCustomer\t0000 with a very long account name that goes on and on  "
        licenses = 50 + 10 * (i % 5)
        result.tenants.append(
            PartnerTenant(
                tenant_id=f"tenant{i:04d}",
                account_name=name,
                onprem_users=20 + i % 30,
                onprem_free_users=i % 4,
                daas_licenses=licenses,
                daas_users=licenses + 3 if i % 7 == 0 else licenses - 1 - i % 11,
                ccu_active_use=i % 9,
                ud_active_use=10 + i % 13,
            )
        )
    return result
