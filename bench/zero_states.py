"""Count the series the Monitor collector publishes with and without `omit_zero_states`.

Usage: python bench/zero_states.py [--machines 5000] [--groups 200] [--sessions 10000]

For the demo's customers (`--demo`, every collector), the seed customer, and a generated tenant
of the given size (licensing and monitor), it starts the simulator in this process, polls every
collector once with the Monitor's zero state series zero-filled (the default) and then omitted,
and prints the series of the whole /metrics document, of the Monitor families and of the four
state families (sessions, machines by registration and power state, faulted machines).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import Config
from exporter.demo import demo_config, start_simulator
from exporter.runtime import Exporter
from exporter.simulator.monitor_tenants import make_tenant
from exporter.simulator.scenarios import demo_state, seed_state
from exporter.simulator.state import SimulatorState

MONITOR = (
    "citrix_sessions",
    "citrix_machines",
    "citrix_delivery_group_info",
    "citrix_connection_failures",
    "citrix_logon_duration_seconds",
)
STATES = {
    "citrix_sessions",
    "citrix_machines",
    "citrix_machines_by_power_state",
    "citrix_machines_faulted",
}


def config_for(base_url: str, state: SimulatorState, omit: bool) -> Config:
    """The demo's config for `state` (secrets revealed), with `poll.omit_zero_states`."""
    data = demo_config(base_url, state).model_dump(mode="json")
    secrets = {c.customer_id: c.client_secret for c in state.customers.values()}
    data["poll"]["omit_zero_states"] = omit
    for customer in data["customers"]:
        customer["client_secret"] = secrets[customer["customer_id"]]
        del customer["collectors"]["monitor"]["omit_zero_states"]  # inherit poll's
    return Config.model_validate(data)


async def count(make_state: Callable[[], SimulatorState], omit: bool) -> tuple[int, int, int]:
    """(all series, Monitor series, state series) after one poll of every collector."""
    state = make_state()
    runner, base_url = await start_simulator(state)
    try:
        async with Exporter(config_for(base_url, state, omit), process_metrics=False) as exporter:
            assert await exporter.poller.run_all_once(), "a poll failed"
            text = generate_latest(exporter.registry).decode()
    finally:
        await runner.cleanup()
    totals = [0, 0, 0]
    for family in text_string_to_metric_families(text):
        samples = len(family.samples)
        totals[0] += samples
        totals[1] += samples if family.name.startswith(MONITOR) else 0
        totals[2] += samples if family.name in STATES else 0
    return totals[0], totals[1], totals[2]


def generated(machines: int, groups: int, sessions: int) -> Callable[[], SimulatorState]:
    def make() -> SimulatorState:
        state = seed_state()
        customer = next(iter(state.customers.values()))
        customer.monitor = make_tenant(sessions, machines, groups, now=datetime.now(UTC))
        return state

    return make


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machines", type=int, default=5000)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=10000)
    args = parser.parse_args()
    tenants = {
        "demo (3 customers)": demo_state,
        "seed (1 customer)": seed_state,
        f"{args.machines:,} machines in {args.groups} groups": generated(
            args.machines, args.groups, args.sessions
        ),
    }
    print("| tenant | zero states | all series | Monitor series | state series |")
    print("|---|---|---:|---:|---:|")
    for name, make_state in tenants.items():
        for omit in (False, True):
            figures = await count(make_state, omit)
            row = " | ".join(f"{n:,}" for n in figures)
            print(f"| {name} | {'omitted' if omit else 'zero-filled'} | {row} |", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
