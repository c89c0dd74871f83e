"""The simulator's Monitor OData endpoint over HTTP: shape, paging, switches, faults."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from yarl import URL

from exporter.simulator import SimulatorState, create_app, demo_state, make_tenant, seed_state
from exporter.simulator.monitor_api import CACHE_KEY
from exporter.simulator.monitor_tenants import (
    SEED_GROUP_CALL_CENTER,
    SEED_GROUP_FINANCE,
    SEED_SESSIONS,
)
from tests.support.sim_client import Client, ClientFactory, signed_in

SEED_ID = "xingqit48867"
SEED_NOW = datetime(2021, 12, 19, 2, 56, 22, tzinfo=UTC)
CONTENT_TYPE = "application/json; odata.metadata=minimal; charset=utf-8"
SESSIONS = "/monitorodata/Sessions"
GROUPED = (
    "filter(EndDate eq null)/groupby((ConnectionState,Machine/DesktopGroupId),"
    "aggregate($count as n))"
)


@pytest.fixture
def state() -> SimulatorState:
    s = seed_state()
    s.now = lambda: SEED_NOW
    return s


@pytest.fixture
async def client(aiohttp_client: ClientFactory, state: SimulatorState) -> Client:
    return await aiohttp_client(create_app(state))


@pytest.fixture
async def headers(client: Client) -> dict[str, str]:
    return await signed_in(client)


async def get(
    client: Client, headers: dict[str, str], path: str | URL, **params: str
) -> tuple[int, Any]:
    resp = await client.get(path, params=params or None, headers=headers)
    return resp.status, await resp.json(content_type=None)


def follow(client: Client, link: str) -> URL:
    """A nextLink as a path the test client can request (keeps its encoding)."""
    url = URL(link, encoded=True)
    assert url.host in (None, client.host), link
    return URL(url.raw_path_qs, encoded=True)


# --- shape -------------------------------------------------------------------------------------


async def test_response_shape(client: Client, headers: dict[str, str]) -> None:
    resp = await client.get(
        SESSIONS,
        params={"$filter": "EndDate eq null", "$select": "SessionKey,StartDate", "$count": "true"},
        headers=headers,
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"] == CONTENT_TYPE
    assert resp.headers["OData-Version"] == "4.0"
    assert "Citrix-TransactionId" in resp.headers
    body = await resp.json(content_type=None)
    assert list(body) == ["@odata.context", "@odata.count", "value"]
    assert body["@odata.context"] == (
        f"{client.make_url('/monitorodata/$metadata')}#Sessions(SessionKey,StartDate)"
    )
    assert body["@odata.count"] == 4
    assert body["value"][0] == {
        "SessionKey": SEED_SESSIONS[0],
        "StartDate": "2021-12-19T00:50:00.000Z",
    }
    assert body["value"][3]["StartDate"] == "2021-12-19T02:40:00.1234560Z"  # 7 digits


async def test_full_rows(client: Client, headers: dict[str, str]) -> None:
    status, body = await get(client, headers, "/monitorodata/Machines", **{"$top": "1"})
    assert status == 200
    assert body["@odata.context"].endswith("/monitorodata/$metadata#Machines")
    machine = body["value"][0]
    assert machine == {
        "Id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "Name": "CORP\\FIN-VDA001",
        "DnsName": "fin-vda001.corp.example.com",
        "CurrentRegistrationState": 1,
        "RegistrationStateChangeDate": "2021-12-16T02:50:00.000Z",
        "CurrentPowerState": 3,
        "CurrentSessionCount": 2,
        "IsInMaintenanceMode": False,
        "FaultState": 1,
        "FailureDate": None,
        "LifecycleState": 0,
        "CatalogId": "aa11bb22-cc33-4d44-8e55-ff6677889900",
        "DesktopGroupId": SEED_GROUP_FINANCE,
        "MachineRole": 0,
        "IsAssigned": False,
        "AgentVersion": "2402.0.100.629",
        "OSType": "Windows Server 2022",
        "CreatedDate": "2021-12-16T02:50:00.000Z",
        "ModifiedDate": "2021-12-16T02:50:00.000Z",
    }
    for entity_set, count in (
        ("DesktopGroups", 2),
        ("Machines", 4),
        ("Sessions", 5),
        ("ConnectionFailureLogs", 3),
    ):
        status, body = await get(client, headers, f"/monitorodata/{entity_set}")
        assert status == 200
        assert len(body["value"]) == count, entity_set
        assert "@odata.nextLink" not in body


async def test_service_document(client: Client, headers: dict[str, str]) -> None:
    status, body = await get(client, headers, "/monitorodata/")
    assert status == 200
    assert [e["name"] for e in body["value"]] == [
        "DesktopGroups",
        "Machines",
        "Sessions",
        "ConnectionFailureLogs",
    ]


async def test_gzip_when_accepted(client: Client, headers: dict[str, str]) -> None:
    resp = await client.get(
        SESSIONS, headers={**headers, "Accept-Encoding": "gzip"}, auto_decompress=False
    )
    assert resp.headers.get("Content-Encoding") == "gzip"
    body = json.loads(gzip.decompress(await resp.read()))
    assert len(body["value"]) == 5
    resp = await client.get(
        SESSIONS, headers={**headers, "Accept-Encoding": "identity"}, auto_decompress=False
    )
    assert "Content-Encoding" not in resp.headers


# --- query options over HTTP ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"$filter": "ConnectionState eq 5 and EndDate eq null"}, 3),
        ({"$filter": "ConnectionState ne 5"}, 2),
        ({"$filter": "LogOnDuration gt 30000 or LogOnDuration lt 9000"}, 3),
        ({"$filter": "LogOnDuration ge 30000 and LogOnDuration le 48000"}, 2),
        ({"$filter": "not (EndDate eq null)"}, 1),
        ({"$filter": "StartDate ge 2021-12-19T02:00:00Z"}, 2),
        ({"$filter": "ModifiedDate ge 2021-12-19T02:40:00.123456Z"}, 1),
        ({"$filter": f"SessionKey eq {SEED_SESSIONS[1]}"}, 1),
        ({"$filter": f"Machine/DesktopGroupId eq {SEED_GROUP_CALL_CENTER}"}, 2),
        ({"$filter": "Machine/IsInMaintenanceMode eq true"}, 1),
        ({"$filter": "Machine/Name eq 'CORP\\FIN-VDA002'"}, 1),
        ({"$top": "2", "$skip": "1"}, 2),
        ({"$skip": "4"}, 1),
    ],
)
async def test_filters_over_http(
    client: Client, headers: dict[str, str], params: dict[str, str], expected: int
) -> None:
    status, body = await get(client, headers, SESSIONS, **params)
    assert status == 200, body
    assert len(body["value"]) == expected


async def test_select_expand_orderby(client: Client, headers: dict[str, str]) -> None:
    status, body = await get(
        client,
        headers,
        SESSIONS,
        **{
            "$select": "SessionKey,LogOnDuration",
            "$expand": "Machine($select=DesktopGroupId,Name)",
            "$orderby": "LogOnDuration desc",
            "$top": "2",
            "$count": "true",
        },
    )
    assert status == 200
    assert body["@odata.count"] == 5
    assert body["value"] == [
        {
            "SessionKey": SEED_SESSIONS[3],
            "LogOnDuration": 95250,
            "Machine": {"Name": "CORP\\CC-VDA001", "DesktopGroupId": SEED_GROUP_CALL_CENTER},
        },
        {
            "SessionKey": SEED_SESSIONS[1],
            "LogOnDuration": 48000,
            "Machine": {"Name": "CORP\\FIN-VDA001", "DesktopGroupId": SEED_GROUP_FINANCE},
        },
    ]
    status, body = await get(
        client, headers, "/monitorodata/Machines", **{"$expand": "DesktopGroup", "$select": "Id"}
    )
    assert body["value"][3]["DesktopGroup"]["Name"] == "DG-Call-Center"
    status, body = await get(client, headers, SESSIONS, **{"$count": "true", "$top": "0"})
    assert body["@odata.count"] == 5
    assert body["value"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"$filter": "StartDate gt '2021-12-19T00:00:00Z'"},
        {"$filter": "Nope eq 1"},
        {"$filter": "ConnectionState eq"},
        {"$select": "Nope"},
        {"$expand": "Nope"},
        {"$orderby": "Nope"},
        {"$top": "-1"},
        {"$apply": "groupby(ConnectionState)"},
        {"$apply": "groupby((ConnectionState),aggregate(SessionKey with countdistinct as n))"},
        {"$search": "x"},
        {"$skiptoken": "garbage"},
    ],
)
async def test_bad_queries_400(
    client: Client, headers: dict[str, str], params: dict[str, str]
) -> None:
    resp = await client.get(SESSIONS, params=params, headers=headers)
    assert resp.status == 400
    assert resp.headers["Content-Type"] == CONTENT_TYPE
    body = await resp.json(content_type=None)
    assert set(body) == {"error"}
    assert body["error"]["code"] == ""
    assert body["error"]["message"]


# --- $apply ------------------------------------------------------------------------------------


async def test_apply_groupby_nav_path(
    client: Client, headers: dict[str, str], state: SimulatorState
) -> None:
    status, body = await get(client, headers, SESSIONS, **{"$apply": GROUPED})
    assert status == 200
    assert body["value"] == [
        {"ConnectionState": 2, "Machine": {"DesktopGroupId": SEED_GROUP_FINANCE}, "n": 1},
        {"ConnectionState": 5, "Machine": {"DesktopGroupId": SEED_GROUP_FINANCE}, "n": 2},
        {"ConnectionState": 5, "Machine": {"DesktopGroupId": SEED_GROUP_CALL_CENTER}, "n": 1},
    ]
    assert body["@odata.context"].endswith("#Sessions(ConnectionState,Machine,n)")
    assert state.requests[-1].query == {"$apply": GROUPED}


async def test_apply_machines_and_count(client: Client, headers: dict[str, str]) -> None:
    apply = (
        "filter(LifecycleState eq 0)/groupby((DesktopGroupId,CurrentRegistrationState,"
        "CurrentPowerState,FaultState,IsInMaintenanceMode),aggregate($count as n))"
    )
    status, body = await get(
        client, headers, "/monitorodata/Machines", **{"$apply": apply, "$count": "true"}
    )
    assert status == 200
    assert body["@odata.count"] == 4
    unregistered = [r for r in body["value"] if r["CurrentRegistrationState"] == 2]
    assert unregistered == [
        {
            "DesktopGroupId": SEED_GROUP_CALL_CENTER,
            "CurrentRegistrationState": 2,
            "CurrentPowerState": 3,
            "FaultState": 4,
            "IsInMaintenanceMode": False,
            "n": 1,
        }
    ]


@pytest.mark.parametrize("status", [400, 501])
async def test_reject_apply(
    client: Client, headers: dict[str, str], state: SimulatorState, status: int
) -> None:
    state.faults.reject_apply = status
    resp = await client.get(SESSIONS, params={"$apply": GROUPED}, headers=headers)
    assert resp.status == status
    body = await resp.json(content_type=None)
    assert body["error"]["code"] == ""
    assert "pply" in body["error"]["message"]
    # Everything else still works (the fallback path of a collector).
    status_ok, page = await get(client, headers, SESSIONS, **{"$select": "ConnectionState"})
    assert status_ok == 200
    assert len(page["value"]) == 5
    assert [r.status for r in state.requests[-2:]] == [status, 200]


# --- paging --------------------------------------------------------------------------------------


def big_state(sessions: int) -> SimulatorState:
    state = seed_state()
    state.now = lambda: SEED_NOW
    state.customers[SEED_ID].monitor = make_tenant(
        sessions, 100, 3, seed=9, now=SEED_NOW, closed_sessions=0, failures=0
    )
    return state


async def test_paging_2500_rows(aiohttp_client: ClientFactory) -> None:
    state = big_state(2_500)
    client = await aiohttp_client(create_app(state))
    hdrs = await signed_in(client)
    params = {"$filter": "EndDate eq null", "$select": "SessionKey", "$count": "true"}
    status, body = await get(client, hdrs, SESSIONS, **params)
    pages = [body]
    while "@odata.nextLink" in body:
        link = body["@odata.nextLink"]
        assert link.startswith(f"{client.make_url('/monitorodata/Sessions')}?")
        assert "$filter=EndDate%20eq%20null" in link
        status, body = await get(client, hdrs, follow(client, link))
        assert status == 200
        pages.append(body)
    assert [len(p["value"]) for p in pages] == [1000, 1000, 500]
    assert all(p["@odata.count"] == 2_500 for p in pages)
    keys = [row["SessionKey"] for p in pages for row in p["value"]]
    assert len(set(keys)) == 2_500
    assert client.app is not None
    assert client.app[CACHE_KEY].computed == 1  # later pages were slices of the cached result
    recorded = [r for r in state.requests if r.path == SESSIONS]
    assert len(recorded) == 3
    assert recorded[1].query["$skiptoken"].endswith(".1000")
    assert recorded[2].query["$filter"] == "EndDate eq null"

    # $top caps the whole result, across pages; a custom page size applies.
    state.faults.odata_page_size = 700
    status, body = await get(client, hdrs, SESSIONS, **{"$top": "1500", "$select": "SessionKey"})
    sizes = [len(body["value"])]
    while "@odata.nextLink" in body:
        status, body = await get(client, hdrs, follow(client, body["@odata.nextLink"]))
        sizes.append(len(body["value"]))
    assert sizes == [700, 700, 100]


async def test_evicted_query_is_recomputed(aiohttp_client: ClientFactory) -> None:
    state = big_state(1_500)
    client = await aiohttp_client(create_app(state))
    hdrs = await signed_in(client)
    status, first = await get(client, hdrs, SESSIONS, **{"$orderby": "StartDate"})
    assert client.app is not None
    client.app[CACHE_KEY].clear()
    status, second = await get(client, hdrs, follow(client, first["@odata.nextLink"]))
    assert status == 200
    assert len(second["value"]) == 500
    assert second["value"][0]["StartDate"] >= first["value"][-1]["StartDate"]


@pytest.mark.parametrize("mode", ["absolute", "relative", "foreign", "loop"])
async def test_next_link_modes(aiohttp_client: ClientFactory, mode: str) -> None:
    state = big_state(1_200)
    state.faults.next_link_mode = mode
    client = await aiohttp_client(create_app(state))
    hdrs = await signed_in(client)
    status, body = await get(client, hdrs, SESSIONS, **{"$select": "SessionKey"})
    link = body["@odata.nextLink"]
    base = str(client.make_url("")).rstrip("/")
    if mode == "absolute":
        assert link.startswith(f"{base}/monitorodata/Sessions?$select=SessionKey&$skiptoken=")
    elif mode == "relative":
        assert link.startswith("/monitorodata/Sessions?$select=SessionKey&$skiptoken=")
    elif mode == "foreign":
        assert URL(link).host == "evil.example.com"
        assert URL(link).path == "/monitorodata/Sessions"
    else:
        first_keys = [r["SessionKey"] for r in body["value"]]
        for _ in range(3):
            status, again = await get(client, hdrs, follow(client, link))
            assert [r["SessionKey"] for r in again["value"]] == first_keys
            assert again["@odata.nextLink"] == link
        return
    path = URL(link, encoded=True).raw_path_qs
    status, second = await get(client, hdrs, URL(path, encoded=True))
    assert status == 200
    assert len(second["value"]) == 200
    assert "@odata.nextLink" not in second


async def test_loop_mode_on_a_single_page(
    client: Client, headers: dict[str, str], state: SimulatorState
) -> None:
    state.faults.next_link_mode = "loop"
    _, body = await get(client, headers, "/monitorodata/DesktopGroups")
    assert len(body["value"]) == 2
    assert "$skiptoken=" in body["@odata.nextLink"]


# --- gateway behaviour ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/monitorodata/Sessions/$count",
        f"/monitorodata/Sessions({SEED_SESSIONS[0]})",
        "/monitorodata/Machines(0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d)",
        "/monitorodata/Bogus",
        "/monitorodata/sessions",
        "/monitorodata/$metadata",
    ],
)
async def test_404(client: Client, headers: dict[str, str], path: str) -> None:
    resp = await client.get(path, headers=headers)
    assert resp.status == 404
    body = await resp.json(content_type=None)
    assert "No HTTP resource" in body["error"]["message"]


async def test_auth_and_accept_still_apply(client: Client, headers: dict[str, str]) -> None:
    resp = await client.get(SESSIONS, headers={"Accept": "application/json"})
    assert resp.status == 401
    resp = await client.get(SESSIONS, headers={**headers, "Accept": "*/*"})
    assert resp.status == 406
    resp = await client.get(SESSIONS, headers={**headers, "Citrix-CustomerId": "other"})
    assert resp.status == 403


async def test_429_on_odata(client: Client, headers: dict[str, str], state: SimulatorState) -> None:
    state.faults.throttle_next = 1
    state.faults.retry_after = "3"
    resp = await client.get(SESSIONS, params={"$apply": GROUPED}, headers=headers)
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "3"
    status, _ = await get(client, headers, SESSIONS, **{"$apply": GROUPED})
    assert status == 200
    assert [(r.status, r.query) for r in state.requests[-2:]] == [
        (429, {"$apply": GROUPED}),
        (200, {"$apply": GROUPED}),
    ]
    state.faults.error_next = 1
    status, _ = await get(client, headers, SESSIONS)
    assert status == 500


async def test_admin_switches(client: Client, state: SimulatorState) -> None:
    resp = await client.post(
        "/_simulator/faults",
        json={"reject_apply": 501, "next_link_mode": "relative", "odata_page_size": 2},
    )
    assert resp.status == 200
    body = await resp.json()
    assert (body["reject_apply"], body["next_link_mode"], body["odata_page_size"]) == (
        501,
        "relative",
        2,
    )
    assert state.faults.reject_apply == 501
    for bad in (
        {"reject_apply": 404},
        {"reject_apply": "400"},
        {"reject_apply": True},
        {"next_link_mode": "sideways"},
        {"odata_page_size": 0},
        {"odata_page_size": 1.5},
    ):
        resp = await client.post("/_simulator/faults", json=bad)
        assert resp.status == 400, bad
    assert state.faults.odata_page_size == 2


async def test_page_size_switch(
    client: Client, headers: dict[str, str], state: SimulatorState
) -> None:
    state.faults.odata_page_size = 2
    state.faults.next_link_mode = "relative"
    _, body = await get(client, headers, SESSIONS, **{"$count": "true"})
    sizes = [len(body["value"])]
    while "@odata.nextLink" in body:
        assert body["@odata.nextLink"].startswith("/monitorodata/Sessions?")
        _, body = await get(client, headers, follow(client, body["@odata.nextLink"]))
        sizes.append(len(body["value"]))
    assert sizes == [2, 2, 1]


async def test_customers_are_isolated(aiohttp_client: ClientFactory) -> None:
    state = demo_state(datetime(2025, 3, 14, 9, 0, tzinfo=UTC))
    state.now = lambda: datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
    client = await aiohttp_client(create_app(state))
    counts = {}
    for cid, customer in state.customers.items():
        hdrs = await signed_in(client, cid, f"{cid}-client", f"{cid}-secret")
        status, body = await get(
            client, hdrs, SESSIONS, **{"$filter": "EndDate eq null", "$count": "true", "$top": "0"}
        )
        assert status == 200
        counts[cid] = body["@odata.count"]
        assert counts[cid] == len(customer.monitor.open_sessions())
    assert counts == {"acme-demo": 120, "globex-demo": 150, "initech-demo": 40}


# --- demo: living tenants ------------------------------------------------------------------


async def test_demo_tenants_live_with_the_clock(aiohttp_client: ClientFactory) -> None:
    start = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
    clock = [start]
    state = demo_state(start)
    state.now = lambda: clock[0]
    for customer in state.customers.values():
        groups = customer.monitor.desktop_groups
        # acme-demo also has an autoscaled group (tests/collectors/test_monitor_autoscale.py).
        assert len(groups) == (4 if customer.monitor.autoscale else 3)
        assert 20 <= len(customer.monitor.machines) <= 60
        assert 40 <= len(customer.monitor.open_sessions()) <= 150
        unregistered = {
            m["DesktopGroupId"]
            for m in customer.monitor.machines
            if m["CurrentRegistrationState"] == 2
        }
        assert unregistered  # at least one group with unregistered machines
    client = await aiohttp_client(create_app(state))
    cid = "acme-demo"
    hdrs = await signed_in(client, cid, f"{cid}-client", f"{cid}-secret")

    async def snapshot() -> tuple[int, set[str]]:
        _, failures = await get(
            client, hdrs, "/monitorodata/ConnectionFailureLogs", **{"$count": "true", "$top": "0"}
        )
        _, sessions = await get(
            client, hdrs, SESSIONS, **{"$filter": "EndDate eq null", "$select": "SessionKey"}
        )
        return failures["@odata.count"], {s["SessionKey"] for s in sessions["value"]}

    failures_before, open_before = await snapshot()
    assert await snapshot() == (failures_before, open_before)  # same clock, same data
    clock[0] = start + timedelta(minutes=45)
    failures_after, open_after = await snapshot()
    assert failures_after > failures_before
    assert open_before - open_after
    assert open_after - open_before
    status, recent = await get(
        client,
        hdrs,
        "/monitorodata/ConnectionFailureLogs",
        **{"$filter": "FailureDate gt 2025-03-14T09:00:00Z", "$orderby": "Id desc", "$top": "1"},
    )
    assert status == 200
    assert recent["value"][0]["FailureDate"] > "2025-03-14T09:00:00"
