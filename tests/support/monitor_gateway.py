"""A careless Monitor gateway for the Monitor collector's tests: odd rows of every kind
(groups without ids, retired groups, non-scalar states, huge and negative counts, repeated
failure ids), served by HostileUpstream, and helpers to read what the collector made of them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aiohttp import web

from exporter.simulator.monitor import MonitorData
from exporter.simulator.state import SimulatorState
from tests.support.helpers import SEED_CUSTOMER, make_config, samples
from tests.support.hostile import HostileUpstream
from tests.support.monitor_tenant import T0


def by_label(text: str, name: str, label: str, **labels: str) -> dict[str, float]:
    """{value of `label`: sample value} of the samples `name` that carry `labels`."""
    return {
        dict(sample_labels)[label]: v
        for (sample, sample_labels), v in samples(text).items()
        if sample == name and labels.items() <= dict(sample_labels).items()
    }


def use(sim_state: SimulatorState, tenant: MonitorData) -> MonitorData:
    sim_state.customers[SEED_CUSTOMER].monitor = tenant
    return tenant


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def in_group(group_id: str | None, **row: Any) -> dict[str, Any]:
    return {**row, "Machine": None if group_id is None else {"DesktopGroupId": group_id}}


GROUPS = [
    {"Name": "No id", "LifecycleState": 0},  # skipped: no Id
    {"Id": "g-old", "Name": "Retired", "LifecycleState": 1},  # skipped: not active
    {"Id": "g-sales", "Name": "Sales", "DeliveryType": 1, "SessionSupport": 1, "LifecycleState": 0},
    {"Id": "g-null", "Name": "", "DeliveryType": 9, "SessionSupport": 7, "LifecycleState": None},
    {"Id": "g-plain", "Name": "Plain", "DeliveryType": 0, "SessionSupport": 2},  # no state: kept
    {"Id": "g-idle", "Name": "Idle", "DeliveryType": 2, "SessionSupport": 0, "LifecycleState": 0},
    {"Id": "g-long", "Name": "L" * 300, "DeliveryType": 0, "SessionSupport": 1},  # cut to 256
]
SESSION_COUNTS = [
    in_group("g-sales", ConnectionState=[1], n=1),  # not a scalar: unknown
    in_group("g-sales", ConnectionState=5, n=3),
    in_group("g-sales", ConnectionState=5, n=2),  # the same key again: added
    in_group("g-sales", ConnectionState=42, n=1),
    in_group("g-sales", ConnectionState=43, n=4),
    in_group("g-sales", ConnectionState=True, n=7),  # a bool is not an enum value
    in_group(None, ConnectionState=5, n=1),
    in_group("g-plain", ConnectionState=1, n="x" * 100),
    in_group("g-plain", ConnectionState=1, n=-2),
    in_group("g-plain", ConnectionState=1, n=10**100),
    in_group("g-plain", ConnectionState=1, n=2.0),
    in_group("g-plain", ConnectionState=1, n=True),
    in_group("g-plain", ConnectionState=6, n=4),
    in_group("g-idle", ConnectionState=2, n=1),  # a live group without a counted machine
]


def machine(group: str | None, reg: Any, power: Any, fault: Any, maint: Any, n: int) -> Any:
    return {
        "DesktopGroupId": group,
        "CurrentRegistrationState": reg,
        "CurrentPowerState": power,
        "FaultState": fault,
        "IsInMaintenanceMode": maint,
        "n": n,
    }


MACHINE_COUNTS = [
    machine("g-sales", 1, 3, 1, True, 2),
    machine("g-sales", 2, 2, 2, True, 3),
    machine("g-sales", 1, 3, 1, "true", 4),  # only JSON true is "in maintenance"
    machine("g-sales", 5, 50, [2], False, 1),
    machine("g-sales", 2, 3, 2, False, 2),  # failed to start too, another power state
    machine("g-old", 1, 3, 1, False, 1),  # a retired group's machine: unknown group
    machine(None, 1, 3, 1, False, 1),
    machine("g-plain", 1, 3, 1, False, 1),
]
FAILURES = [
    {"Id": None, "FailureDate": at(10), "ConnectionFailureEnumValue": 5},
    {"Id": 1, "FailureDate": "garbage", "ConnectionFailureEnumValue": 5},
    {"Id": 2, "FailureDate": at(5), "ConnectionFailureEnumValue": 5},
    {"Id": 2, "FailureDate": at(5), "ConnectionFailureEnumValue": 5},  # repeated: once
    {"Id": 3, "FailureDate": at(6), "ConnectionFailureEnumValue": 999},
    {"Id": 4, "FailureDate": at(-1), "ConnectionFailureEnumValue": 5},  # before the start
    {"Id": 5, "FailureDate": at(7), "ConnectionFailureEnumValue": 5},
]
LOGONS = [
    in_group("g-sales", SessionKey=None, StartDate=at(1), LogOnDuration=1000),
    in_group("g-sales", SessionKey="a", StartDate="soon", LogOnDuration=1000),
    in_group("g-sales", SessionKey="b", StartDate=at(2), LogOnDuration="slow"),
    in_group("g-sales", SessionKey="c", StartDate=at(3), LogOnDuration=4000),
    in_group("g-sales", SessionKey="c", StartDate=at(3), LogOnDuration=4000),  # repeated
    in_group(None, SessionKey="d", StartDate=at(3), LogOnDuration=2500),
]


def answer(rows: list[Any]) -> Callable[[web.Request], web.Response]:
    return lambda _request: web.json_response({"value": rows})


def careless_gateway(customer_id: str) -> HostileUpstream:
    hostile = HostileUpstream()
    hostile.on(customer_id, "/monitorodata/DesktopGroups", answer(GROUPS))
    hostile.on(
        customer_id,
        "/monitorodata/Sessions",
        lambda request: web.json_response(
            {"value": SESSION_COUNTS if "$apply" in request.query else LOGONS}
        ),
    )
    hostile.on(customer_id, "/monitorodata/Machines", answer(MACHINE_COUNTS))
    hostile.on(customer_id, "/monitorodata/ConnectionFailureLogs", answer(FAILURES))
    return hostile


def gone_once(
    queries: list[dict[str, str]], counted: Callable[[Any], bool]
) -> Callable[[web.Request], web.Response]:
    """Machines: records the queries `counted` picks and answers the first of them 404; the
    rest (and the others) get MACHINE_COUNTS (rows without an Id: no machine-group map)."""

    def machines(request: web.Request) -> web.Response:
        if counted(request.query):
            queries.append(dict(request.query))
            if len(queries) == 1:
                return web.json_response({"error": {"message": "gone"}}, status=404)
        return web.json_response({"value": MACHINE_COUNTS})

    return machines


def hostile_config(url: str, **monitor: Any) -> Any:
    customer = {
        "customer_id": "bad1",
        "client_id": "bad-client",
        "client_secret": "bad-secret-Qx1",
        "collectors": {"licensing": {"enabled": False}, "monitor": monitor},
    }
    return make_config(url, [customer])
