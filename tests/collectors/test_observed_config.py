"""Configuration of the observed-API collectors: defaults, overrides and error messages."""

from __future__ import annotations

import pytest

from exporter.config import (
    CLOUDLICENSE_URL,
    LICENSING_INSIGHTS_URL,
    PARTNER_URL,
    ConcurrentCollectorConfig,
    Config,
    ConfigError,
    LicenseServersCollectorConfig,
    PartnerCollectorConfig,
    ProductsCollectorConfig,
    parse_config,
)

HEAD = """\
customers:
  - customer_id: acme1234
    client_id: my-client
    client_secret: s3cr3t-Value-Zq8!
    collectors:
"""
OBSERVED = ("partner", "products", "concurrent", "license_servers")


def parse(collectors: str = "") -> Config:
    return parse_config(HEAD + collectors, "config.yml", {})


def error_of(collectors: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse(collectors)
    return str(info.value)


def test_defaults_are_off_and_point_at_the_observed_hosts():
    collectors = parse().customers[0].collectors
    assert [name for name, _ in collectors.enabled()] == ["licensing", "monitor"]
    assert collectors.products == ProductsCollectorConfig(
        enabled=False,
        url="https://cloudlicense.citrixworkspacesapi.net",
        path="/{customer_id}/cloudlicenseusages/products/{product}/current",
        products=["secureworkspaceaccess", "xenmobile"],
    )
    assert collectors.concurrent == ConcurrentCollectorConfig(
        enabled=False,
        url=CLOUDLICENSE_URL,
        path="/{customer_id}/license/enterprise/cloud/cvad/ccu/summary"
        "?UsageType=device&LicenseModel=Concurrent",
    )
    assert collectors.license_servers == LicenseServersCollectorConfig(
        enabled=False,
        url="https://licensing.citrixworkspacesapi.net",
        servers_path="/{customer_id}/licenseservers",
        usage_path="/{customer_id}/licenseusagedata?date={month}",
    )
    partner = collectors.partner
    assert isinstance(partner, PartnerCollectorConfig)
    assert (partner.enabled, partner.url, partner.partner_id) == (False, PARTNER_URL, None)
    assert partner.active_use is False and partner.active_use_concurrency == 4
    assert LICENSING_INSIGHTS_URL == "https://licensing.citrixworkspacesapi.net"
    assert PARTNER_URL == "https://partner.citrixworkspacesapi.net"


@pytest.mark.parametrize("name", OBSERVED)
def test_a_section_without_enabled_stays_off(name):
    collectors = parse(f"      {name}: {{interval: 1h}}\n").customers[0].collectors
    assert getattr(collectors, name).enabled is False
    assert getattr(collectors, name).interval == 3600.0


def test_every_option_can_be_set():
    text = """\
      products:
        enabled: true
        url: http://127.0.0.1:8080/sim/
        path: /v2/{customer_id}/products/{product}
        products: [secureworkspaceaccess, xenmobile, some.other-product_2]
      concurrent: {enabled: true, interval: 15m, url: "https://ccu.example.test",
                   path: "/{customer_id}/ccu?LicenseModel=Concurrent"}
      license_servers: {enabled: true, servers_path: "/ls/{customer_id}", usage_path: null}
      partner:
        enabled: true
        partner_id: partner-42
        daas_customers_path: /{partner_id}/tenants?offering=daas
        onprem_summary_path: null
        active_use: true
        active_use_concurrency: 8
        active_use_path: /{partner_id}/au?customer={tenant_id}
"""
    customer = parse(text).customers[0]
    collectors = customer.collectors
    assert [name for name, _ in collectors.enabled()] == [
        "licensing", "monitor", "partner", "products", "concurrent", "license_servers",
    ]  # fmt: skip
    assert collectors.products.url == "http://127.0.0.1:8080/sim"
    assert collectors.products.products[2] == "some.other-product_2"
    assert collectors.concurrent.interval_or(300.0) == 900.0
    assert collectors.license_servers.usage_path is None
    assert collectors.partner.partner_id == "partner-42"
    assert collectors.partner.onprem_summary_path is None
    assert collectors.partner.active_use_concurrency == 8


@pytest.mark.parametrize(
    ("collectors", "message"),
    [
        (
            "      products: {path: '/{customer_id}/current'}\n",
            "customers[0].collectors.products.path: must contain {product} (line 6)",
        ),
        (
            "      products: {path: '{customer_id}/x/{product}'}\n",
            "customers[0].collectors.products.path: must start with '/' (line 6)",
        ),
        (
            "      concurrent: {path: '/{tenant}/ccu'}\n",
            "customers[0].collectors.concurrent.path: unknown placeholder {tenant}; "
            "allowed: {customer_id} (line 6)",
        ),
        (
            "      concurrent: {path: '/{customer_id!r}/ccu'}\n",
            "customers[0].collectors.concurrent.path: unknown placeholder {customer_id}; "
            "allowed: {customer_id} (line 6)",
        ),
        (
            "      license_servers: {usage_path: '/{customer_id/usage'}\n",
            "customers[0].collectors.license_servers.usage_path: has an unbalanced '{' or '}' "
            "(line 6)",
        ),
        (
            "      license_servers: {url: 'licensing.example.test'}\n",
            "customers[0].collectors.license_servers.url: must be an absolute http:// or "
            "https:// URL (line 6)",
        ),
        (
            "      partner: {url: 'https://partner.example.test/?x=1'}\n",
            "customers[0].collectors.partner.url: must not contain a query string or fragment "
            "(line 6)",
        ),
        (
            "      partner: {partner_id: 'bad id'}\n",
            "customers[0].collectors.partner.partner_id: must be 1-64 characters of letters, "
            "digits, '_', '.' or '-' (line 6)",
        ),
        (
            "      partner: {active_use_path: '/{partner_id}/activeuse'}\n",
            "customers[0].collectors.partner.active_use_path: must contain {tenant_id} (line 6)",
        ),
        (
            "      partner: {active_use_concurrency: 0}\n",
            "customers[0].collectors.partner.active_use_concurrency: must be at least 1 (line 6)",
        ),
        (
            "      partner: {enabled: true, daas_summary_path: null, daas_customers_path: null,\n"
            "                onprem_summary_path: null, onprem_customers_path: null}\n",
            "customers[0].collectors.partner: set at least one of the *_path keys (line 6)",
        ),
        (
            "      products: {products: []}\n",
            "customers[0].collectors.products.products: must not be empty (line 6)",
        ),
        (
            "      products: {products: [xenmobile, 'bad/name', xenmobile]}\n",
            "customers[0].collectors.products.products[1]: must be 1-64 characters of letters, "
            "digits, '_', '.' or '-' (line 6)\n"
            "config.yml: customers[0].collectors.products.products[2]: duplicate product "
            "'xenmobile' (line 6)",
        ),
        (
            "      concurrent: {enabled: true, host: x}\n",
            "customers[0].collectors.concurrent.host: unknown key (line 6)",
        ),
    ],
)
def test_errors_name_the_key(collectors, message):
    assert error_of(collectors) == f"config.yml: {message}"
