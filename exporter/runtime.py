"""Wires one exporter together: connections, collectors, poller, registry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import TracebackType

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
from .metrics import DataIssues, ReloadStatus, SelfMetrics, build_info
from .poller import Poller, PollJob, StatusCollector
from .reload import Plan
from .snapshot import SnapshotStore
from .upstream.client import ApiClient, Sleep
from .upstream.connections import Connections

log = get_logger("runtime")

# `_created` series double the exposition and mean nothing to alerting; off for the process.
disable_created_metrics()  # type: ignore[no-untyped-call]


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
        self._clock = clock
        # Published results are rendered when published, the own metrics per customer when
        # they change, the few others (`whole_registry`) at every scrape (exposition.scrape).
        # `own_registry` holds every own metric (?name[] filters); `registry` holds those and
        # the published results, for --once and whole-registry readers.
        self.own_registry = CollectorRegistry()
        self.whole_registry = CollectorRegistry()
        self.metrics = SelfMetrics(self.own_registry)
        self.store = SnapshotStore(config.poll.max_staleness, clock)
        self.reloads = ReloadStatus(clock())
        whole = (
            build_info(),
            *self.reloads.collectors,
            PROCESS_COLLECTOR,
            PLATFORM_COLLECTOR,
            GC_COLLECTOR,
        )
        for collector in whole if process_metrics else whole[:3]:
            self.own_registry.register(collector)
            self.whole_registry.register(collector)
        self.connections = Connections(config, self.metrics, sleep=sleep, clock=clock)
        self.api_clients: dict[str, ApiClient] = self.connections.clients
        self.poller = Poller([], self.store, clock, config.poll.max_series)
        self.status = StatusCollector(self.poller)
        self.own_registry.register(self.status)
        self.per_customer = (self.metrics.series, self.status)
        self.registry = CollectorRegistry()  # a registry collects the registries in it, in order
        self.registry.register(self.own_registry)
        self.registry.register(self.store)

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
        """Open the customers' connections (session, API client, token manager) and create
        each customer's collectors; polling starts only with `poller.start()`."""
        self.connections.open()
        for customer in self.config.customers:
            self.poller.jobs.extend(self._jobs(customer))

    def _jobs(self, customer: CustomerConfig) -> list[PollJob]:
        """One job per enabled collector of `customer`, on its client from `connections`."""
        poll = self.config.poll
        api = self.connections.clients[customer.customer_id]
        return [
            PollJob(
                customer.customer_id,
                entry.collector(
                    CollectorContext(
                        customer,
                        api,
                        DataIssues(self.metrics, customer.customer_id, entry.name),
                        self._clock,
                        poll.max_series,
                    ),
                    options,
                ),
                options.interval_or(poll.interval),
            )
            for entry, options in registry.enabled(customer.collectors)
        ]

    async def apply(self, config: Config, plan: Plan) -> None:
        """Apply a validated `config` as `plan` says (reload.py): removed customers' and
        rebuilt jobs stop first, so nothing of theirs is published or counted after their
        series are dropped; kept jobs keep their collector, status and task."""
        rebuilt = {*plan.removed, *plan.collectors}
        await self.poller.remove(job.key for job in self.poller.jobs if job.customer_id in rebuilt)
        self.config = config
        self.connections.update(config, plan.credentials)
        for customer_id in plan.removed:
            self.metrics.series.remove(customer_id)
        self.store.max_staleness = config.poll.max_staleness
        self.poller.max_series = config.poll.max_series
        customers = {customer.customer_id: customer for customer in config.customers}
        for job in self.poller.jobs:
            job.collector.ctx.customer = customers[job.customer_id]
            job.collector.ctx.max_series = config.poll.max_series
            interval = job.collector.config.interval_or(config.poll.interval)
            if interval != job.interval:
                self.poller.reschedule(job, interval)
        self.poller.add(
            job for customer_id in (*plan.added, *plan.collectors)
            for job in self._jobs(customers[customer_id])
        )  # fmt: skip
        self.store.retain({job.key for job in self.poller.jobs})

    async def close(self) -> None:
        await self.poller.stop()
        await self.connections.close()
