"""Monitor collector against the simulator's OData v4 API: exact values, both query forms."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import generate_latest

from exporter.collector import monitor_enums
from exporter.simulator.monitor import (
    ConnectionState,
    MonitorData,
)
from exporter.simulator.state import SimulatorState
from tests.support.helpers import (
    SEED_CUSTOMER,
    Clock,
    samples,
    value,
)
from tests.support.monitor_tenant import T0, build_tenant, monitor_config, poll


@pytest.fixture
def tenant(sim_state: SimulatorState) -> MonitorData:
    tenant = build_tenant()
    sim_state.customers[SEED_CUSTOMER].monitor = tenant
    return tenant


def assert_tenant_figures(text: str) -> None:
    cid = {"customer_id": SEED_CUSTOMER}
    sessions = "citrix_sessions"
    assert value(text, sessions, delivery_group="Finance", state="active", **cid) == 5
    assert value(text, sessions, delivery_group="Finance", state="disconnected", **cid) == 2
    assert value(text, sessions, delivery_group="Finance", state="pending", **cid) == 0
    assert value(text, sessions, delivery_group="Call Center", state="active", **cid) == 1
    assert (
        value(text, sessions, delivery_group="Call Center", state="preparing_session", **cid) == 1
    )
    assert value(text, sessions, delivery_group="unknown", state="active", **cid) == 1
    states = {
        dict(labels)["state"]
        for (name, labels) in samples(text)
        if name == sessions and dict(labels)["delivery_group"] == "Finance"
    }
    assert len(states) == 10  # every ConnectionState, zeros included

    machines = "citrix_machines"
    assert value(text, machines, delivery_group="Finance", registration_state="registered") == 5
    assert value(text, machines, delivery_group="Finance", registration_state="unregistered") == 1
    assert value(text, machines, delivery_group="Finance", registration_state="unknown") == 0
    assert value(text, machines, delivery_group="Call Center", registration_state="registered") == 2
    assert value(text, machines, delivery_group="unknown", registration_state="registered") == 1
    assert value(text, "citrix_machines_in_maintenance", delivery_group="Finance") == 1
    assert value(text, "citrix_machines_in_maintenance", delivery_group="Call Center") == 0
    faulted = "citrix_machines_faulted"
    assert value(text, faulted, delivery_group="Finance", fault_state="failed_to_start") == 1
    assert value(text, faulted, delivery_group="Finance", fault_state="stuck_on_boot") == 0
    assert value(text, faulted, delivery_group="Call Center", fault_state="unregistered") == 1
    assert value(text, faulted, delivery_group="Finance", fault_state="none") is None
    power = "citrix_machines_by_power_state"
    assert value(text, power, delivery_group="Finance", power_state="on") == 5
    assert value(text, power, delivery_group="Finance", power_state="off") == 1
    assert value(text, power, delivery_group="Call Center", power_state="on") == 3
    assert value(text, power, delivery_group="Finance", power_state="turning_on") == 0
    # Powered on and not in maintenance (Finance's maintenance machine and its powered-off one
    # are left out), and of those the unregistered: what a delivery group outage is made of.
    on, unregistered_on = "citrix_machines_powered_on", "citrix_machines_unregistered_powered_on"
    assert value(text, on, delivery_group="Finance") == 4
    assert value(text, unregistered_on, delivery_group="Finance") == 0
    assert value(text, on, delivery_group="Call Center") == 3
    assert value(text, unregistered_on, delivery_group="Call Center") == 1
    assert value(text, on, delivery_group="unknown") == 1
    info = "citrix_delivery_group_info"
    assert value(
        text, info, delivery_group="Finance", delivery_type="desktops_and_apps",
        session_support="multi_session",
    ) == 1  # fmt: skip
    assert value(
        text, info, delivery_group="Call Center", delivery_type="desktops_only",
        session_support="single_session",
    ) == 1  # fmt: skip


async def test_every_gauge_with_server_side_aggregation(
    base_url, exporter_factory, sim_state: SimulatorState, tenant
):
    exporter = await exporter_factory(monitor_config(base_url), clock=Clock(T0))
    assert_tenant_figures(await poll(exporter))
    queries = [r.query for r in sim_state.requests if "/monitorodata/" in r.path]
    applies = [q["$apply"] for q in queries if "$apply" in q]
    assert len(applies) == 2 and all("groupby" in a for a in applies)
    # With $apply a poll costs a fixed number of requests, whatever the tenant size.
    before = sim_state.count("/monitorodata/Sessions") + sim_state.count("/monitorodata/Machines")
    await poll(exporter)
    after = sim_state.count("/monitorodata/Sessions") + sim_state.count("/monitorodata/Machines")
    assert after - before == 3  # sessions, machines, logons
    assert sim_state.count("/monitorodata/DesktopGroups") == 1  # names are cached


@pytest.mark.parametrize("status", [400, 501])
async def test_same_figures_when_apply_is_rejected_and_the_fallback_is_remembered(
    base_url, exporter_factory, sim_state: SimulatorState, tenant, status
):
    sim_state.faults.reject_apply = status
    exporter = await exporter_factory(monitor_config(base_url), clock=Clock(T0))
    assert_tenant_figures(await poll(exporter))
    rejected = sum("$apply" in r.query for r in sim_state.requests)
    assert rejected == 2
    await poll(exporter)
    assert sum("$apply" in r.query for r in sim_state.requests) == 2  # not retried
    selects = [r.query.get("$select", "") for r in sim_state.requests if "$apply" not in r.query]
    assert "ConnectionState" in selects


@pytest.mark.parametrize("reject_apply", [0, 400])
async def test_paging_past_1000_rows(
    base_url, exporter_factory, sim_state: SimulatorState, reject_apply
):
    tenant = MonitorData(clock=T0 - timedelta(hours=1))
    group = tenant.add_desktop_group("Big")
    machine = tenant.add_machine(group["Id"])
    for _ in range(2500):
        tenant.add_session(machine["Id"], connection_state=ConnectionState.ACTIVE)
    sim_state.customers[SEED_CUSTOMER].monitor = tenant
    sim_state.faults.reject_apply = reject_apply
    exporter = await exporter_factory(monitor_config(base_url), clock=Clock(T0))
    text = await poll(exporter)
    assert value(text, "citrix_sessions", delivery_group="Big", state="active") == 2500
    pages = sim_state.count("/monitorodata/Sessions")
    assert pages == (2 if reject_apply == 0 else 1 + 3 + 1)  # (apply|rejected + 3 pages) + logons


async def test_failure_counter_is_incremental_and_never_double_counts(
    base_url, exporter_factory, sim_state: SimulatorState, tenant
):
    clock = Clock(T0)
    tenant.add_failure(failure_date=T0 - timedelta(minutes=5), value=5)  # before start
    tenant.add_failure(failure_date=T0 + timedelta(seconds=10), value=5)
    tenant.add_failure(failure_date=T0 + timedelta(seconds=20), value=100)
    exporter = await exporter_factory(monitor_config(base_url, overlap="30s"), clock=clock)
    clock.now += 30
    text = await poll(exporter)
    failures = "citrix_connection_failures_total"
    assert value(text, failures, failure_reason="licensing") == 1
    assert value(text, failures, failure_reason="no_machine_available") == 1
    assert value(text, failures, failure_reason="spin_up_failed") == 0  # known reasons start at 0

    # Poll 2 re-reads everything since start (overlap), including a late row dated inside
    # the window and a new one: each row counted once.
    tenant.add_failure(failure_date=T0 + timedelta(seconds=15), value=5)
    tenant.add_failure(failure_date=T0 + timedelta(seconds=50), value=18)
    clock.now += 60
    text = await poll(exporter)
    clock.now += 60
    text = await poll(exporter)
    assert value(text, failures, failure_reason="licensing") == 2
    assert value(text, failures, failure_reason="no_machine_available") == 1
    assert value(text, failures, failure_reason="spin_up_failed") == 1
    filters = [
        r.query["$filter"] for r in sim_state.requests if r.path.endswith("ConnectionFailureLogs")
    ]
    assert filters[0] == "FailureDate gt 2030-01-01T12:00:00Z"  # unquoted ISO literal
    assert filters[1] == "FailureDate gt 2030-01-01T12:00:00Z"  # floor: exporter start
    assert filters[2] == "FailureDate gt 2030-01-01T12:01:00Z"  # last poll - 30 s overlap


async def test_logon_histogram(base_url, exporter_factory, sim_state: SimulatorState, tenant):
    clock = Clock(T0)
    finance = tenant.desktop_group("Finance")
    machine = tenant.machines_in("Finance")[0]
    for seconds in (3, 12, 12, 400):
        tenant.add_session(machine["Id"], start=T0 + timedelta(seconds=5), logon_ms=seconds * 1000)
    tenant.add_session(machine["Id"], start=T0 + timedelta(seconds=6), logon_ms=None)
    tenant.add_session(machine["Id"], start=T0 - timedelta(minutes=1), logon_ms=7000)  # before
    exporter = await exporter_factory(monitor_config(base_url), clock=clock)
    clock.now += 60
    await poll(exporter)
    clock.now += 60
    text = await poll(exporter)  # the same sessions again, inside the overlap: not re-counted
    name = "citrix_logon_duration_seconds"
    labels = {"customer_id": SEED_CUSTOMER, "delivery_group": finance["Name"]}
    assert value(text, f"{name}_count", **labels) == 4
    assert value(text, f"{name}_sum", **labels) == 427
    assert value(text, f"{name}_bucket", le="5.0", **labels) == 1
    assert value(text, f"{name}_bucket", le="15.0", **labels) == 3
    assert value(text, f"{name}_bucket", le="300.0", **labels) == 3
    assert value(text, f"{name}_bucket", le="+Inf", **labels) == 4


async def test_relative_next_links_are_followed(
    base_url, exporter_factory, sim_state: SimulatorState, tenant
):
    sim_state.faults.next_link_mode = "relative"
    sim_state.faults.odata_page_size = 2
    sim_state.faults.reject_apply = 400
    exporter = await exporter_factory(monitor_config(base_url), clock=Clock(T0))
    assert_tenant_figures(await poll(exporter))


async def test_foreign_next_link_is_refused(
    base_url, exporter_factory, sim_state: SimulatorState, tenant
):
    sim_state.faults.next_link_mode = "foreign"
    sim_state.faults.odata_page_size = 1
    exporter = await exporter_factory(monitor_config(base_url), clock=Clock(T0))
    assert not await exporter.poller.run_all_once()
    assert "refusing to follow @odata.nextLink" in exporter.poller.jobs[0].status.last_error


async def test_looping_server_is_stopped_at_the_first_repeated_link(
    base_url, exporter_factory, sim_state: SimulatorState, tenant
):
    # The simulator's loop links every page to itself: page 1 -> page 2 -> page 2. The repeat
    # ends the poll before the page bound (tests/unit/test_upstream_limits.py covers the bound).
    sim_state.faults.next_link_mode = "loop"
    sim_state.faults.odata_page_size = 1
    exporter = await exporter_factory(monitor_config(base_url, max_pages=5), clock=Clock(T0))
    assert not await exporter.poller.run_all_once()
    assert "repeats a page" in exporter.poller.jobs[0].status.last_error
    assert sim_state.count("/monitorodata/DesktopGroups") == 2


async def test_429_on_odata_is_retried_after_retry_after(
    base_url, exporter_factory, sleeps, sim_state: SimulatorState, tenant
):
    sim_state.faults.throttle_next = 2
    sim_state.faults.retry_after = "3"
    exporter = await exporter_factory(monitor_config(base_url), clock=Clock(T0))
    assert_tenant_figures(await poll(exporter))
    assert sleeps.delays == [3.0, 3.0]
    text = generate_latest(exporter.registry).decode()
    assert (
        value(text, "citrix_api_requests_total", endpoint="monitor_desktop_groups", code="429") == 2
    )


async def test_vanished_delivery_group_disappears_on_the_next_poll(
    base_url, exporter_factory, sim_state: SimulatorState, tenant
):
    exporter = await exporter_factory(monitor_config(base_url), clock=Clock(T0))
    text = await poll(exporter)
    assert value(text, "citrix_sessions", delivery_group="Call Center", state="pending") == 0
    tenant.remove_desktop_group("Call Center")
    text = await poll(exporter)
    assert not [k for k in samples(text) if ("delivery_group", "Call Center") in k[1]]
    assert value(text, "citrix_sessions", delivery_group="Finance", state="active") == 5


async def test_unknown_enum_values_count_as_unknown(
    base_url, exporter_factory, sim_state: SimulatorState, tenant
):
    machine = tenant.machines_in("Finance")[0]
    tenant.add_session(machine["Id"], connection_state=42)
    machine["CurrentPowerState"] = 77
    exporter = await exporter_factory(monitor_config(base_url), clock=Clock(T0))
    text = await poll(exporter)
    assert value(text, "citrix_sessions", delivery_group="Finance", state="unknown") == 1
    assert (
        value(
            text, "citrix_machines_by_power_state", delivery_group="Finance", power_state="unknown"
        )
        == 1
    )
    assert (
        value(text, "citrix_upstream_data_issues_total", collector="monitor", issue="unknown_enum")
        == 2
    )


# Every enum value of the Monitor OData model with its label, written out here (from Citrix's
# "Enums, error codes, and descriptions") rather than read from exporter/collector/monitor_enums.py,
# so that a swapped or misspelt entry there fails.
CONNECTION_STATES = [
    "unknown", "connected", "disconnected", "terminated", "preparing_session", "active",
    "reconnecting", "non_brokered_session", "other", "pending",
]  # fmt: skip
REGISTRATION_STATES = ["unknown", "registered", "unregistered"]
POWER_STATES = [
    "unknown", "unavailable", "off", "on", "suspended", "turning_on", "turning_off", "suspending",
    "resuming", "unmanaged", "not_supported", "virtual_machine_not_found",
]  # fmt: skip
FAULT_STATES = [
    "unknown", "none", "failed_to_start", "stuck_on_boot", "unregistered", "max_capacity",
    "virtual_machine_not_found",
]  # fmt: skip
DELIVERY_TYPES = ["desktops_only", "apps_only", "desktops_and_apps"]
SESSION_SUPPORTS = ["unknown", "single_session", "multi_session"]
FAILURE_CODES = {
    0: "unknown", 1: "none", 2: "session_preparation", 3: "registration_timeout",
    4: "connection_timeout", 5: "licensing", 6: "ticketing", 7: "other", 8: "general_fail",
    9: "maintenance_mode", 10: "application_disabled", 11: "license_feature_refused",
    12: "no_desktop_available", 13: "session_limit_reached", 14: "disallowed_protocol",
    15: "resource_unavailable", 16: "active_session_reconnect_disabled",
    17: "no_session_to_reconnect", 18: "spin_up_failed", 19: "refused",
    20: "configuration_set_failure", 21: "max_total_instances_exceeded",
    22: "max_per_user_instances_exceeded", 23: "communication_error",
    24: "max_per_machine_instances_exceeded", 25: "max_per_entitlement_instances_exceeded",
    100: "no_machine_available", 101: "machine_not_functional",
}  # fmt: skip


def distinct_counts_tenant() -> MonitorData:
    """A tenant where each value of each enum has its own count, so any two swapped labels
    show up: value i of ConnectionState has i + 1 open sessions, PowerState i has i + 1
    machines, FaultState i has 10 + i machines, RegistrationState 0/1/2 has 7/15/56 machines;
    delivery group Gi has DeliveryType i and SessionSupport i (all counted machines are in G2)."""
    tenant = MonitorData(clock=T0 - timedelta(days=1))
    groups = [
        tenant.add_desktop_group(f"G{i}", delivery_type=i, session_support=i) for i in range(3)
    ]
    for group in groups[:2]:  # a group is exported while it has machines or sessions
        tenant.add_machine(group["Id"])
    target = groups[2]["Id"]
    power = [p for p in range(len(POWER_STATES)) for _ in range(p + 1)]  # 78 machines
    fault = [f for f in range(len(FAULT_STATES)) for _ in range(10 + f)][: len(power)]
    registration = [0] * 7 + [2] * 15 + [1] * (len(power) - 22)
    assert len(fault) == len(power) == 78 and len(registration) == 78
    machines = [
        tenant.add_machine(target, power_state=p, fault_state=f, registration_state=r)
        for p, f, r in zip(power, fault, registration, strict=True)
    ]
    for state in range(len(CONNECTION_STATES)):
        for _ in range(state + 1):
            tenant.add_session(machines[0]["Id"], connection_state=state)
    return tenant


async def test_every_enum_value_has_its_own_label(
    base_url, exporter_factory, sim_state: SimulatorState
):
    """Only a few states carry distinct counts in the other tests, so swapping two labels of
    an enum table could pass; here each value's count is unique and checked exactly."""
    tenant = distinct_counts_tenant()
    sim_state.customers[SEED_CUSTOMER].monitor = tenant
    for index, code in enumerate(FAILURE_CODES):  # code k: index + 1 failures
        for n in range(index + 1):
            tenant.add_failure(failure_date=T0 + timedelta(seconds=1 + n), value=code)
    clock = Clock(T0)
    exporter = await exporter_factory(monitor_config(base_url), clock=clock)
    clock.now += 60
    text = await poll(exporter)

    def series(name: str, label: str) -> dict[str, float]:
        return {
            dict(labels)[label]: v
            for (sample, labels), v in samples(text).items()
            if sample == name and dict(labels).get("delivery_group") == "G2"
        }

    assert series("citrix_sessions", "state") == {
        name: i + 1 for i, name in enumerate(CONNECTION_STATES)
    }
    assert series("citrix_machines_by_power_state", "power_state") == {
        name: i + 1 for i, name in enumerate(POWER_STATES)
    }
    assert series("citrix_machines", "registration_state") == dict(
        zip(REGISTRATION_STATES, (7, 56, 15), strict=True)
    )
    # Only real faults (FailedToStart and up) are exported; Unknown and None are not faults.
    fault_counts = [10 + i for i in range(len(FAULT_STATES))]
    fault_counts[-1] = 78 - sum(fault_counts[:-1])  # the last state gets what is left
    assert series("citrix_machines_faulted", "fault_state") == {
        name: fault_counts[i] for i, name in enumerate(FAULT_STATES) if i >= 2
    }
    for i in range(3):
        info = [
            dict(labels)
            for (sample, labels), _ in samples(text).items()
            if sample == "citrix_delivery_group_info" and dict(labels)["delivery_group"] == f"G{i}"
        ]
        assert [(d["delivery_type"], d["session_support"]) for d in info] == [
            (DELIVERY_TYPES[i], SESSION_SUPPORTS[i])
        ]
    failures = {
        dict(labels)["failure_reason"]: v
        for (sample, labels), v in samples(text).items()
        if sample == "citrix_connection_failures_total"
    }
    assert failures == {name: i + 1 for i, name in enumerate(FAILURE_CODES.values())}
    assert value(text, "citrix_upstream_data_issues_total", collector="monitor") in (None, 0)


def test_enum_tables_match_the_documented_values():
    """The tables themselves, value by value: also covers entries no gauge exports (the fault
    states Unknown and None, which are not faults)."""
    assert dict(enumerate(CONNECTION_STATES)) == monitor_enums.CONNECTION_STATE
    assert dict(enumerate(REGISTRATION_STATES)) == monitor_enums.REGISTRATION_STATE
    assert dict(enumerate(POWER_STATES)) == monitor_enums.POWER_STATE
    assert dict(enumerate(FAULT_STATES)) == monitor_enums.FAULT_STATE
    assert dict(enumerate(DELIVERY_TYPES)) == monitor_enums.DELIVERY_TYPE
    assert dict(enumerate(SESSION_SUPPORTS)) == monitor_enums.SESSION_SUPPORT
    assert FAILURE_CODES == monitor_enums.SESSION_FAILURE_CODE
    faulted = {i: name for i, name in enumerate(FAULT_STATES) if i >= 2}
    assert faulted == monitor_enums.FAULTED_STATES
