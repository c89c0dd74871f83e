"""`--demo`: the embedded Citrix Cloud simulator on a free loopback port, and a config for it."""

from __future__ import annotations

from aiohttp import web

from .config import Config
from .simulator.app import create_app
from .simulator.observed_data import ObservedData
from .simulator.scenarios import demo_state
from .simulator.state import SimulatorState

DEMO_INTERVAL = "15s"


async def start_simulator(state: SimulatorState | None = None) -> tuple[web.AppRunner, str]:
    """Start the simulator on 127.0.0.1 with an OS-chosen port; returns (runner, base URL)."""
    runner = web.AppRunner(create_app(state or demo_state()), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def observed_collectors(base_url: str) -> dict[str, dict[str, object]]:
    """The collectors of observed APIs, pointed at the simulator instead of their hosts."""
    return {
        name: {"enabled": True, "url": base_url}
        for name in ("products", "concurrent", "license_servers", "partner")
    }


def demo_config(base_url: str, state: SimulatorState) -> Config:
    """Every simulated customer, polled every 15 s so the demo looks alive quickly (the web
    flags apply as they do to any config)."""
    return Config.model_validate(
        {
            "poll": {"interval": DEMO_INTERVAL, "timeout": "10s"},
            "customers": [
                {
                    "customer_id": customer.customer_id,
                    "client_id": customer.client_id,
                    "client_secret": customer.client_secret,
                    "api_url": base_url,
                    "collectors": (
                        observed_collectors(base_url) if customer.observed != ObservedData() else {}
                    ),
                }
                for customer in state.customers.values()
            ],
        }
    )
