"""Shared by the tests of the observed-API collectors: a fixed clock, state and config."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import generate_latest

from exporter.config import Config
from exporter.runtime import Exporter
from exporter.simulator.scenarios import observed_state
from exporter.simulator.state import SimulatorState
from tests.support.helpers import SEED_CLIENT, SEED_CUSTOMER, SEED_SECRET

NOW = datetime(2030, 6, 15, 12, 0, tzinfo=UTC)
NOW_TS = NOW.timestamp()
DAY = 86400.0


def fixed_state(tenants: int = 3) -> SimulatorState:
    """The observed scenario anchored on NOW, with the simulator's clock at NOW too."""
    state = observed_state(NOW, tenants=tenants)
    state.now = lambda: NOW
    return state


def observed_config(base_url: str, **collectors: dict[str, Any]) -> Config:
    """The seed customer with only the given collectors enabled, each pointed at `base_url`."""
    sections: dict[str, Any] = {"licensing": {"enabled": False}, "monitor": {"enabled": False}}
    for name, options in collectors.items():
        sections[name] = {"enabled": True, "url": base_url, **options}
    return Config.model_validate(
        {
            "poll": {"interval": 60, "timeout": 5, "retry": {"attempts": 2, "base_delay": 1}},
            "customers": [
                {
                    "customer_id": SEED_CUSTOMER,
                    "client_id": SEED_CLIENT,
                    "client_secret": SEED_SECRET,
                    "api_url": base_url,
                    "collectors": sections,
                }
            ],
        }
    )


async def scrape(
    factory: Callable[..., Awaitable[Exporter]], config: Config, polls: int = 1
) -> tuple[Exporter, str]:
    """Open an exporter on the fixed clock, poll `polls` times, return it and /metrics text."""
    exporter = await factory(config, clock=lambda: NOW_TS)
    for _ in range(polls):
        await exporter.poller.run_all_once()
    return exporter, generate_latest(exporter.registry).decode()


async def rescrape(exporter: Exporter) -> str:
    await exporter.poller.run_all_once()
    return generate_latest(exporter.registry).decode()
