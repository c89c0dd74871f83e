"""Per-collector options: the `collectors:` section of a customer."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from typing import Any

from pydantic import Field, field_validator, model_validator

from exporter.config.errors import Loc, NestedError
from exporter.config.types import (
    CUSTOMER_ID_RE,
    Duration,
    Model,
    OptionalInterval,
    empty_if_none,
    normalise_api_url,
)


class CollectorConfig(Model):
    """Per-collector switch and optional interval (``None`` = use ``poll.interval``).

    Collectors with their own options subclass this (e.g. :class:`MonitorCollectorConfig`) and
    use the subclass as the field type in :class:`CollectorsConfig` and in the collector registry
    (``exporter/collector/registry.py``).
    """

    enabled: bool = True
    interval: OptionalInterval = None

    def interval_or(self, default: float) -> float:
        """Poll interval: this collector's own ``interval`` or ``default`` (poll.interval)."""
        return default if self.interval is None else self.interval


class MonitorCollectorConfig(CollectorConfig):
    """Options of the Monitor (OData) collector, sized for the documented concurrency limit."""

    max_pages: int = Field(default=500, ge=1, le=100_000)
    concurrency: int = Field(default=1, ge=1, le=8)
    overlap: Duration = 600.0
    desktop_groups_refresh: Duration = 600.0
    # Leave out state series whose value is 0 (big tenants: most states of most groups are 0).
    # Not set here: `poll.omit_zero_states`, filled in when the file is loaded (Config).
    omit_zero_states: bool = False


# Hosts of the Citrix Cloud console's own licensing APIs, observed by community tools and not
# documented by Citrix (README: "Observed licensing APIs"). Each collector takes its own `url`.
CLOUDLICENSE_URL = "https://cloudlicense.citrixworkspacesapi.net"
LICENSING_INSIGHTS_URL = "https://licensing.citrixworkspacesapi.net"
PARTNER_URL = "https://partner.citrixworkspacesapi.net"

_PRODUCT_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _check_path_template(
    value: str | None, allowed: Sequence[str], required: Sequence[str] = ()
) -> str | None:
    """Validate a path template such as ``/{customer_id}/licenseservers`` (None passes).

    Only the ``allowed`` ``{placeholder}``s may appear (no conversions or format specs), each
    of ``required`` must, and a query string (``?a=b``) may follow the path.
    """
    if value is None:
        return None
    if not value.startswith("/"):
        raise ValueError("must start with '/'")
    if "#" in value:
        raise ValueError("must not contain a fragment")
    try:
        parts = list(string.Formatter().parse(value))
    except ValueError:
        raise ValueError("has an unbalanced '{' or '}'") from None
    names: set[str] = set()
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in allowed or spec or conversion:
            choices = ", ".join("{" + item + "}" for item in allowed)
            raise ValueError(f"unknown placeholder {{{name}}}; allowed: {choices}")
        names.add(name)
    for name in required:
        if name not in names:
            raise ValueError(f"must contain {{{name}}}")
    return value


class ObservedCollectorConfig(CollectorConfig):
    """A collector of an undocumented API: off by default, host and paths overridable."""

    enabled: bool = False
    url: str

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        """A base URL like ``api_url``: scheme, host and optional path prefix."""
        return normalise_api_url(value)


class ProductsCollectorConfig(ObservedCollectorConfig):
    """Current usage of further cloud products (observed ``cloudlicenseusages`` call)."""

    url: str = CLOUDLICENSE_URL
    path: str = "/{customer_id}/cloudlicenseusages/products/{product}/current"
    products: list[str] = Field(
        default=["secureworkspaceaccess", "xenmobile"], min_length=1, max_length=32
    )

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str | None:
        return _check_path_template(value, ("customer_id", "product"), ("product",))

    @field_validator("products")
    @classmethod
    def _check_products(cls, value: list[str]) -> list[str]:
        """Product names go into URLs and the ``product`` label: a safe alphabet, no repeats."""
        problems: list[tuple[Loc, str]] = []
        seen: set[str] = set()
        for index, product in enumerate(value):
            if not _PRODUCT_RE.fullmatch(product):
                message = "must be 1-64 characters of letters, digits, '_', '.' or '-'"
                problems.append(((index,), message))
            elif product in seen:
                problems.append(((index,), f"duplicate product '{product}'"))
            seen.add(product)
        if problems:
            raise NestedError(problems)
        return value


class ConcurrentCollectorConfig(ObservedCollectorConfig):
    """The concurrent (CCU) license model summary (observed ``ccu/summary`` call)."""

    url: str = CLOUDLICENSE_URL
    path: str = (
        "/{customer_id}/license/enterprise/cloud/cvad/ccu/summary"
        "?UsageType=device&LicenseModel=Concurrent"
    )

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str | None:
        return _check_path_template(value, ("customer_id",))


class LicenseServersCollectorConfig(ObservedCollectorConfig):
    """Registered on-premises License Servers and their usage (observed License Usage Insights)."""

    url: str = LICENSING_INSIGHTS_URL
    servers_path: str = "/{customer_id}/licenseservers"
    usage_path: str | None = "/{customer_id}/licenseusagedata?date={month}"

    @field_validator("servers_path")
    @classmethod
    def _check_servers_path(cls, value: str) -> str | None:
        return _check_path_template(value, ("customer_id",))

    @field_validator("usage_path")
    @classmethod
    def _check_usage_path(cls, value: str | None) -> str | None:
        return _check_path_template(value, ("customer_id", "month"))


_PARTNER_PLACEHOLDERS = ("partner_id", "customer_id")


class PartnerCollectorConfig(ObservedCollectorConfig):
    """A partner's customers (seed 000). Citrix published no paths for the summaries and the
    per-customer lists: the four ``*_path`` defaults are this exporter's guesses, to be set
    to the real paths (``null`` skips a call). ``active_use`` adds the observed per-customer
    active-use call, one request per customer."""

    url: str = PARTNER_URL
    partner_id: str | None = None
    daas_summary_path: str | None = "/{partner_id}/licenseusage/partner/cloud/cvad/summary"
    daas_customers_path: str | None = "/{partner_id}/licenseusage/partner/cloud/cvad/customers"
    onprem_summary_path: str | None = "/{partner_id}/licenseusage/partner/onprem/cvad/summary"
    onprem_customers_path: str | None = "/{partner_id}/licenseusage/partner/onprem/cvad/customers"
    active_use: bool = False
    active_use_path: str = (
        "/{partner_id}/activeuse/partner/tenant/cloud/cvad/current?customer={tenant_id}"
    )
    active_use_concurrency: int = Field(default=4, ge=1, le=16)

    @field_validator("partner_id")
    @classmethod
    def _check_partner_id(cls, value: str | None) -> str | None:
        """Used in URLs like a customer id."""
        if value is not None and not CUSTOMER_ID_RE.fullmatch(value):
            raise ValueError("must be 1-64 characters of letters, digits, '_', '.' or '-'")
        return value

    @field_validator(
        "daas_summary_path", "daas_customers_path", "onprem_summary_path", "onprem_customers_path"
    )
    @classmethod
    def _check_paths(cls, value: str | None) -> str | None:
        return _check_path_template(value, _PARTNER_PLACEHOLDERS)

    @field_validator("active_use_path")
    @classmethod
    def _check_active_use_path(cls, value: str) -> str | None:
        return _check_path_template(value, (*_PARTNER_PLACEHOLDERS, "tenant_id"), ("tenant_id",))

    @model_validator(mode="after")
    def _check_some_call(self) -> PartnerCollectorConfig:
        """With every path null the collector would poll nothing."""
        paths = (
            self.daas_summary_path,
            self.daas_customers_path,
            self.onprem_summary_path,
            self.onprem_customers_path,
        )
        if self.enabled and all(path is None for path in paths):
            raise ValueError("set at least one of the *_path keys")
        return self


class CollectorsConfig(Model):
    """Which collectors run for a customer.

    Each field's default instance defines that collector's default ``enabled`` state, which also
    applies when the section is present but does not mention ``enabled``.
    """

    licensing: CollectorConfig = CollectorConfig(enabled=True)
    monitor: MonitorCollectorConfig = MonitorCollectorConfig(enabled=True)
    partner: PartnerCollectorConfig = PartnerCollectorConfig()
    products: ProductsCollectorConfig = ProductsCollectorConfig()
    concurrent: ConcurrentCollectorConfig = ConcurrentCollectorConfig()
    license_servers: LicenseServersCollectorConfig = LicenseServersCollectorConfig()

    @model_validator(mode="before")
    @classmethod
    def _apply_default_enabled(cls, data: Any) -> Any:
        """Keep ``partner: {interval: 1h}`` disabled, like an absent ``partner`` section."""
        if not isinstance(data, dict):
            return data
        result = dict(data)
        for name, field in cls.model_fields.items():
            value = empty_if_none(result.get(name, {}))
            if name in result and isinstance(value, dict) and "enabled" not in value:
                default = field.default
                if isinstance(default, CollectorConfig):
                    value = {**value, "enabled": default.enabled}
                result[name] = value
        return result

    def enabled(self) -> list[tuple[str, CollectorConfig]]:
        """``(name, config)`` of the enabled collectors, in declaration order."""
        pairs = ((name, getattr(self, name)) for name in type(self).model_fields)
        return [(name, cfg) for name, cfg in pairs if cfg.enabled]
