"""Connection failures by delivery group: a failure log names a machine, the collector maps it
to the machine's group with the active machines it fetches together with the group names."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from aiohttp import web
from aiohttp.test_utils import TestServer

from exporter.runtime import Exporter
from exporter.simulator.state import SimulatorState
from tests.support.helpers import SEED_CUSTOMER, Clock, value
from tests.support.monitor_gateway import (
    GROUPS,
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
BY_GROUP = "citrix_connection_failures_by_group_total"
TOTAL = "citrix_connection_failures_total"
MACHINE_GROUPS = "/monitorodata/Machines"


def after(seconds: float):
    return T0 + timedelta(seconds=seconds)


def machine_groups_queries(sim_state: SimulatorState) -> int:
    return sum(
        1
        for r in sim_state.requests
        if r.path.endswith(MACHINE_GROUPS) and r.query.get("$select") == "Id,DesktopGroupId"
    )


async def test_failures_are_counted_by_the_group_of_their_machine_and_the_total_is_unchanged(
    base_url, exporter_factory: Factory, sim_state: SimulatorState
):
    tenant = use(sim_state, build_tenant())
    finance = tenant.machines_in("Finance")[0]["Id"]
    calls = tenant.machines_in("Call Center")[0]["Id"]
    no_group = next(m["Id"] for m in tenant.machines if m["DesktopGroupId"] is None)
    tenant.add_failure(failure_date=after(1), value=5, machine_id=finance)
    tenant.add_failure(failure_date=after(2), value=5, machine_id=finance.upper())  # a GUID
    tenant.add_failure(failure_date=after(3), value=4, machine_id=finance)
    tenant.add_failure(failure_date=after(4), value=4, machine_id=calls)
    tenant.add_failure(failure_date=after(5), value=100)  # no machine was available
    tenant.add_failure(failure_date=after(6), value=4, machine_id=no_group)
    tenant.add_failure(failure_date=after(-1), value=4, machine_id=calls)  # before the start
    clock = Clock(T0)
    exporter = await exporter_factory(monitor_config(base_url), clock=clock)
    clock.now += 60
    text = await poll(exporter)
    cid = SEED_CUSTOMER
    assert by_label(
        text, BY_GROUP, "failure_reason", customer_id=cid, delivery_group="Finance"
    ) == {
        "licensing": 2,
        "connection_timeout": 1,
    }
    assert by_label(text, BY_GROUP, "failure_reason", delivery_group="Call Center") == {
        "connection_timeout": 1
    }
    assert by_label(text, BY_GROUP, "failure_reason", delivery_group="unknown") == {
        "no_machine_available": 1,
        "connection_timeout": 1,
    }
    assert len([s for s in text.splitlines() if s.startswith(BY_GROUP)]) == 5  # only seen pairs
    assert value(text, TOTAL, failure_reason="connection_timeout") == 3
    assert value(text, TOTAL, failure_reason="licensing") == 2
    assert value(text, TOTAL, failure_reason="session_preparation") == 0  # every reason, as before
    # Counters: the same rows are not counted again on the next poll.
    clock.now += 60
    text = await poll(exporter)
    assert value(text, BY_GROUP, delivery_group="Finance", failure_reason="licensing") == 2
    assert machine_groups_queries(sim_state) == 1  # with the names, on their cadence


async def test_a_machine_created_since_the_refresh_is_looked_up_once_the_map_is_a_minute_old(
    base_url, exporter_factory: Factory, sim_state: SimulatorState
):
    tenant = use(sim_state, build_tenant())
    clock = Clock(T0)
    config = monitor_config(base_url, desktop_groups_refresh="1h")
    exporter = await exporter_factory(config, clock=clock)
    await poll(exporter)
    new = tenant.add_machine(tenant.desktop_group("Finance")["Id"])["Id"]
    tenant.add_failure(failure_date=after(10), value=5, machine_id=new)
    clock.now = after(60).timestamp()  # the map is 60 s old: not yet
    text = await poll(exporter)
    assert machine_groups_queries(sim_state) == 1
    assert value(text, BY_GROUP, delivery_group="unknown", failure_reason="licensing") == 1
    tenant.add_failure(failure_date=after(70), value=5, machine_id=new)
    clock.now += 61
    text = await poll(exporter)
    assert machine_groups_queries(sim_state) == 2
    # What was counted stays where it was counted; the new row goes to the machine's group.
    assert value(text, BY_GROUP, delivery_group="unknown", failure_reason="licensing") == 1
    assert value(text, BY_GROUP, delivery_group="Finance", failure_reason="licensing") == 1
    tenant.add_failure(failure_date=after(130), value=5, machine_id="0" * 32)  # never known
    clock.now += 30
    await poll(exporter)
    assert machine_groups_queries(sim_state) == 2  # not looked up again within a minute


async def test_a_deleted_groups_failure_series_go_with_its_name_and_unknown_stays(
    base_url, exporter_factory: Factory, sim_state: SimulatorState
):
    tenant = use(sim_state, build_tenant())
    for group in ("Finance", "Call Center"):
        machine_id = tenant.machines_in(group)[0]["Id"]
        tenant.add_failure(failure_date=after(5), value=4, machine_id=machine_id)
    tenant.add_failure(failure_date=after(5), value=12)
    clock = Clock(T0)
    exporter = await exporter_factory(monitor_config(base_url), clock=clock)
    clock.now += 60
    text = await poll(exporter)
    assert by_label(text, BY_GROUP, "delivery_group") == {
        "Finance": 1,
        "Call Center": 1,
        "unknown": 1,
    }
    tenant.remove_desktop_group("Call Center")
    clock.now += 600  # the names are refreshed
    text = await poll(exporter)
    assert by_label(text, BY_GROUP, "delivery_group") == {"Finance": 1, "unknown": 1}
    assert value(text, TOTAL, failure_reason="connection_timeout") == 2  # the total keeps it


async def test_a_404_on_the_machines_after_the_names_answered_fails_the_poll(
    aiohttp_server: ServerFactory, exporter_factory: Factory
):
    """Not "not entitled": DesktopGroups answered. The next poll asks DesktopGroups again."""
    hostile = careless_gateway("bad1")
    queries: list[dict[str, str]] = []
    hostile.on("bad1", "/monitorodata/Machines", gone_once(queries, lambda q: "$apply" not in q))
    groups: list[str] = []

    def desktop_groups(request: web.Request) -> web.Response:
        groups.append(request.path)
        return answer(GROUPS)(request)

    hostile.on("bad1", "/monitorodata/DesktopGroups", desktop_groups)
    server = await aiohttp_server(hostile.app())
    url = str(server.make_url("")).rstrip("/")
    exporter = await exporter_factory(hostile_config(url), clock=Clock(T0))
    assert not await exporter.poller.run_all_once()
    status = exporter.poller.jobs[0].status
    assert "404" in (status.last_error or "")
    assert status.not_entitled is None  # a failure, not "nothing to collect"
    await poll(exporter)
    assert len(groups) == 2
    assert len(queries) == 2
