"""The products, concurrent and license_servers collectors against the simulator's observed
APIs: every metric's value, 404 handling, and what they send."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from exporter.simulator.scenarios import HEALTHY_SERVER, SILENT_SERVER
from exporter.simulator.state import SimulatorState
from tests.support.helpers import SEED_CUSTOMER, samples, value
from tests.support.observed_helpers import (
    DAY,
    NOW,
    NOW_TS,
    fixed_state,
    observed_config,
    rescrape,
    scrape,
)

CID = {"customer_id": SEED_CUSTOMER}
SWA = {**CID, "product": "secureworkspaceaccess", "edition": "Standard"}


@pytest.fixture
def sim_state() -> SimulatorState:
    return fixed_state()


def midnight_in(days: int) -> float:
    day = (NOW + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def series(text: str, prefix: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {key: v for key, v in samples(text).items() if key[0].startswith(prefix)}


# -- products ----------------------------------------------------------------------------------


async def test_products_values_and_a_404_product_removed_quietly(
    base_url, exporter_factory, sim_state, caplog
):
    caplog.set_level(logging.INFO, logger="citrix_exporter")
    config = observed_config(base_url, products={})
    exporter, text = await scrape(exporter_factory, config)
    assert value(text, "citrix_licenses_available", **SWA) == 100
    assert value(text, "citrix_licenses_used", **SWA) == 42
    assert value(text, "citrix_licenses_remaining", **SWA) == 58
    assert value(text, "citrix_licenses_overage", **SWA) == 0
    assert value(text, "citrix_licenses_next_expiry_timestamp_seconds", **SWA) == midnight_in(90)
    assert value(text, "citrix_licenses_expiring", **SWA) == 100
    # xenmobile answers 404: no series, no data issue, collector up, logged once at info.
    assert 'product="xenmobile"' not in text
    assert len(series(text, "citrix_licenses_")) == 6
    assert value(text, "citrix_up", collector="products") == 1
    assert "citrix_upstream_data_issues_total{" not in text
    assert (  # its own interval, not the licensing collector's
        "# HELP citrix_licenses_available Licenses available (totalAvailableLicenseCount). "
        "Polled from the Citrix Cloud licensing API every products interval.\n" in text
    )
    text = await rescrape(exporter)
    assert value(text, "citrix_up", collector="products") == 1
    assert sim_state.count("/products/xenmobile/current") == 2
    logged = [r for r in caplog.records if "not entitled to this product" in r.getMessage()]
    assert len(logged) == 1 and logged[0].levelname == "INFO"
    assert (
        value(text, "citrix_api_requests_total", endpoint="licensing_product_current", code="404")
        == 2
    )


async def test_products_entitlement_lost_removes_only_that_product(
    base_url, exporter_factory, sim_state
):
    products = sim_state.customers[SEED_CUSTOMER].observed.products
    products["xenmobile"] = products["secureworkspaceaccess"]
    exporter, text = await scrape(exporter_factory, observed_config(base_url, products={}))
    assert value(text, "citrix_licenses_used", product="xenmobile") == 42
    del products["secureworkspaceaccess"]
    text = await rescrape(exporter)
    assert value(text, "citrix_licenses_used", product="xenmobile") == 42
    assert 'product="secureworkspaceaccess"' not in text
    assert value(text, "citrix_up", collector="products") == 1


async def test_products_all_404_is_not_entitled(base_url, exporter_factory, sim_state):
    sim_state.customers[SEED_CUSTOMER].observed.products.clear()
    _, text = await scrape(exporter_factory, observed_config(base_url, products={}))
    # Not entitled is a state, not a failure (issue 14): up, and entitled 0.
    assert value(text, "citrix_up", collector="products") == 1
    assert value(text, "citrix_collector_entitled", collector="products") == 0
    assert "citrix_licenses_available{" not in text


async def test_products_configurable_list_and_path(base_url, exporter_factory, sim_state):
    config = observed_config(
        base_url,
        products={
            "products": ["secureworkspaceaccess"],
            "path": "/{customer_id}/cloudlicenseusages/products/{product}/current",
        },
    )
    _, text = await scrape(exporter_factory, config)
    assert value(text, "citrix_licenses_used", **SWA) == 42
    assert sim_state.count("/xenmobile/current") == 0
    [request] = [r for r in sim_state.requests if "cloudlicenseusages" in r.path]
    assert request.authorization and request.authorization.startswith("CwsAuth Bearer=")
    assert request.customer_id == SEED_CUSTOMER


# -- concurrent --------------------------------------------------------------------------------


async def test_concurrent_values(base_url, exporter_factory, sim_state):
    _, text = await scrape(exporter_factory, observed_config(base_url, concurrent={}))
    assert value(text, "citrix_licenses_concurrent_available", **CID) == 200
    assert value(text, "citrix_licenses_concurrent_assigned", **CID) == 57
    assert value(text, "citrix_licenses_concurrent_report_timestamp_seconds", **CID) == (
        NOW_TS - 600
    )
    peaks = {"24h": (83, NOW_TS - 5 * 3600), "month": (121, NOW_TS - 3 * DAY)}
    peaks["all_time"] = (164, datetime(2023, 3, 14, 9, 30, tzinfo=UTC).timestamp())
    for window, (count, when) in peaks.items():
        assert value(text, "citrix_licenses_concurrent_peak", window=window, **CID) == count
        assert (
            value(text, "citrix_licenses_concurrent_peak_timestamp_seconds", window=window, **CID)
            == when
        )
    assert len(series(text, "citrix_licenses_concurrent_")) == 9
    [request] = [r for r in sim_state.requests if r.path.endswith("/ccu/summary")]
    assert request.path == f"/{SEED_CUSTOMER}/license/enterprise/cloud/cvad/ccu/summary"
    assert request.query == {"UsageType": "device", "LicenseModel": "Concurrent"}


async def test_concurrent_404_is_not_entitled(base_url, exporter_factory, sim_state):
    sim_state.customers[SEED_CUSTOMER].observed.ccu = None
    _, text = await scrape(exporter_factory, observed_config(base_url, concurrent={}))
    # Not entitled is a state, not a failure (issue 14): up, and entitled 0.
    assert value(text, "citrix_up", collector="concurrent") == 1
    assert value(text, "citrix_collector_entitled", collector="concurrent") == 0
    assert "citrix_licenses_concurrent_available{" not in text


# -- license servers ---------------------------------------------------------------------------


async def test_license_server_values(base_url, exporter_factory, sim_state):
    _, text = await scrape(exporter_factory, observed_config(base_url, license_servers={}))
    ls1 = {**CID, "fqdn": HEALTHY_SERVER}
    ls2 = {**CID, "fqdn": SILENT_SERVER}
    expected = {
        "citrix_license_server_phoning_home": (1, 0),
        "citrix_license_server_compliant": (1, 0),
        "citrix_license_server_ccu": (0, 1),
        "citrix_license_server_expired": (0, 0),
        "citrix_license_server_last_phone_home_timestamp_seconds": (
            NOW_TS - 2 * 3600,
            NOW_TS - 3 * DAY,
        ),
        "citrix_license_server_license_expiry_timestamp_seconds": (
            midnight_in(200),
            midnight_in(20),
        ),
    }
    for name, (healthy, silent) in expected.items():
        assert value(text, name, **ls1) == healthy, name
        assert value(text, name, **ls2) == silent, name
    users = {
        (HEALTHY_SERVER, "XDT_PLT_UD", "paid"): 105,  # 120 - 20 free, plus 5 in a second SKU
        (HEALTHY_SERVER, "XDT_PLT_UD", "free"): 20,
        (SILENT_SERVER, "XDT_PLT_UD", "paid"): 0,
        (SILENT_SERVER, "XDT_PLT_UD", "free"): 30,
        (SILENT_SERVER, "XDT_ADV_CCU", "paid"): 15,
        (SILENT_SERVER, "XDT_ADV_CCU", "free"): 0,
    }
    for (fqdn, feature, kind), count in users.items():
        assert (
            value(text, "citrix_license_server_users", fqdn=fqdn, feature=feature, kind=kind)
            == count
        )
    assert len(series(text, "citrix_license_server_")) == 2 * 6 + len(users)
    assert value(text, "citrix_up", collector="license_servers") == 1
    [usage] = [r for r in sim_state.requests if r.path.endswith("/licenseusagedata")]
    assert usage.query == {"date": "2030-06"}


async def test_license_servers_without_usage_this_month(base_url, exporter_factory, sim_state):
    sim_state.customers[SEED_CUSTOMER].observed.usage.clear()  # 204
    _, text = await scrape(exporter_factory, observed_config(base_url, license_servers={}))
    assert "citrix_license_server_users{" not in text
    assert value(text, "citrix_license_server_phoning_home", fqdn=SILENT_SERVER) == 0
    assert value(text, "citrix_up", collector="license_servers") == 1


async def test_license_servers_404_is_not_entitled(base_url, exporter_factory, sim_state):
    sim_state.customers[SEED_CUSTOMER].observed.license_servers = None
    _, text = await scrape(exporter_factory, observed_config(base_url, license_servers={}))
    # Not entitled is a state, not a failure (issue 14): up, and entitled 0.
    assert value(text, "citrix_up", collector="license_servers") == 1
    assert value(text, "citrix_collector_entitled", collector="license_servers") == 0
    assert "citrix_license_server_" not in text


async def test_license_servers_usage_path_can_be_switched_off(
    base_url, exporter_factory, sim_state
):
    config = observed_config(base_url, license_servers={"usage_path": None})
    _, text = await scrape(exporter_factory, config)
    assert sim_state.count("/licenseusagedata") == 0
    assert value(text, "citrix_license_server_phoning_home", fqdn=HEALTHY_SERVER) == 1


# -- odd data ----------------------------------------------------------------------------------


async def test_odd_license_server_entries_are_skipped_and_counted(aiohttp_server, exporter_factory):
    from aiohttp import web

    body = {
        "licenseServersStatus": [
            {"fqdn": "ok.example.com", "isPhoningHome": "true", "isCompliant": None,
             "isCcu": 0, "isExpired": False, "lastPhoningHomeTime": "yesterday",
             "licenseExpirationDate": None},
            {"fqdn": "ok.example.com", "isPhoningHome": False},
            {"fqdn": "bad\nname.example.com\t", "isPhoningHome": 1, "isCompliant": True,
             "isCcu": False, "isExpired": False},
            {"fqdn": None},
            "not an object",
        ]
    }  # fmt: skip

    async def handler(request: web.Request) -> web.Response:
        if request.path.endswith("/tokens/clients"):
            return web.json_response({"access_token": "t", "expires_in": "3600"})
        return web.json_response(body)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = await aiohttp_server(app)
    url = str(server.make_url("")).rstrip("/")
    config = observed_config(url, license_servers={"usage_path": None})
    _, text = await scrape(exporter_factory, config)
    assert value(text, "citrix_up", collector="license_servers") == 1
    assert value(text, "citrix_license_server_phoning_home", fqdn="ok.example.com") == 1
    assert value(text, "citrix_license_server_ccu", fqdn="ok.example.com") == 0
    assert value(text, "citrix_license_server_compliant", fqdn="ok.example.com") is None
    assert value(text, "citrix_license_server_phoning_home", fqdn="bad name.example.com") == 1
    assert "citrix_license_server_last_phone_home_timestamp_seconds{" not in text
    issues = {
        dict(labels)["issue"]: v
        for (name, labels), v in samples(text).items()
        if name == "citrix_upstream_data_issues_total"
    }
    assert issues == {"bad_shape": 1, "bad_timestamp": 1, "duplicate": 1, "null": 2}
