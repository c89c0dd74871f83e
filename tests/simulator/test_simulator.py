"""Tests of the Citrix Cloud simulator against the documented contract (seeds 001 and 002)."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from exporter.simulator import (
    STATE_KEY,
    LicenseScenario,
    SimCustomer,
    SimulatorState,
    create_app,
    demo_state,
    seed_state,
)
from tests.support.sim_client import Client, ClientFactory, api_headers, get_token, post_token

CURRENT = "/licensing/license/enterprise/cloud/cvad/ud/current"
HISTORICAL = "/licensing/license/enterprise/cloud/cvad/ud/historicalusage"
SEED_ID = "xingqit48867"
SEED_NOW = datetime(2021, 12, 19, 2, 56, 22, 21546, tzinfo=UTC)

SEED_001_CURRENT: dict[str, Any] = {
    "customerId": "xingqit48867",
    "totalUsageCount": 3,
    "userLicenseUsage": {"totalUsageCount": 3, "releasedCount": 0},
    "deviceLicenseUsage": {"totalUsageCount": 3, "releasedCount": 0},
    "totalAvailableLicenseCount": 25,
    "remainingLicenseCount": 22,
    "timeStamp": "2021-12-19T02:56:22.0215460Z",
    "productName": "XenDesktop",
    "nextExpiredLicenses": {
        "nextExpiredTime": "2023-05-10T00:00:00.0000000Z",
        "totalCount": 25,
        "daysToExpire": 507,
    },
    "nextActivatingLicense": None,
    "productEdition": "XAXDFull",
}


def _seed_month(stamp: str, available: int) -> tuple[dict[str, Any], dict[str, Any]]:
    usage = {"cumulativeAssignedCount": 3, "newAssignedCount": 0, "releasedCount": 0}
    combined = {
        "cumulativeAssignedCount": 3,
        "newAssignedCount": 0,
        "totalAvailableLicenseCount": available,
        "timeStamp": stamp,
        "releasedCount": 0,
    }
    detailed = {
        "timeStamp": stamp,
        "totalAvailableLicenseCount": available,
        "deviceLicenseUsage": dict(usage),
        "userLicenseUsage": dict(usage),
    }
    return combined, detailed


_SEED_MONTHS = [
    _seed_month("2021-10-01T00:00:00.0000000Z", 50),
    _seed_month("2021-11-01T00:00:00.0000000Z", 50),
    _seed_month("2021-12-01T00:00:00.0000000Z", 25),
]
SEED_002_HISTORICAL: dict[str, Any] = {
    "customerId": "xingqit48867",
    "historicalUsageType": "Monthly",
    "productEdition": "XAXDFull",
    "xenAppXenDesktopHistoricalUsageList": [c for c, _ in _SEED_MONTHS],
    "historicalUsageList": [d for _, d in _SEED_MONTHS],
}

UNAUTHORIZED_BODY = {
    "type": "https://errors-api.cloud.com/common/authentication",
    "detail": "Missing or invalid authentication details",
    "parameters": [{"name": "reason", "value": "REASON"}],
}
FORBIDDEN_BODY = {
    "type": "https://errors-api.cloud.com/common/authorization",
    "detail": "Access denied",
}
INTERNAL_BODY = {
    "type": "https://errors-api.cloud.com/systemlog/internalerror",
    "detail": "There was a internal issue",
}


def unauthorized(reason: str) -> dict[str, Any]:
    body = json.loads(json.dumps(UNAUTHORIZED_BODY))
    body["parameters"][0]["value"] = reason
    assert isinstance(body, dict)
    return body


def not_found(path: str) -> dict[str, Any]:
    return {
        "type": "https://errors-api.cloud.com/licensing/notFound",
        "detail": "resource not found",
        "parameters": [{"name": "entityType", "value": path}],
    }


@pytest.fixture
def state() -> SimulatorState:
    s = seed_state()
    s.now = lambda: SEED_NOW
    other = SimCustomer("other-cust", "other-client", "other-secret", LicenseScenario())
    s.customers[other.customer_id] = other
    return s


@pytest.fixture
async def client(aiohttp_client: ClientFactory, state: SimulatorState) -> Client:
    return await aiohttp_client(create_app(state))


async def api_get(client: Client, path: str, **params: str) -> tuple[int, Any, Any]:
    token = await get_token(client)
    resp = await client.get(path, params=params, headers=api_headers(token))
    text = await resp.text()
    return resp.status, (json.loads(text) if text else None), resp


# --- token endpoint -------------------------------------------------------------------------


async def test_token_happy_path(client: Client, state: SimulatorState) -> None:
    resp = await post_token(client)
    assert resp.status == 200
    body = await resp.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == "3600"
    assert isinstance(body["expires_in"], str)
    assert len(body["access_token"]) >= 32
    assert state.issued_tokens[body["access_token"]].customer_id == SEED_ID
    uuid.UUID(resp.headers["Citrix-TransactionId"])


async def test_token_root_and_lifetime(client: Client, state: SimulatorState) -> None:
    state.faults.token_lifetime = 120
    resp = await client.post(
        "/cctrustoauth2/root/tokens/clients",
        data="grant_type=client_credentials&client_id=seed-client&client_secret=seed-secret-Zq8%21",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status == 200
    body = await resp.json()
    assert body["expires_in"] == "120"
    assert state.issued_tokens[body["access_token"]].expires_at == SEED_NOW + timedelta(seconds=120)


async def test_token_unsupported_grant_type(client: Client) -> None:
    resp = await client.post(
        f"/cctrustoauth2/{SEED_ID}/tokens/clients",
        data={"grant_type": "password", "client_id": "seed-client", "client_secret": "x"},
    )
    assert resp.status == 400
    assert await resp.json() == {"error": "unsupported_grant_type"}


@pytest.mark.parametrize(
    ("customer_id", "client_id", "secret"),
    [
        (SEED_ID, "seed-client", "wrong-secret"),
        (SEED_ID, "nobody", "seed-secret-Zq8!"),
        ("other-cust", "seed-client", "seed-secret-Zq8!"),
        ("no-such-customer", "seed-client", "seed-secret-Zq8!"),
        (SEED_ID, "seed-client", ""),
    ],
)
async def test_token_invalid_client(
    client: Client, state: SimulatorState, customer_id: str, client_id: str, secret: str
) -> None:
    resp = await post_token(client, customer_id, client_id, secret)
    assert resp.status == 400
    text = await resp.text()
    assert json.loads(text) == {
        "error": "invalid_client",
        "error_description": "Invalid client id or client secret.",
    }
    assert "seed-secret" not in text
    assert not state.issued_tokens


async def test_secret_never_recorded(client: Client, state: SimulatorState) -> None:
    await get_token(client)
    assert state.count("/tokens/clients", "POST") == 1
    assert "seed-secret" not in repr(state.requests)
    assert "seed-secret" not in repr(state.customers)
    resp = await client.get("/_simulator/requests")
    assert "seed-secret" not in await resp.text()


async def test_token_error_fault(client: Client, state: SimulatorState) -> None:
    state.faults.token_error_next = 1
    resp = await post_token(client)
    assert resp.status == 500
    assert await resp.json() == INTERNAL_BODY
    assert state.faults.token_error_next == 0
    await get_token(client)


# --- authentication, authorisation, content negotiation ----------------------------------------


async def test_401_missing(client: Client) -> None:
    for headers in (
        {"Accept": "application/json", "Citrix-CustomerId": SEED_ID},
        {"Accept": "application/json", "Citrix-CustomerId": SEED_ID, "Authorization": ""},
    ):
        resp = await client.get(CURRENT, headers=headers)
        assert resp.status == 401
        assert await resp.json() == unauthorized("missing")


@pytest.mark.parametrize(
    "authorization",
    ["CwsAuth Bearer=not-a-token", "Bearer something", "CwsAuth Bearer=", "Basic abc"],
)
async def test_401_invalid(client: Client, authorization: str) -> None:
    resp = await client.get(
        CURRENT,
        headers={
            "Accept": "application/json",
            "Authorization": authorization,
            "Citrix-CustomerId": SEED_ID,
        },
    )
    assert resp.status == 401
    assert await resp.json() == unauthorized("invalid")


async def test_scheme_case_insensitive(client: Client) -> None:
    token = await get_token(client)
    headers = api_headers(token)
    headers["Authorization"] = f"CWSAuth bearer={token}"
    resp = await client.get(CURRENT, headers=headers)
    assert resp.status == 200


async def test_expired_token(client: Client, state: SimulatorState) -> None:
    token = await get_token(client)
    state.now = lambda: SEED_NOW + timedelta(seconds=3600)
    resp = await client.get(CURRENT, headers=api_headers(token))
    assert resp.status == 401
    assert await resp.json() == unauthorized("invalid")


async def test_403_wrong_customer(client: Client) -> None:
    token = await get_token(client)
    resp = await client.get(CURRENT, headers=api_headers(token, "other-cust"))
    assert resp.status == 403
    assert await resp.json() == FORBIDDEN_BODY
    headers = api_headers(token)
    del headers["Citrix-CustomerId"]
    resp = await client.get(CURRENT, headers=headers)
    assert resp.status == 403


@pytest.mark.parametrize(
    "accept", [None, "text/html", "*/*", "application/xml", "application/json;q=0"]
)
async def test_406_not_acceptable(client: Client, accept: str | None) -> None:
    token = await get_token(client)
    headers = api_headers(token)
    if accept is None:
        del headers["Accept"]
        resp = await client.get(CURRENT, headers=headers, skip_auto_headers=["Accept"])
    else:
        headers["Accept"] = accept
        resp = await client.get(CURRENT, headers=headers)
    assert resp.status == 406


@pytest.mark.parametrize(
    "accept",
    ["application/json", "text/plain, application/json; charset=utf-8", "APPLICATION/JSON;q=0.5"],
)
async def test_accept_variants(client: Client, accept: str) -> None:
    token = await get_token(client)
    headers = api_headers(token)
    headers["Accept"] = accept
    resp = await client.get(CURRENT, headers=headers)
    assert resp.status == 200


# --- licensing ---------------------------------------------------------------------------------


async def test_seed_current_is_exactly_seed_001(client: Client) -> None:
    status, body, resp = await api_get(client, CURRENT)
    assert status == 200
    assert body == SEED_001_CURRENT
    assert json.dumps(body) == json.dumps(SEED_001_CURRENT)  # same key order at every level
    assert body["nextActivatingLicense"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z", body["timeStamp"])
    assert resp.headers["Content-Type"].startswith("application/json")
    uuid.UUID(resp.headers["Citrix-TransactionId"])


async def test_current_activation_and_overage(client: Client, state: SimulatorState) -> None:
    lic = state.customers[SEED_ID].licensing
    lic.user_used, lic.device_used, lic.available = 30, 28, 25
    lic.next_activation = datetime(2022, 1, 1, 12, tzinfo=UTC)
    lic.activating_count = 10
    lic.next_expiry = None
    status, body, _ = await api_get(client, CURRENT)
    assert status == 200
    assert body["totalUsageCount"] == 28
    assert body["remainingLicenseCount"] == 0
    assert body["nextExpiredLicenses"] is None
    assert body["nextActivatingLicense"] == {
        "activatingTime": "2022-01-01T12:00:00.0000000Z",
        "activatingCount": 10,
    }


async def test_seed_historical_is_exactly_seed_002(client: Client) -> None:
    status, body, _ = await api_get(client, HISTORICAL, startDate="2021-10", endDate="2021-12")
    assert status == 200
    assert body == SEED_002_HISTORICAL
    assert json.dumps(body) == json.dumps(SEED_002_HISTORICAL)  # same key order at every level


async def test_historical_range_filter(client: Client) -> None:
    status, body, _ = await api_get(client, HISTORICAL, startDate="2021-11", endDate="2022-03")
    assert status == 200
    stamps = [m["timeStamp"] for m in body["historicalUsageList"]]
    assert stamps == ["2021-11-01T00:00:00.0000000Z", "2021-12-01T00:00:00.0000000Z"]
    assert len(body["xenAppXenDesktopHistoricalUsageList"]) == 2


@pytest.mark.parametrize(
    "params",
    [
        {"startDate": "2021-10"},
        {"endDate": "2021-10"},
        {},
        {"startDate": "2021/10", "endDate": "2021-12"},
        {"startDate": "2021-10", "endDate": "2021-13"},
        {"startDate": "2021-10-01", "endDate": "2021-12"},
        {"startDate": "21-10", "endDate": "2021-12"},
    ],
)
async def test_historical_invalid_format(client: Client, params: dict[str, str]) -> None:
    status, body, _ = await api_get(client, HISTORICAL, **params)
    assert status == 400
    assert body == {
        "error_description": (
            '{"Code":400,"Message":"Invalid time format.","Details":"Invalid time format."}'
        )
    }
    assert json.loads(body["error_description"])["Code"] == 400


async def test_historical_start_after_end(client: Client) -> None:
    status, body, _ = await api_get(client, HISTORICAL, startDate="2021-12", endDate="2021-10")
    assert status == 400
    assert body == {
        "error_description": (
            '{"Code":400,"Message":"StartDate can\'t be later than EndDate.",'
            '"Details":"StartDate can\'t be later than EndDate."}'
        )
    }


async def test_historical_no_data_204(client: Client) -> None:
    token = await get_token(client)
    resp = await client.get(
        HISTORICAL,
        params={"startDate": "2020-01", "endDate": "2020-12"},
        headers=api_headers(token),
    )
    assert resp.status == 204
    assert await resp.read() == b""
    assert "Citrix-TransactionId" in resp.headers


@pytest.mark.parametrize("path", [CURRENT, HISTORICAL])
async def test_not_entitled_404(client: Client, state: SimulatorState, path: str) -> None:
    state.customers[SEED_ID].licensing.entitled = False
    status, body, _ = await api_get(client, path, startDate="2021-10", endDate="2021-12")
    assert status == 404
    assert body == not_found(path)


async def test_unknown_path_404(client: Client) -> None:
    status, body, _ = await api_get(client, "/personalizati")
    assert status == 404
    assert body == not_found("/personalizati")
    resp = await client.post(CURRENT, headers={"Accept": "application/json"})
    assert resp.status == 404


# --- faults ------------------------------------------------------------------------------------


async def test_throttle_with_retry_after(client: Client, state: SimulatorState) -> None:
    token = await get_token(client)
    state.faults.throttle_next = 2
    state.faults.retry_after = "7"
    for _ in range(2):
        resp = await client.get(CURRENT, headers=api_headers(token))
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "7"
        body = await resp.json()
        assert body["detail"] == "Too Many Requests"
        assert body["type"].endswith("throttled")
    assert state.faults.throttle_next == 0
    resp = await client.get(CURRENT, headers=api_headers(token))
    assert resp.status == 200


async def test_throttle_without_retry_after(client: Client, state: SimulatorState) -> None:
    state.faults.throttle_next = 1
    resp = await client.get(CURRENT, headers={"Accept": "application/json"})
    assert resp.status == 429
    assert "Retry-After" not in resp.headers
    # Throttling comes before authentication; the token endpoint is not throttled.
    await get_token(client)
    assert state.faults.throttle_next == 0


async def test_error_fault_500(client: Client, state: SimulatorState) -> None:
    token = await get_token(client)
    state.faults.error_next = 1
    resp = await client.get(CURRENT, headers=api_headers(token))
    assert resp.status == 500
    assert await resp.json() == INTERNAL_BODY
    assert state.faults.error_next == 0
    resp = await client.get(CURRENT, headers=api_headers(token))
    assert resp.status == 200


async def test_revoke_tokens(client: Client, state: SimulatorState) -> None:
    token = await get_token(client)
    state.faults.revoke_tokens = True
    resp = await client.get(CURRENT, headers=api_headers(token))
    assert resp.status == 401
    assert await resp.json() == unauthorized("invalid")
    assert state.faults.revoke_tokens is False
    fresh = await get_token(client)
    resp = await client.get(CURRENT, headers=api_headers(fresh))
    assert resp.status == 200
    state.revoke_all_tokens()
    resp = await client.get(CURRENT, headers=api_headers(fresh))
    assert resp.status == 401
    # A token fetched after the revocation was requested is not caught by it.
    state.faults.revoke_tokens = True
    newest = await get_token(client)
    resp = await client.get(CURRENT, headers=api_headers(newest))
    assert resp.status == 200


async def test_delay(client: Client, state: SimulatorState) -> None:
    token = await get_token(client)
    state.faults.delay_seconds = 0.05
    started = time.monotonic()
    resp = await client.get(CURRENT, headers=api_headers(token))
    assert resp.status == 200
    assert time.monotonic() - started >= 0.05


# --- admin and request log ---------------------------------------------------------------------


async def test_admin_faults(client: Client, state: SimulatorState) -> None:
    resp = await client.get("/_simulator/faults")
    assert resp.status == 200
    assert await resp.json() == {
        "throttle_next": 0,
        "retry_after": None,
        "error_next": 0,
        "token_error_next": 0,
        "delay_seconds": 0.0,
        "token_lifetime": 3600,
        "revoke_tokens": False,
        "reject_apply": 0,
        "next_link_mode": "absolute",
        "odata_page_size": 1000,
    }
    resp = await client.post(
        "/_simulator/faults", json={"throttle_next": 3, "retry_after": "5", "delay_seconds": 0}
    )
    assert resp.status == 200
    assert (await resp.json())["throttle_next"] == 3
    assert state.faults.throttle_next == 3
    assert state.faults.retry_after == "5"

    resp = await client.post("/_simulator/faults", json={"bogus": 1, "error_next": 2})
    assert resp.status == 400
    assert state.faults.error_next == 0
    for bad in ({"error_next": "2"}, {"revoke_tokens": 1}, {"throttle_next": -1}, [1]):
        resp = await client.post("/_simulator/faults", json=bad)
        assert resp.status == 400, bad


async def test_admin_revoke(client: Client, state: SimulatorState) -> None:
    token = await get_token(client)
    resp = await client.post("/_simulator/faults", json={"revoke_tokens": True})
    assert resp.status == 200
    assert not state.issued_tokens
    resp = await client.get(CURRENT, headers=api_headers(token))
    assert resp.status == 401


async def test_request_log(client: Client, state: SimulatorState) -> None:
    token = await get_token(client)
    await client.get(CURRENT, headers=api_headers(token))
    await client.get(
        HISTORICAL,
        params={"startDate": "2021-10", "endDate": "2021-12"},
        headers=api_headers(token),
    )
    await client.get(CURRENT, headers={"Accept": "application/json"})
    assert state.count() == 4
    assert state.count("/ud/current") == 2
    assert state.count("/ud/current", "get") == 2
    assert state.count("/tokens/clients", "GET") == 0
    assert [r.status for r in state.requests] == [200, 200, 200, 401]
    hist = state.requests[2]
    assert hist.query == {"startDate": "2021-10", "endDate": "2021-12"}
    assert hist.customer_id == SEED_ID
    assert hist.authorization == f"CwsAuth Bearer={token}"
    assert state.requests[0].customer_id == SEED_ID

    resp = await client.get("/_simulator/requests")
    assert await resp.json() == {
        "total": 4,
        "by_path": {f"/cctrustoauth2/{SEED_ID}/tokens/clients": 1, CURRENT: 2, HISTORICAL: 1},
    }
    assert state.count() == 4  # admin calls are not recorded


async def test_state_key(client: Client, state: SimulatorState) -> None:
    assert client.app is not None
    assert client.app[STATE_KEY] is state


# --- scenarios ---------------------------------------------------------------------------------


def test_seed_days_to_expire_follows_clock() -> None:
    from exporter.simulator.licensing import current_usage

    s = seed_state()
    lic = s.customers[SEED_ID].licensing
    body = current_usage(SEED_ID, lic, datetime(2023, 5, 9, 23, 59, tzinfo=UTC))
    assert body["nextExpiredLicenses"]["daysToExpire"] == 1


def test_default_history_generated() -> None:
    lic = LicenseScenario(available=100, user_used=40, device_used=50)
    assert len(lic.history) == 12
    assert lic.history[-1].user_cumulative == 40
    assert lic.history[-1].device_cumulative == 50
    assert all(m.month.day == 1 for m in lic.history)
    assert lic.history == sorted(lic.history, key=lambda m: m.month)
    assert LicenseScenario(history=[]).history == []


async def test_demo_state(aiohttp_client: ClientFactory) -> None:
    now = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
    state = demo_state(now)
    state.now = lambda: now
    assert set(state.customers) == {"acme-demo", "globex-demo", "initech-demo"}
    client = await aiohttp_client(create_app(state))
    bodies: dict[str, dict[str, Any]] = {}
    for cid in state.customers:
        token = await get_token(client, cid, f"{cid}-client", f"{cid}-secret")
        resp = await client.get(CURRENT, headers=api_headers(token, cid))
        assert resp.status == 200
        bodies[cid] = await resp.json()
        resp = await client.get(
            HISTORICAL,
            params={"startDate": "2024-04", "endDate": "2025-03"},
            headers=api_headers(token, cid),
        )
        assert resp.status == 200
        assert len((await resp.json())["historicalUsageList"]) == 12

    overage = [
        c for c, b in bodies.items() if b["totalUsageCount"] > b["totalAvailableLicenseCount"]
    ]
    assert overage == ["globex-demo"]
    assert bodies["globex-demo"]["remainingLicenseCount"] == 0
    assert bodies["globex-demo"]["totalAvailableLicenseCount"] == 100

    expiring = [c for c, b in bodies.items() if b["nextExpiredLicenses"]["daysToExpire"] < 30]
    assert expiring == ["initech-demo"]
    assert bodies["initech-demo"]["totalAvailableLicenseCount"] == 250

    acme = bodies["acme-demo"]
    assert acme["totalAvailableLicenseCount"] == 500
    assert 300 <= acme["totalUsageCount"] <= 340
    assert acme["nextExpiredLicenses"]["daysToExpire"] == 200
    assert acme["nextActivatingLicense"]["activatingTime"] == "2025-04-28T00:00:00.0000000Z"


def test_demo_drifts_deterministically() -> None:
    from exporter.simulator.licensing import current_usage

    base = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
    lic = demo_state(base).customers["acme-demo"].licensing
    samples = [
        current_usage("acme-demo", lic, base + timedelta(minutes=m))["totalUsageCount"]
        for m in range(0, 60, 5)
    ]
    assert len(set(samples)) > 1  # alive
    assert all(abs(s - 320) <= 4 for s in samples)  # but only by a few licences
    again = [
        current_usage("acme-demo", lic, base + timedelta(minutes=m))["totalUsageCount"]
        for m in range(0, 60, 5)
    ]
    assert samples == again
    globex = demo_state(base).customers["globex-demo"].licensing
    for minute in range(0, 120, 7):
        assert min(globex.usage_at(base + timedelta(minutes=minute))) > 100


def test_history_months_are_dates() -> None:
    lic = seed_state().customers[SEED_ID].licensing
    assert [m.month for m in lic.history] == [
        date(2021, 10, 1),
        date(2021, 11, 1),
        date(2021, 12, 1),
    ]
