"""The demo's autoscaled delivery group, read by the Monitor collector: at night its machines
are off and unregistered, which is no outage; an outage is powered-on machines none registered.

The simulator states are the ones the e2e alert test uses (`scenarios.autoscale_night`,
`scenarios.autoscale_outage`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import generate_latest

from exporter.simulator.autoscale import AUTOSCALE_GROUP, AWAKE_AT_NIGHT
from exporter.simulator.scenarios import (
    autoscale_night,
    autoscale_outage,
    demo_state,
    pin_autoscale,
)
from exporter.simulator.state import SimulatorState
from tests.support.helpers import make_config, value

CUSTOMER = "acme-demo"
MACHINES = 6
NOON = datetime(2030, 6, 3, 12, 0, tzinfo=UTC)
LATE = datetime(2030, 6, 3, 23, 0, tzinfo=UTC)


@pytest.fixture
def sim_state() -> SimulatorState:
    state = demo_state(NOON)
    state.now = lambda: NOON
    return state


def config(base_url: str, state: SimulatorState):
    customer = state.customers[CUSTOMER]
    return make_config(base_url, [{
        "customer_id": CUSTOMER, "client_id": customer.client_id,
        "client_secret": customer.client_secret,
        "collectors": {"licensing": {"enabled": False}, "monitor": {}},
    }])  # fmt: skip


async def group_figures(exporter) -> tuple[float | None, ...]:
    assert await exporter.poller.run_all_once(), exporter.poller.jobs[0].status.last_error
    text = generate_latest(exporter.registry).decode()
    group = {"customer_id": CUSTOMER, "delivery_group": AUTOSCALE_GROUP}
    return (
        value(text, "citrix_machines_powered_on", **group),
        value(text, "citrix_machines_unregistered_powered_on", **group),
        value(text, "citrix_machines", registration_state="unregistered", **group),
        value(text, "citrix_machines_by_power_state", power_state="off", **group),
    )


async def test_day_night_by_the_clock_and_the_pinned_states(
    base_url, exporter_factory, sim_state: SimulatorState
):
    exporter = await exporter_factory(config(base_url, sim_state))
    # (powered on, of those unregistered, unregistered, off)
    assert await group_figures(exporter) == (MACHINES, 0, 0, 0)  # day
    sim_state.now = lambda: LATE  # the demo clock reaches the night
    asleep = MACHINES - AWAKE_AT_NIGHT
    assert await group_figures(exporter) == (AWAKE_AT_NIGHT, 0, asleep, asleep)
    sim_state.now = lambda: NOON
    autoscale_night(sim_state)  # pinned: night whatever the clock
    assert await group_figures(exporter) == (AWAKE_AT_NIGHT, 0, asleep, asleep)
    autoscale_outage(sim_state)  # every machine on, none registered
    assert await group_figures(exporter) == (MACHINES, MACHINES, MACHINES, 0)
    pin_autoscale(sim_state, None)  # back to the clock: day
    assert await group_figures(exporter) == (MACHINES, 0, 0, 0)


def test_only_known_states_can_be_pinned(sim_state: SimulatorState) -> None:
    with pytest.raises(ValueError, match="day, night, outage"):
        pin_autoscale(sim_state, "dusk")


def test_life_leaves_the_autoscaled_machines_alone(sim_state: SimulatorState) -> None:
    """Random unregistering would make the one machine awake at night look like an outage."""
    tenant = sim_state.customers[CUSTOMER].monitor
    autoscale_night(sim_state)
    tenant.tick(NOON)
    for hours in range(1, 25):
        tenant.tick(NOON + timedelta(hours=hours))
        awake = [
            m for m in tenant.machines_in(AUTOSCALE_GROUP) if m["CurrentRegistrationState"] == 1
        ]
        assert len(awake) == AWAKE_AT_NIGHT
