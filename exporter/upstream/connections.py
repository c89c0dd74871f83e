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
from collections.abc import Callable, Collection

import aiohttp

from ..config import Config, CustomerConfig
from ..config.files import file_identity
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
    session and clients, `update` applies a reload, `close` closes the session."""

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
        self._limiter: asyncio.Semaphore | None = None
        # One context per CA file: customers sharing a bundle share pooled connections too. The
        # file's identity is kept with it, so a reload reads a replaced bundle again.
        self._trust: dict[str | None, tuple[object, ssl.SSLContext | bool]] = {}

    def open(self) -> dict[str, ApiClient]:
        """One session (HTTPS_PROXY / NO_PROXY honoured) with a pool as large as the global cap,
        and a client a customer on it with the customer's own TLS trust."""
        cap = self._config.poll.max_concurrency
        self._session = aiohttp.ClientSession(
            trust_env=True, connector=aiohttp.TCPConnector(limit=cap, limit_per_host=0)
        )
        self._limiter = asyncio.Semaphore(cap)
        for customer in self._config.customers:
            self.clients[customer.customer_id] = self._client(customer)
        return self.clients

    def update(self, config: Config, new_token: Collection[str]) -> None:
        """Apply a reload: clients of removed customers go, added customers get one, the others
        are reconfigured in place (new tokens for `new_token`). The session, its pool and the
        global cap stay (`poll.max_concurrency` needs a restart)."""
        self._config = config
        customers = {customer.customer_id: customer for customer in config.customers}
        for customer_id in self.clients.keys() - customers.keys():
            del self.clients[customer_id]
        for customer_id, customer in customers.items():
            client = self.clients.get(customer_id)
            if client is None:
                self.clients[customer_id] = self._client(customer)
            else:
                transport = self._transport(customer)
                renew = customer_id in new_token
                client.reconfigure(transport, customer, config.poll, renew)

    def _client(self, customer: CustomerConfig) -> ApiClient:
        return ApiClient(
            self._transport(customer),
            customer,
            self._config.poll,
            self._metrics,
            sleep=self._sleep,
            clock=self._clock,
        )

    def _transport(self, customer: CustomerConfig) -> Transport:
        assert self._session is not None, "open() first"
        return Transport(self._session, self._trust_for(customer), self._limiter)

    def _trust_for(self, customer: CustomerConfig) -> ssl.SSLContext | bool:
        path = customer.ca_file
        known = self._trust.get(path)
        try:
            identity = _identity(path)
        except OSError:  # gone since the config was checked: keep what is loaded
            identity = known[0] if known else None
        if known is not None and known[0] == identity:
            return known[1]
        trust = ssl_context(customer)
        self._trust[path] = (identity, trust)
        return trust

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None


def _identity(path: str | None) -> object:
    """What tells a replaced CA file from the one loaded (None: the system store only)."""
    return None if path is None else file_identity(path)
