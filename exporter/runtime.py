"""Wires one exporter together: HTTP sessions, token managers, collectors, poller, registry."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from types import TracebackType

import aiohttp
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    disable_created_metrics,
)

from .collector import registry
from .collector.base import CollectorContext
from .config import Config, CustomerConfig
from .log import get_logger
from .metrics import DataIssues, SelfMetrics
from .poller import Poller, PollJob, StatusCollector
from .snapshot import SnapshotStore
from .upstream.client import ApiClient, Sleep, customer_api

log = get_logger("runtime")

# `_created` series double the exposition and mean nothing to alerting; off for the process.
disable_created_metrics()  # type: ignore[no-untyped-call]


def ssl_context(customer: CustomerConfig) -> ssl.SSLContext | bool:
    """System trust plus the customer's extra CA bundle, if any (for TLS-inspecting proxies)."""
    if not customer.ca_file:
        return True
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=customer.ca_file)
    return context


class Exporter:
    """Everything that runs for one config; use as `async with Exporter(config) as exp:`."""

    def __init__(
        self,
        config: Config,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        process_metrics: bool = True,
    ) -> None:
        self.config = config
        self._sleep = sleep
        self._clock = clock
        self.registry = CollectorRegistry()
        self.metrics = SelfMetrics(self.registry)
        self.store = SnapshotStore(config.poll.max_staleness, clock)
        self.registry.register(self.store)
        if process_metrics:
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.registry.register(collector)
        self.api_clients: dict[str, ApiClient] = {}
        self._sessions: list[aiohttp.ClientSession] = []
        self.poller = Poller([], self.store, clock, config.poll.max_series)
        self.registry.register(StatusCollector(self.poller))

    async def __aenter__(self) -> Exporter:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Create one HTTP session, API client (with its token manager) and set of collectors
        per customer; polling starts only with `poller.start()`."""
        poll = self.config.poll
        for customer in self.config.customers:
            session = aiohttp.ClientSession(
                trust_env=True,  # HTTPS_PROXY / NO_PROXY
                # Above every configurable per-customer concurrency (monitor 8, partner 16), so
                # the pool never silently caps them; the collectors' own limits apply.
                connector=aiohttp.TCPConnector(ssl=ssl_context(customer), limit=16),
            )
            self._sessions.append(session)
            api = customer_api(
                session, customer, poll, self.metrics, sleep=self._sleep, clock=self._clock
            )
            self.api_clients[customer.customer_id] = api
            for entry, options in registry.enabled(customer.collectors):
                ctx = CollectorContext(
                    customer,
                    api,
                    DataIssues(self.metrics, customer.customer_id, entry.name),
                    self._clock,
                    poll.max_series,
                )
                self.poller.jobs.append(
                    PollJob(
                        customer.customer_id,
                        entry.collector(ctx, options),
                        options.interval_or(poll.interval),
                    )
                )

    async def close(self) -> None:
        await self.poller.stop()
        for session in self._sessions:
            await session.close()
        self._sessions = []
