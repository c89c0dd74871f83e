"""Monitor collector, value by value (issue #10): the exact queries it sends, the exact HELP
text, labels and data-issue log fields, and the boundaries of its clocks and buckets.

tests/collectors/test_monitor.py proves the figures of a realistic tenant; this file pins what a
small slip in exporter/collector/monitor.py would change without changing those figures: a query
parameter, a `<` for a `<=`, a `+=` for a `=`, a field name in a log line.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from exporter.collector import monitor_enums
from exporter.collector.monitor import odata_datetime
from exporter.runtime import Exporter
from exporter.simulator.state import SimulatorState
from tests.support.helpers import (
    SEED_CLIENT,
    SEED_CUSTOMER,
    SEED_SECRET,
    Clock,
    make_config,
    samples,
    value,
)
from tests.support.logcapture import real_log_output
from tests.support.monitor_gateway import (
    FAILURES,
    MACHINE_COUNTS,
    answer,
    by_label,
    careless_gateway,
    gone_once,
    hostile_config,
    use,
)
from tests.support.monitor_tenant import T0, build_tenant, monitor_config, poll

Factory = Callable[..., Awaitable[Exporter]]
ServerFactory = Callable[..., Awaitable[TestServer]]
SUFFIX = "Polled from the Citrix Monitor Service OData API every monitor interval."
GROUPS_QUERY = {"$select": "Id,Name,DeliveryType,SessionSupport,LifecycleState"}
MACHINE_GROUPS_QUERY = {"$filter": "LifecycleState eq 0", "$select": "Id,DesktopGroupId"}
SESSIONS_APPLY = {
    "$apply": "filter(EndDate eq null)/groupby((ConnectionState,Machine/DesktopGroupId),"
    "aggregate($count as n))"
}
MACHINES_APPLY = {
    "$apply": "filter(LifecycleState eq 0)/groupby((DesktopGroupId,CurrentRegistrationState,"
    "CurrentPowerState,FaultState,IsInMaintenanceMode),aggregate($count as n))"
}
SESSIONS_PAGED = {
    "$filter": "EndDate eq null",
    "$select": "ConnectionState",
    "$expand": "Machine($select=DesktopGroupId)",
}
MACHINES_PAGED = {
    "$filter": "LifecycleState eq 0",
    "$select": "DesktopGroupId,CurrentRegistrationState,CurrentPowerState,FaultState,"
    "IsInMaintenanceMode",
}
REJECTED = (
    "Monitor API rejected $apply; counting by paging with $select instead "
    "(remembered for this customer)"
)


def failures_query(since: str) -> dict[str, str]:
    return {
        "$filter": f"FailureDate gt {since}",
        "$select": "Id,FailureDate,ConnectionFailureEnumValue,MachineId",
        "$orderby": "FailureDate",
    }


def logons_query(since: str) -> dict[str, str]:
    return {
        "$filter": f"StartDate gt {since} and LogOnDuration ne null",
        "$select": "SessionKey,StartDate,LogOnDuration",
        "$expand": "Machine($select=DesktopGroupId)",
    }


def sent(sim_state: SimulatorState, start: int = 0) -> list[tuple[str, dict[str, str]]]:
    """(entity set, query) of each Monitor request from `start` on, in a stable order
    (sessions and machines are fetched concurrently)."""
    found = [
        (r.path.rsplit("/", 1)[-1], r.query)
        for r in sim_state.requests[start:]
        if "/monitorodata/" in r.path
    ]
    return sorted(found, key=lambda item: json.dumps(item, sort_keys=True))


def expected(*items: tuple[str, dict[str, str]]) -> list[tuple[str, dict[str, str]]]:
    return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))


def json_logs(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# -- monitor_enums ---------------------------------------------------------------------------


def test_documented_names_become_snake_case_labels():
    """The tables are built at import time, so their builder is checked here directly."""
    assert monitor_enums._snake("VirtualMachineNotFound") == "virtual_machine_not_found"
    assert monitor_enums._snake("None") == "none"
    assert monitor_enums._table({3: "StuckOnBoot", 0: "Unknown"}) == {
        3: "stuck_on_boot",
        0: "unknown",
    }


# -- the queries sent ------------------------------------------------------------------------


def test_the_filter_literal_is_utc_whole_seconds_whatever_the_local_zone(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        assert odata_datetime(T0.timestamp() + 0.9) == "2030-01-01T12:00:00Z"
    finally:
        monkeypatch.undo()
        time.tzset()


async def test_exact_queries_with_apply_and_apply_is_tried_again_next_poll(
    base_url, exporter_factory: Factory, sim_state: SimulatorState
):
    use(sim_state, build_tenant())
    clock = Clock(T0)
    exporter = await exporter_factory(monitor_config(base_url, overlap="30s"), clock=clock)
    clock.now += 60
    await poll(exporter)
    assert sent(sim_state) == expected(
        ("DesktopGroups", GROUPS_QUERY),
        ("Machines", MACHINE_GROUPS_QUERY),
        ("Sessions", SESSIONS_APPLY),
        ("Machines", MACHINES_APPLY),
        ("ConnectionFailureLogs", failures_query("2030-01-01T12:00:00Z")),
        ("Sessions", logons_query("2030-01-01T12:00:00Z")),
    )
    start = len(sim_state.requests)
    clock.now += 60
    await poll(exporter)
    # A successful $apply is used again; both watermarks re-read 30 s before the last poll.
    assert sent(sim_state, start) == expected(
        ("Sessions", SESSIONS_APPLY),
        ("Machines", MACHINES_APPLY),
        ("ConnectionFailureLogs", failures_query("2030-01-01T12:00:30Z")),
        ("Sessions", logons_query("2030-01-01T12:00:30Z")),
    )


async def test_rejected_apply_pages_with_exact_queries_and_logs_it_once_per_query(
    base_url, exporter_factory: Factory, sim_state: SimulatorState
):
    use(sim_state, build_tenant())
    sim_state.faults.reject_apply = 501
    clock = Clock(T0)
    exporter = await exporter_factory(monitor_config(base_url), clock=clock)
    with real_log_output("json") as (stream, _):
        await poll(exporter)
        start = len(sim_state.requests)
        clock.now += 60
        await poll(exporter)
    since = "2030-01-01T12:00:00Z"
    assert sent(sim_state, start) == expected(
        ("Sessions", SESSIONS_PAGED),
        ("Machines", MACHINES_PAGED),
        ("ConnectionFailureLogs", failures_query(since)),
        ("Sessions", logons_query(since)),
    )
    rejected = [r for r in json_logs(stream.getvalue()) if r["msg"] == REJECTED]
    assert sorted(r["query"] for r in rejected) == ["machines", "sessions"]
    for record in rejected:
        assert record["level"] == "info"
        assert record["logger"] == "citrix_exporter.monitor"
        assert record["customer_id"] == SEED_CUSTOMER
        assert "501" in record["error"]


# -- data issues, odd rows and sums (a careless gateway) ---------------------------------------


async def test_odd_rows_are_counted_exactly_and_each_issue_names_its_field(
    aiohttp_server: ServerFactory, exporter_factory: Factory
):
    server = await aiohttp_server(careless_gateway("bad1").app())
    url = str(server.make_url("")).rstrip("/")
    exporter = await exporter_factory(hostile_config(url), clock=Clock(T0))
    with real_log_output("json") as (stream, _):
        text = await poll(exporter)
    issues = {
        (r["issue"], r["field"], r["detail"])
        for r in json_logs(stream.getvalue())
        if r.get("collector") == "monitor" and "issue" in r
    }
    assert issues == {
        ("null", "DesktopGroups.Name", ""),
        ("repaired_label", "DesktopGroups.Name", "300 characters"),
        ("unknown_enum", "DeliveryType", "9"),
        ("unknown_enum", "SessionSupport", "7"),
        ("unknown_enum", "Sessions.ConnectionState", "'list'"),
        ("bad_number", "$apply count", "'" + "x" * 79),
        ("negative", "$apply count", "-2"),
        ("out_of_range", "$apply count", "1" + "0" * 79),
        ("unknown_enum", "CurrentRegistrationState", "5"),
        ("unknown_enum", "CurrentPowerState", "50"),
        ("unknown_enum", "FaultState", "'list'"),
        ("bad_timestamp", "ConnectionFailureLogs.FailureDate", "'garbage'"),
        ("unknown_enum", "ConnectionFailureEnumValue", "999"),
        ("bad_timestamp", "Sessions.StartDate", "'soon'"),
        ("bad_number", "Sessions.LogOnDuration", "'slow'"),
    }
    assert by_label(text, "citrix_upstream_data_issues_total", "issue", collector="monitor") == {
        "unknown_enum": 10,  # 4 session states, 3 machine states, 2 group kinds, 1 reason
        "bad_number": 4,  # three $apply counts, one duration
        "negative": 1,
        "out_of_range": 1,
        "bad_timestamp": 2,
        "null": 1,
        "repaired_label": 1,
    }

    cid = {"customer_id": "bad1"}
    sales = by_label(text, "citrix_sessions", "state", delivery_group="Sales", **cid)
    assert {k: v for k, v in sales.items() if v} == {"active": 5, "unknown": 13}
    assert len(sales) == 10  # zero-filled: a live group
    plain = by_label(text, "citrix_sessions", "state", delivery_group="Plain", **cid)
    assert {k: v for k, v in plain.items() if v} == {"reconnecting": 4}
    assert by_label(text, "citrix_sessions", "state", delivery_group="unknown") == {"active": 1}
    assert by_label(text, "citrix_machines", "registration_state", delivery_group="Sales") == {
        "unknown": 1,
        "registered": 6,
        "unregistered": 5,
    }
    assert by_label(text, "citrix_machines", "registration_state", delivery_group="unknown") == {
        "registered": 2
    }
    assert by_label(text, "citrix_machines_in_maintenance", "delivery_group") == {
        "Sales": 5,
        "Plain": 0,
        "Idle": 0,
        "unknown": 0,
    }
    # A live group without machines still has every machine series, at 0.
    assert by_label(text, "citrix_machines", "registration_state", delivery_group="Idle") == {
        "unknown": 0,
        "registered": 0,
        "unregistered": 0,
    }
    idle_faulted = by_label(text, "citrix_machines_faulted", "fault_state", delivery_group="Idle")
    assert idle_faulted == dict.fromkeys(monitor_enums.FAULTED_STATES.values(), 0)
    idle_power = by_label(
        text, "citrix_machines_by_power_state", "power_state", delivery_group="Idle"
    )
    assert idle_power == dict.fromkeys(monitor_enums.POWER_STATE.values(), 0)
    power = by_label(text, "citrix_machines_by_power_state", "power_state", delivery_group="Sales")
    assert {k: v for k, v in power.items() if v} == {"on": 8, "off": 3, "unknown": 1}
    faulted = by_label(text, "citrix_machines_faulted", "fault_state", delivery_group="Sales")
    assert {k: v for k, v in faulted.items() if v} == {"failed_to_start": 5}
    info = [
        dict(labels) for (name, labels) in samples(text) if name == "citrix_delivery_group_info"
    ]
    assert sorted(
        (d["delivery_group"], d["delivery_type"], d["session_support"]) for d in info
    ) == [
        ("Idle", "desktops_and_apps", "unknown"),
        ("Plain", "desktops_only", "multi_session"),
        ("Sales", "apps_only", "single_session"),
    ]
    assert by_label(text, "citrix_connection_failures_total", "failure_reason", **cid) == {
        name: {"licensing": 2, "unknown": 1}.get(name, 0)
        for name in monitor_enums.SESSION_FAILURE_CODE.values()
    }
    logons = "citrix_logon_duration_seconds"
    assert by_label(text, f"{logons}_count", "delivery_group") == {"Sales": 1, "unknown": 1}
    assert by_label(text, f"{logons}_sum", "delivery_group") == {"Sales": 4.0, "unknown": 2.5}


async def test_an_apply_error_that_is_not_a_rejection_fails_the_poll_and_is_not_remembered(
    aiohttp_server: ServerFactory, exporter_factory: Factory
):
    hostile = careless_gateway("bad1")
    queries: list[dict[str, str]] = []
    hostile.on("bad1", "/monitorodata/Machines", gone_once(queries, lambda q: "$apply" in q))
    server = await aiohttp_server(hostile.app())
    url = str(server.make_url("")).rstrip("/")
    exporter = await exporter_factory(hostile_config(url), clock=Clock(T0))
    assert not await exporter.poller.run_all_once()
    assert "404" in (exporter.poller.jobs[0].status.last_error or "")
    await poll(exporter)
    assert queries == [MACHINES_APPLY, MACHINES_APPLY]


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_requests_in_flight_never_exceed_the_configured_concurrency(
    aiohttp_server: ServerFactory, exporter_factory: Factory, concurrency: int
):
    """Sessions and machines (and failures and logons) are fetched together, one request
    each: as many at once as `concurrency` allows, never more."""
    hostile = careless_gateway("bad1")
    in_flight: list[int] = [0]
    most: list[int] = [0]

    def slow(handler: Callable[[web.Request], web.Response]) -> Any:
        async def answer_later(request: web.Request) -> web.Response:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
            await asyncio.sleep(0.05)
            in_flight[0] -= 1
            return handler(request)

        return answer_later

    hostile.on("bad1", "/monitorodata/Machines", slow(answer(MACHINE_COUNTS)))
    hostile.on("bad1", "/monitorodata/ConnectionFailureLogs", slow(answer(FAILURES)))
    hostile.on("bad1", "/monitorodata/Sessions", slow(answer([])))
    server = await aiohttp_server(hostile.app())
    url = str(server.make_url("")).rstrip("/")
    exporter = await exporter_factory(hostile_config(url, concurrency=concurrency), clock=Clock(T0))
    await poll(exporter)
    assert most[0] == concurrency


# -- boundaries ------------------------------------------------------------------------------


async def test_watermark_counts_a_row_stamped_at_the_start_and_remembers_it_at_the_cutoff(
    base_url, exporter_factory: Factory, sim_state: SimulatorState
):
    """The exporter starts half a second past a whole second, so the gateway (whole-second
    `gt` filter) returns rows from that second; the row stamped exactly at the start counts,
    the one before it does not, and the counted row stays remembered while the window's
    cutoff sits exactly on it."""
    tenant = use(sim_state, build_tenant())
    start = T0 + timedelta(seconds=0.5)
    tenant.add_failure(failure_date=start, value=5)
    tenant.add_failure(failure_date=T0 + timedelta(seconds=0.25), value=5)
    clock = Clock(T0)
    clock.now = start.timestamp()
    exporter = await exporter_factory(monitor_config(base_url, overlap="30s"), clock=clock)
    failures = "citrix_connection_failures_total"
    for _ in range(3):
        clock.now += 30
        text = await poll(exporter)
        assert value(text, failures, failure_reason="licensing") == 1
    filters = [
        r.query["$filter"] for r in sim_state.requests if r.path.endswith("ConnectionFailureLogs")
    ]
    assert filters == ["FailureDate gt 2030-01-01T12:00:00Z"] * 2 + [
        "FailureDate gt 2030-01-01T12:00:30Z"
    ]


async def test_logon_buckets_hold_their_upper_bound_and_sum_in_seconds(
    base_url, exporter_factory: Factory, sim_state: SimulatorState
):
    tenant = use(sim_state, build_tenant())
    machine_id = tenant.machines_in("Finance")[0]["Id"]
    durations_ms = [0, 5000, 5001, 10000, 300000, 300001, 400000]
    for ms in durations_ms:
        tenant.add_session(machine_id, start=T0 + timedelta(seconds=5), logon_ms=ms)
    clock = Clock(T0)
    exporter = await exporter_factory(monitor_config(base_url), clock=clock)
    clock.now += 60
    text = await poll(exporter)
    name = "citrix_logon_duration_seconds"
    labels = {"customer_id": SEED_CUSTOMER, "delivery_group": "Finance"}
    assert by_label(text, f"{name}_bucket", "le", **labels) == {
        "5.0": 2, "10.0": 4, "15.0": 4, "20.0": 4, "30.0": 4, "45.0": 4, "60.0": 4, "90.0": 4,
        "120.0": 4, "180.0": 4, "300.0": 5, "+Inf": 7,
    }  # fmt: skip
    assert value(text, f"{name}_count", **labels) == 7
    assert value(text, f"{name}_sum", **labels) == pytest.approx(1020.002)


async def test_delivery_groups_are_refetched_when_the_refresh_interval_has_passed(
    base_url, exporter_factory: Factory, sim_state: SimulatorState
):
    use(sim_state, build_tenant())
    clock = Clock(T0)
    config = monitor_config(base_url, desktop_groups_refresh="300s")
    exporter = await exporter_factory(config, clock=clock)
    counts = []
    for offset in (0, 299, 300, 599):
        clock.now = T0.timestamp() + offset
        await poll(exporter)
        counts.append(sim_state.count("/monitorodata/DesktopGroups"))
    assert counts == [1, 1, 2, 2]


async def test_a_new_group_is_looked_up_once_the_names_are_a_minute_old(
    base_url, exporter_factory: Factory, sim_state: SimulatorState
):
    """Rows without a delivery group (build_tenant has some) never cause a lookup."""
    tenant = use(sim_state, build_tenant())
    clock = Clock(T0)
    config = monitor_config(base_url, desktop_groups_refresh="1h")
    exporter = await exporter_factory(config, clock=clock)
    await poll(exporter)
    clock.now += 120
    await poll(exporter)
    assert sim_state.count("/monitorodata/DesktopGroups") == 1
    new = tenant.add_desktop_group("New")
    tenant.add_session(tenant.add_machine(new["Id"])["Id"])
    clock.now = T0.timestamp() + 60  # names fetched 60 s ago: not yet
    text = await poll(exporter)
    assert sim_state.count("/monitorodata/DesktopGroups") == 1
    assert value(text, "citrix_sessions", delivery_group="New", state="active") is None
    assert value(text, "citrix_sessions", delivery_group="unknown", state="active") == 2
    clock.now += 1
    text = await poll(exporter)
    assert sim_state.count("/monitorodata/DesktopGroups") == 2
    assert value(text, "citrix_sessions", delivery_group="New", state="active") == 1
    assert value(text, "citrix_sessions", delivery_group="unknown", state="active") == 1
    clock.now += 120
    await poll(exporter)
    assert sim_state.count("/monitorodata/DesktopGroups") == 2


@pytest.mark.parametrize(
    ("max_series", "error"),
    [
        (67, "result has 68 series (2 groups), more than poll.max_series (67); not published"),
        (68, "series, more than poll.max_series (68); not published"),  # the whole result
    ],
)
async def test_the_zero_filled_series_are_checked_before_they_are_built(
    base_url, exporter_factory: Factory, sim_state: SimulatorState, max_series: int, error: str
):
    """Two live groups make 2 x 34 zero-filled series; the collector refuses more than the
    cap before building them (its message names the groups), at the cap it builds them and
    the poller refuses the whole, larger, result."""
    use(sim_state, build_tenant())
    customer = {
        "customer_id": SEED_CUSTOMER,
        "client_id": SEED_CLIENT,
        "client_secret": SEED_SECRET,
        "collectors": {"licensing": {"enabled": False}, "monitor": {}},
    }
    config = make_config(base_url, [customer], max_series=max_series)
    exporter = await exporter_factory(config, clock=Clock(T0))
    assert not await exporter.poller.run_all_once()
    last_error = exporter.poller.jobs[0].status.last_error or ""
    assert error in last_error
    assert ("groups)" in last_error) == (max_series == 67)


# -- what /metrics shows ---------------------------------------------------------------------


async def test_help_text_and_label_names_of_every_monitor_family(
    base_url, exporter_factory: Factory, sim_state: SimulatorState
):
    tenant = use(sim_state, build_tenant())
    tenant.add_failure(failure_date=T0 + timedelta(seconds=5), value=5)
    tenant.add_session(tenant.machines_in("Finance")[0]["Id"], start=T0 + timedelta(seconds=5))
    clock = Clock(T0)
    exporter = await exporter_factory(monitor_config(base_url), clock=clock)
    clock.now += 60
    text = await poll(exporter)
    helps = {
        line.split(" ", 3)[2]: line.split(" ", 3)[3]
        for line in text.splitlines()
        if line.startswith("# HELP citrix_")
    }
    monitor_help = {
        "citrix_sessions": "Open sessions (EndDate null) by delivery group and ConnectionState.",
        "citrix_machines": "Active machines (LifecycleState 0) by CurrentRegistrationState.",
        "citrix_machines_in_maintenance": "Active machines in maintenance mode.",
        "citrix_machines_faulted": "Active machines with a fault (FaultState other than "
        "unknown or none).",
        "citrix_machines_by_power_state": "Active machines by CurrentPowerState.",
        "citrix_machines_powered_on": "Active machines powered on (CurrentPowerState on) and "
        "not in maintenance mode: the ones expected to be registered.",
        "citrix_machines_unregistered_powered_on": "Of citrix_machines_powered_on, those "
        "unregistered: all of them is a delivery group down; powered-off machines (autoscale "
        "at night) are not counted.",
        "citrix_delivery_group_info": "Always 1 for each active delivery group with machines "
        "or sessions; labels describe it.",
        "citrix_connection_failures_total": "Connection failures (ConnectionFailureLogs rows) "
        "seen since the exporter started, by failure reason.",
        "citrix_connection_failures_by_group_total": "Connection failures seen since the "
        "exporter started, by the delivery group of their machine (unknown: no machine, as "
        "when none was available, or one not known) and failure reason.",
        "citrix_logon_duration_seconds": "Logon duration (LogOnDuration) of sessions that "
        "started since the exporter started.",
    }
    for name, help_text in monitor_help.items():
        assert helps[name] == f"{help_text} {SUFFIX}"
    label_names = {
        "citrix_sessions": {"customer_id", "delivery_group", "state"},
        "citrix_machines": {"customer_id", "delivery_group", "registration_state"},
        "citrix_machines_in_maintenance": {"customer_id", "delivery_group"},
        "citrix_machines_faulted": {"customer_id", "delivery_group", "fault_state"},
        "citrix_machines_by_power_state": {"customer_id", "delivery_group", "power_state"},
        "citrix_machines_powered_on": {"customer_id", "delivery_group"},
        "citrix_machines_unregistered_powered_on": {"customer_id", "delivery_group"},
        "citrix_delivery_group_info": {
            "customer_id", "delivery_group", "delivery_type", "session_support",
        },
        "citrix_connection_failures_total": {"customer_id", "failure_reason"},
        "citrix_connection_failures_by_group_total": {
            "customer_id", "delivery_group", "failure_reason",
        },
        "citrix_logon_duration_seconds_count": {"customer_id", "delivery_group"},
        "citrix_logon_duration_seconds_bucket": {"customer_id", "delivery_group", "le"},
    }  # fmt: skip
    for name, names in label_names.items():
        found = {frozenset(dict(labels)) for (sample, labels) in samples(text) if sample == name}
        assert found == {frozenset(names)}, name
        assert all(
            dict(labels)["customer_id"] == SEED_CUSTOMER
            for (sample, labels) in samples(text)
            if sample == name
        )


async def test_logon_series_of_a_deleted_group_go_with_its_name_and_unknown_stays(
    base_url, exporter_factory: Factory, sim_state: SimulatorState
):
    tenant = use(sim_state, build_tenant())
    for group in ("Finance", "Call Center"):
        machine_id = tenant.machines_in(group)[0]["Id"]
        tenant.add_session(machine_id, start=T0 + timedelta(seconds=5), logon_ms=8000)
    tenant.add_session(None, start=T0 + timedelta(seconds=5), logon_ms=8000)
    clock = Clock(T0)
    exporter = await exporter_factory(monitor_config(base_url), clock=clock)
    clock.now += 60
    text = await poll(exporter)
    counts = "citrix_logon_duration_seconds_count"
    assert by_label(text, counts, "delivery_group") == {
        "Finance": 1,
        "Call Center": 1,
        "unknown": 1,
    }
    tenant.remove_desktop_group("Call Center")
    clock.now += 600  # the names are refreshed
    text = await poll(exporter)
    assert by_label(text, counts, "delivery_group") == {"Finance": 1, "unknown": 1}
