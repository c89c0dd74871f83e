"""A small Monitor tenant with known figures, and the config and poll that read it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import generate_latest

from exporter.runtime import Exporter
from exporter.simulator.monitor import (
    ConnectionState,
    FaultState,
    MonitorData,
    PowerState,
    RegistrationState,
)
from tests.support.helpers import SEED_CLIENT, SEED_CUSTOMER, SEED_SECRET, make_config

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)  # the exporter starts here


def monitor_config(base_url: str, **monitor: Any):
    return make_config(
        base_url,
        [
            {
                "customer_id": SEED_CUSTOMER,
                "client_id": SEED_CLIENT,
                "client_secret": SEED_SECRET,
                "collectors": {"licensing": {"enabled": False}, "monitor": monitor},
            }
        ],
    )


def build_tenant() -> MonitorData:
    """Two delivery groups with known figures, plus rows that belong to no group."""
    tenant = MonitorData(clock=T0 - timedelta(days=1))
    finance = tenant.add_desktop_group("Finance", delivery_type=2, session_support=2)
    calls = tenant.add_desktop_group("Call Center", delivery_type=0, session_support=1)
    f = [tenant.add_machine(finance["Id"]) for _ in range(4)]
    tenant.add_machine(
        finance["Id"],
        registration_state=RegistrationState.UNREGISTERED,
        power_state=PowerState.OFF,
        fault_state=FaultState.FAILED_TO_START,
    )
    tenant.add_machine(finance["Id"], maintenance=True)
    c = [tenant.add_machine(calls["Id"]) for _ in range(2)]
    tenant.add_machine(
        calls["Id"],
        registration_state=RegistrationState.UNREGISTERED,
        power_state=PowerState.ON,
        fault_state=FaultState.UNREGISTERED,
    )
    tenant.add_machine(None)  # no delivery group: "unknown"
    for state in [ConnectionState.ACTIVE] * 5 + [ConnectionState.DISCONNECTED] * 2:
        tenant.add_session(f[0]["Id"], connection_state=state)
    tenant.add_session(c[0]["Id"], connection_state=ConnectionState.ACTIVE)
    tenant.add_session(c[1]["Id"], connection_state=ConnectionState.PREPARING_SESSION)
    tenant.add_session(None, connection_state=ConnectionState.ACTIVE)
    tenant.add_session(f[1]["Id"], end=T0 - timedelta(hours=1))  # closed: not counted
    return tenant


async def poll(exporter: Exporter) -> str:
    assert await exporter.poller.run_all_once(), exporter.poller.jobs[0].status.last_error
    return generate_latest(exporter.registry).decode()
