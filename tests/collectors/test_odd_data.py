"""Odd upstream data is handled, counted and logged once, never a crash."""

from __future__ import annotations

import json

from aiohttp import web
from prometheus_client import generate_latest

from tests.support.helpers import make_config, value

ODD_CURRENT = {
    "customerId": "odd1",
    "totalUsageCount": "7",  # a number as a string
    "userLicenseUsage": None,
    "deviceLicenseUsage": {"totalUsageCount": 7, "releasedCount": None},
    "totalAvailableLicenseCount": 10,
    "remainingLicenseCount": 3,
    "timeStamp": "2024-01-01T00:00:00.1234567Z",
    "productName": None,
    "nextExpiredLicenses": {
        "nextExpiredTime": "2025-02-03T04:05:06.7654321+01:00",
        "totalCount": 10,
        "daysToExpire": 1,
    },
    "nextActivatingLicense": {"activatingTime": "not a date", "activatingCount": 2},
    "productEdition": "XAXDFull",
}


async def odd_upstream(request: web.Request) -> web.Response:
    if request.path.endswith("/tokens/clients"):
        return web.json_response(
            {"token_type": "bearer", "access_token": "odd-token", "expires_in": "soon"}
        )
    if request.path.endswith("/ud/current"):
        return web.Response(text=json.dumps(ODD_CURRENT), content_type="application/json")
    return web.Response(status=204)


async def test_null_fields_strings_and_bad_timestamps(aiohttp_server, exporter_factory, caplog):
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", odd_upstream)
    server = await aiohttp_server(app)
    config = make_config(
        str(server.make_url("")).rstrip("/"),
        [{"customer_id": "odd1", "client_id": "c", "client_secret": "s3cret-value"}],
    )
    exporter = await exporter_factory(config)
    for _ in range(2):
        assert await exporter.poller.run_all_once()
    text = generate_latest(exporter.registry).decode()
    labels = {"customer_id": "odd1", "product": "unknown", "edition": "XAXDFull"}
    assert value(text, "citrix_licenses_used", **labels) == 7
    assert value(text, "citrix_licenses_usage", assignment="device", **labels) == 7
    assert value(text, "citrix_licenses_usage", assignment="user", **labels) is None
    assert (
        value(text, "citrix_licenses_next_expiry_timestamp_seconds", **labels) == 1738551906.765432
    )
    assert value(text, "citrix_licenses_activating", **labels) == 2
    assert value(text, "citrix_licenses_next_activation_timestamp_seconds", **labels) is None
    issues = "citrix_upstream_data_issues_total"
    assert value(text, issues, customer_id="odd1", collector="licensing", issue="null") == 6
    assert (
        value(text, issues, customer_id="odd1", collector="licensing", issue="bad_timestamp") == 2
    )
    assert value(text, issues, customer_id="odd1", collector="token", issue="bad_number") == 1
    logged = [r for r in caplog.records if "unexpected upstream data" in r.getMessage()]
    assert (
        len(logged) == 5
    )  # productName, userLicenseUsage, releasedCount, activatingTime, expires_in
