"""Per-customer connections to Citrix Cloud: one HTTP session and API client per customer.

The daemon (`runtime.Exporter`) and `backfill` both reach Citrix Cloud through `Connections`,
so a customer's CA file, proxy settings, pool size, token manager and retry policy are the same
whichever command runs; neither builds sessions of its own.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable

import aiohttp

from ..config import Config, CustomerConfig
from ..metrics import SelfMetrics
from .client import ApiClient, Sleep

# Above every configurable per-customer concurrency (monitor 8, partner 16), so the pool never
# silently caps them; the collectors' own limits apply.
POOL_SIZE = 16


def ssl_context(customer: CustomerConfig) -> ssl.SSLContext | bool:
    """System trust plus the customer's extra CA bundle, if any (for TLS-inspecting proxies)."""
    if not customer.ca_file:
        return True
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=customer.ca_file)
    return context


class Connections:
    """The API clients of every customer in `config`, keyed by customer id: `open` creates the
    sessions and clients, `close` closes the sessions."""

    def __init__(
        self,
        config: Config,
        metrics: SelfMetrics,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._metrics = metrics
        self._sleep = sleep
        self._clock = clock
        self.clients: dict[str, ApiClient] = {}
        self._sessions: list[aiohttp.ClientSession] = []

    def open(self) -> dict[str, ApiClient]:
        """One session (the customer's CA file, HTTPS_PROXY / NO_PROXY) and client a customer."""
        for customer in self._config.customers:
            session = aiohttp.ClientSession(
                trust_env=True,
                connector=aiohttp.TCPConnector(ssl=ssl_context(customer), limit=POOL_SIZE),
            )
            self._sessions.append(session)
            self.clients[customer.customer_id] = ApiClient(
                session,
                customer,
                self._config.poll,
                self._metrics,
                sleep=self._sleep,
                clock=self._clock,
            )
        return self.clients

    async def close(self) -> None:
        for session in self._sessions:
            await session.close()
        self._sessions = []
