"""Connections to Citrix Cloud: one HTTP session for every customer, one API client per customer.

The daemon (`runtime.Exporter`) and `backfill` both reach Citrix Cloud through `Connections`,
so a customer's CA file, proxy settings, token manager, retry policy and the global cap on
requests in flight are the same whichever command runs; neither builds sessions of its own.
Why one session and how a CA file stays one customer's: `transport.py`.
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
from .transport import Transport


def ssl_context(customer: CustomerConfig) -> ssl.SSLContext | bool:
    """System trust plus the customer's extra CA bundle, if any (for TLS-inspecting proxies)."""
    if not customer.ca_file:
        return True
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=customer.ca_file)
    return context


class Connections:
    """The API clients of every customer in `config`, keyed by customer id: `open` creates the
    session and clients, `close` closes the session."""

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
        self._session: aiohttp.ClientSession | None = None

    def open(self) -> dict[str, ApiClient]:
        """One session (HTTPS_PROXY / NO_PROXY honoured) with a pool as large as the global cap,
        and a client a customer on it with the customer's own TLS trust."""
        cap = self._config.poll.max_concurrency
        session = aiohttp.ClientSession(
            trust_env=True, connector=aiohttp.TCPConnector(limit=cap, limit_per_host=0)
        )
        self._session = session
        limiter = asyncio.Semaphore(cap)
        # One context per CA file: customers sharing a bundle share pooled connections too.
        trust: dict[str | None, ssl.SSLContext | bool] = {}
        for customer in self._config.customers:
            if customer.ca_file not in trust:
                trust[customer.ca_file] = ssl_context(customer)
            self.clients[customer.customer_id] = ApiClient(
                Transport(session, trust[customer.ca_file], limiter),
                customer,
                self._config.poll,
                self._metrics,
                sleep=self._sleep,
                clock=self._clock,
            )
        return self.clients

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None
