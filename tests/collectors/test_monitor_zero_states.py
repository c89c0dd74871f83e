"""Monitor `omit_zero_states` (issue 12, item 5): the exact series with and without it.

Without it (the default) every state of every live delivery group has a series, 0 or not; with
it the state series whose value is 0 are left out: sessions by state, machines by registration
and by power state, faulted machines by fault state. A group's in-maintenance count and its info
series stay, so a live group is always visible, and nothing else changes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from exporter.collector.monitor_enums import (
    CONNECTION_STATE,
    FAULTED_STATES,
    POWER_STATE,
    REGISTRATION_STATE,
)
from exporter.simulator.monitor import ConnectionState, MonitorData
from exporter.simulator.state import SimulatorState
from tests.support.helpers import (
    SEED_CLIENT,
    SEED_CUSTOMER,
    SEED_SECRET,
    Clock,
    make_config,
    samples,
)
from tests.support.monitor_tenant import T0, build_tenant, monitor_config, poll

STATE_METRICS = {
    "citrix_sessions": "state",
    "citrix_machines": "registration_state",
    "citrix_machines_by_power_state": "power_state",
    "citrix_machines_faulted": "fault_state",
}
OTHERS = (
    "citrix_machines_in_maintenance",
    "citrix_delivery_group_info",
    "citrix_connection_failures",
    "citrix_logon_duration_seconds",
)
# build_tenant()'s state series that are not 0: (metric, delivery group, state) -> value.
NOT_ZERO = {
    ("citrix_sessions", "Finance", "active"): 5,
    ("citrix_sessions", "Finance", "disconnected"): 2,
    ("citrix_sessions", "Call Center", "active"): 1,
    ("citrix_sessions", "Call Center", "preparing_session"): 1,
    ("citrix_sessions", "unknown", "active"): 1,
    ("citrix_machines", "Finance", "registered"): 5,
    ("citrix_machines", "Finance", "unregistered"): 1,
    ("citrix_machines", "Call Center", "registered"): 2,
    ("citrix_machines", "Call Center", "unregistered"): 1,
    ("citrix_machines", "unknown", "registered"): 1,
    ("citrix_machines_by_power_state", "Finance", "on"): 5,
    ("citrix_machines_by_power_state", "Finance", "off"): 1,
    ("citrix_machines_by_power_state", "Call Center", "on"): 3,
    ("citrix_machines_by_power_state", "unknown", "on"): 1,
    ("citrix_machines_faulted", "Finance", "failed_to_start"): 1,
    ("citrix_machines_faulted", "Call Center", "unregistered"): 1,
}
# Every state of the two live groups ("unknown" is not a group: it has only its counts).
ZERO_FILLED = 2 * sum(
    len(table) for table in (CONNECTION_STATE, REGISTRATION_STATE, FAULTED_STATES, POWER_STATE)
)


@pytest.fixture
def tenant(sim_state: SimulatorState) -> MonitorData:
    tenant = build_tenant()
    sim_state.customers[SEED_CUSTOMER].monitor = tenant
    return tenant


def monitor_customer(monitor: dict[str, Any]) -> dict[str, Any]:
    """The seed customer with only the Monitor collector, with these options."""
    return {
        "customer_id": SEED_CUSTOMER,
        "client_id": SEED_CLIENT,
        "client_secret": SEED_SECRET,
        "collectors": {"licensing": {"enabled": False}, "monitor": monitor},
    }


def state_series(text: str) -> dict[tuple[str, str, str], float]:
    """The state series of `text`: (metric, delivery group, state) -> value."""
    found = {}
    for (name, labels), value in samples(text).items():
        if name in STATE_METRICS:
            label = dict(labels)
            assert label["customer_id"] == SEED_CUSTOMER
            found[(name, label["delivery_group"], label[STATE_METRICS[name]])] = value
    return found


def other_series(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of the Monitor's other families."""
    return {key: value for key, value in samples(text).items() if key[0].startswith(OTHERS)}


async def test_default_zero_fills_and_the_option_leaves_exactly_the_zeros_out(
    base_url, exporter_factory, tenant
):
    filled = await poll(await exporter_factory(monitor_config(base_url), clock=Clock(T0)))
    config = monitor_config(base_url, omit_zero_states=True)
    omitted = await poll(await exporter_factory(config, clock=Clock(T0)))

    assert state_series(omitted) == NOT_ZERO
    everything = state_series(filled)
    assert {key: value for key, value in everything.items() if value} == NOT_ZERO
    # The zeros: every state of both live groups not listed above.
    zeros = {key for key, value in everything.items() if value == 0}
    assert len(zeros) == ZERO_FILLED - sum(group != "unknown" for _, group, _ in NOT_ZERO)
    assert {group for _, group, _ in zeros} == {"Finance", "Call Center"}
    # In maintenance (0 for Call Center), the info, failures and logons are the same either way.
    assert other_series(omitted) == other_series(filled)
    maintenance = {
        dict(labels)["delivery_group"]: value
        for (name, labels), value in samples(omitted).items()
        if name == "citrix_machines_in_maintenance"
    }
    assert maintenance == {"Finance": 1, "Call Center": 0, "unknown": 0}


async def test_a_state_that_drops_to_zero_disappears_and_comes_back(
    base_url, exporter_factory, tenant: MonitorData
):
    clock = Clock(T0)
    exporter = await exporter_factory(monitor_config(base_url, omit_zero_states=True), clock=clock)
    assert state_series(await poll(exporter))[("citrix_sessions", "Finance", "disconnected")] == 2
    for session in tenant.open_sessions():
        if session["ConnectionState"] == ConnectionState.DISCONNECTED:
            tenant.end_session(session["SessionKey"], at=T0 + timedelta(seconds=30))
    clock.now += 60
    series = state_series(await poll(exporter))
    assert ("citrix_sessions", "Finance", "disconnected") not in series
    assert series[("citrix_sessions", "Finance", "active")] == 5
    machine = tenant.machines_in("Finance")[0]["Id"]
    tenant.add_session(
        machine, connection_state=ConnectionState.DISCONNECTED, start=T0 + timedelta(minutes=2)
    )
    clock.now += 60
    assert state_series(await poll(exporter))[("citrix_sessions", "Finance", "disconnected")] == 1


@pytest.mark.parametrize(
    ("poll_default", "customer_value", "omitted"),
    [(True, None, True), (True, False, False), (False, True, True), (False, None, False)],
)
async def test_poll_default_and_customer_override(
    base_url, exporter_factory, tenant, poll_default: bool, customer_value, omitted: bool
):
    monitor = {} if customer_value is None else {"omit_zero_states": customer_value}
    customer = monitor_customer(monitor)
    config = make_config(base_url, [customer], omit_zero_states=poll_default)
    series = state_series(await poll(await exporter_factory(config, clock=Clock(T0))))
    assert (series == NOT_ZERO) is omitted
    assert len(series) == len(NOT_ZERO) if omitted else ZERO_FILLED + 3  # + unknown's 3


async def test_a_cap_the_zero_filled_result_exceeds_lets_the_omitting_one_through(
    base_url, exporter_factory, tenant
):
    """63 series: the zero-filled result (2 x 34 per group, checked before it is built) is
    refused; without the zeros the result is 16 state series, 3 each in maintenance, powered
    on and unregistered powered on, 2 info, and failures and logons, within the cap."""
    customer = monitor_customer({})
    filled = await exporter_factory(make_config(base_url, [customer], max_series=63))
    assert not await filled.poller.run_all_once()
    assert "(2 groups)" in (filled.poller.jobs[0].status.last_error or "")
    config = make_config(base_url, [customer], max_series=63, omit_zero_states=True)
    assert state_series(await poll(await exporter_factory(config, clock=Clock(T0)))) == NOT_ZERO


async def test_without_the_zeros_the_poller_refuses_a_result_over_the_cap(
    base_url, exporter_factory, tenant
):
    """The collector checks ahead only the zero-filled result; without the zeros the poller
    counts the whole result, and a cap it exceeds still publishes nothing."""
    config = make_config(base_url, [monitor_customer({})], max_series=10, omit_zero_states=True)
    exporter = await exporter_factory(config, clock=Clock(T0))
    assert not await exporter.poller.run_all_once()
    error = exporter.poller.jobs[0].status.last_error or ""
    assert "more than poll.max_series (10); not published" in error
    assert "groups)" not in error  # the whole result's count, not the collector's estimate
