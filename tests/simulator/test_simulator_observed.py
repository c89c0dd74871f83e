"""The simulator's observed licensing APIs: exact shapes (the reference's "Licensing,
observed" fields), authentication, 403 for another customer's path, 404/204/400."""

from __future__ import annotations

import json
from typing import Any

import pytest

from exporter.simulator import create_app
from exporter.simulator.state import SimulatorState
from tests.support.observed_helpers import fixed_state
from tests.support.sim_client import Client, ClientFactory, signed_in

CID = "xingqit48867"


@pytest.fixture
def state() -> SimulatorState:
    return fixed_state(tenants=2)


@pytest.fixture
async def client(aiohttp_client: ClientFactory, state: SimulatorState) -> Client:
    return await aiohttp_client(create_app(state))


async def get(client: Client, path: str, **params: str) -> tuple[int, Any]:
    resp = await client.get(path, params=params, headers=await signed_in(client, CID))
    text = await resp.text()
    return resp.status, (json.loads(text) if text else None)


async def test_ccu_summary_shape(client: Client) -> None:
    status, body = await get(
        client,
        f"/{CID}/license/enterprise/cloud/cvad/ccu/summary",
        UsageType="device",
        LicenseModel="Concurrent",
    )
    assert status == 200
    assert body == {
        "currentCcu": {
            "totalLicenseCount": 200,
            "assignedLicenseCount": 57,
            "reportTime": "2030-06-15T11:50:00.0000000Z",
        },
        "last24HoursPeak": {
            "assignedLicenseCount": 83,
            "reportTime": "2030-06-15T07:00:00.0000000Z",
        },
        "monthPeak": {"assignedLicenseCount": 121, "reportTime": "2030-06-12T12:00:00.0000000Z"},
        "allTimePeak": {"assignedLicenseCount": 164, "reportTime": "2023-03-14T09:30:00.0000000Z"},
    }


async def test_product_shape_and_404(client: Client) -> None:
    status, body = await get(
        client, f"/{CID}/cloudlicenseusages/products/secureworkspaceaccess/current"
    )
    assert status == 200
    assert list(body) == [
        "customerId", "productName", "productEdition", "licenseModel",
        "totalAvailableLicenseCount", "totalUsageCount", "remainingLicenseCount",
        "nextExpiredLicenses",
    ]  # fmt: skip
    assert body["nextExpiredLicenses"] == {
        "nextExpiredTime": "2030-09-13T00:00:00.0000000Z",
        "totalCount": 100,
        "daysToExpire": 90,
    }
    status, body = await get(client, f"/{CID}/cloudlicenseusages/products/xenmobile/current")
    assert status == 404
    assert body["type"] == "https://errors-api.cloud.com/licensing/notFound"


async def test_license_servers_shape(client: Client) -> None:
    status, body = await get(client, f"/{CID}/licenseservers")
    assert status == 200
    silent = body["licenseServersStatus"][1]
    assert silent == {
        "hostID": "host-ls2",
        "fqdn": "ls2.branch.example.com",
        "isPhoningHome": False,
        "lastPhoningHomeTime": "2030-06-12T12:00:00.0000000Z",
        "isEverReported": True,
        "isFoundInBackOffice": True,
        "isNonCspLicenseInstalled": False,
        "isCcu": True,
        "isExpired": False,
        "licenseExpirationDate": "2030-07-05T00:00:00.0000000Z",
        "daysToExpire": 20,
        "isCompliant": False,
        "isLicenseServerFree": False,
    }


async def test_license_usage_shape_204_and_400(client: Client) -> None:
    status, body = await get(client, f"/{CID}/licenseusagedata", date="2030-06")
    assert status == 200
    [premium, trial, ccu] = body["skus"]
    assert premium["skuId"] == "CVAD_PREM_UD"
    [feature] = premium["features"]
    assert feature == {
        "featureID": "XDT_PLT_UD",
        "featureDescription": "Citrix Virtual Apps and Desktops Premium",
        "count": 150,
        "freeUsersCount": 50,
        "licenseServerUsages": [
            {"fqdn": "ls1.corp.example.com", "count": 120, "freeUsersCount": 20,
             "isLicenseServerFree": False},
            {"fqdn": "ls2.branch.example.com", "count": 30, "freeUsersCount": 30,
             "isLicenseServerFree": False},
        ],
    }  # fmt: skip
    assert (trial["skuId"], ccu["skuId"]) == ("CVAD_PREM_UD_TRIAL", "CVAD_ADV_CCU")
    assert (await get(client, f"/{CID}/licenseusagedata", date="2030-05")) == (204, None)
    status, body = await get(client, f"/{CID}/licenseusagedata", date="June")
    assert status == 400
    assert json.loads(body["error_description"])["Message"] == "Invalid time format."


async def test_partner_calls(client: Client) -> None:
    base = f"/{CID}/licenseusage/partner"
    assert (await get(client, f"{base}/onprem/cvad/summary")) == (
        200,
        {"totalUsers": 41, "paidUsers": 40, "freeUsers": 1, "licenseServers": 37, "customers": 2},
    )
    status, body = await get(client, f"{base}/cloud/cvad/customers")
    assert status == 200
    assert body["customers"][1] == {
        "orgId": "tenant0001",
        "accountName": "Customer 0001 Ltd",
        "totalLicenses": 60,
        "totalUsers": 58,
        "licenseOverage": 0,
    }
    assert (await get(client, f"{base}/cloud/cvad/summary")) == (
        200,
        {"totalCustomers": 2, "totalLicenses": 110, "totalUsers": 111, "totalOverage": 3},
    )
    status, body = await get(
        client, f"/{CID}/activeuse/partner/tenant/cloud/cvad/current", customer="tenant0001"
    )
    assert (status, body) == (200, {"ccuActiveUse": 1, "udActiveUse": 11})
    status, _ = await get(
        client, f"/{CID}/activeuse/partner/tenant/cloud/cvad/current", customer="nobody"
    )
    assert status == 404


async def test_another_customers_path_is_forbidden(client: Client, state: SimulatorState) -> None:
    status, body = await get(client, "/someone-else/licenseservers")
    assert (status, body["detail"]) == (403, "Access denied")
    state.customers[CID].observed.partner = None
    status, _ = await get(client, f"/{CID}/licenseusage/partner/cloud/cvad/summary")
    assert status == 404


async def test_observed_calls_need_a_token(client: Client) -> None:
    resp = await client.get(f"/{CID}/licenseservers", headers={"Accept": "application/json"})
    assert resp.status == 401
