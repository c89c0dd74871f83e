"""Runs every (customer, collector) job on its own schedule and records how each poll went.

Scrapes never trigger polls: each job is one asyncio task that polls, publishes to the
snapshot store, and sleeps until its next slot, at the job's own offset within its interval
(schedule.py), so customers' polls spread over the interval. A job's failure touches only its
own status.

A result is checked before it is published, because everything published is served by every
scrape: a result with more than `max_series` series (a tenant with 10,000 delivery groups) or
one that cannot be rendered as exposition text fails its own poll (`citrix_up` 0, reason in
the log) instead of bloating or breaking /metrics for every customer. The check is the render
itself: its text is what the store keeps and scrapes join. A result larger than
`INLINE_RENDER_MAX_SERIES` is rendered in a worker thread, so the event loop never stalls on it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as RegistryCollector

from .collector.base import Collector, SeriesLimitError
from .config import DEFAULT_MAX_SERIES
from .exposition.blocks import Rendered, render
from .exposition.changes import ChangeLog
from .log import LogOnce, get_logger, shown_error
from .schedule import delay_after_poll, slot_anchor, spread_offset
from .snapshot import SnapshotStore
from .upstream.errors import NotEntitledError, UpstreamError

log = get_logger("poller")

# About 10 us a series for both formats: up to ~2 ms on the loop; more goes to a worker thread.
INLINE_RENDER_MAX_SERIES = 200

STATUS_HELP = "Updated after every poll of the collector, which runs every collector interval."


class ResultRejectedError(UpstreamError):
    """A poll's result is not published: it cannot be rendered as exposition text."""


def count_series(families: list[Metric]) -> int:
    return sum(len(family.samples) for family in families)


def check_result(families: list[Metric], max_series: int) -> Rendered:
    """The result's exposition text; SeriesLimitError if `families` has more than `max_series`
    series, ResultRejectedError if it does not render as exposition text."""
    series = count_series(families)
    if series > max_series:
        raise SeriesLimitError(series, max_series)
    try:
        return render(families)
    except Exception as err:  # whatever breaks rendering rejects the result
        raise ResultRejectedError(
            f"result cannot be rendered as metrics: {type(err).__name__}: {err}"
        ) from None


async def checked(families: list[Metric], max_series: int) -> Rendered:
    """`check_result`, in a worker thread when the result is too large to render on the loop."""
    if count_series(families) <= INLINE_RENDER_MAX_SERIES:
        return check_result(families, max_series)
    return await asyncio.to_thread(check_result, families, max_series)


def error_text(error: str) -> str:
    """A poll error as stored for the landing page: scrubbed and cut (`log.shown_error`)."""
    return shown_error(error)


@dataclass
class PollStatus:
    """How the last poll of one job went; read by /metrics, /readyz and the landing page."""

    attempts: int = 0
    last_attempt_at: float | None = None
    last_success_at: float | None = None
    last_duration: float | None = None
    last_ok: bool | None = None
    last_error: str | None = None
    # The "not entitled" answer of the last poll (a success: there is nothing to collect),
    # None when the last poll got anything else.
    not_entitled: str | None = None

    @property
    def result(self) -> str:
        """The last poll's outcome in words, as the landing page shows it."""
        if self.not_entitled is not None:
            return "not entitled"
        return {None: "pending", True: "ok", False: "failed"}[self.last_ok]


@dataclass
class PollJob:
    customer_id: str
    collector: Collector[Any]
    interval: float
    status: PollStatus = field(default_factory=PollStatus)
    offset: float | None = None  # None: spread by the job's key (schedule.spread_offset)

    @property
    def name(self) -> str:
        return self.collector.name

    @property
    def slot_offset(self) -> float:
        """Seconds into each interval at which this job polls."""
        if self.offset is not None:
            return self.offset
        return spread_offset(self.customer_id, self.name, self.interval)

    @property
    def key(self) -> tuple[str, str]:
        return (self.customer_id, self.collector.name)


class Poller:
    """Owns the poll tasks of every job."""

    def __init__(
        self,
        jobs: Iterable[PollJob],
        store: SnapshotStore,
        clock: Callable[[], float] = time.time,
        max_series: int = DEFAULT_MAX_SERIES,
    ) -> None:
        self.jobs = list(jobs)
        self._store = store
        self._clock = clock
        self.max_series = max_series  # a reload may change it
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._wake: dict[tuple[str, str], asyncio.Event] = {}
        self._running = False
        self._not_entitled_logged: LogOnce[tuple[str, str]] = LogOnce()
        self.changes = ChangeLog()  # customers whose job status changed (StatusCollector)

    @property
    def ready(self) -> bool:
        """True once every job has finished at least one poll, successful or not."""
        return all(job.status.attempts > 0 for job in self.jobs)

    async def poll_once(self, job: PollJob) -> bool:
        """Poll one job now, publish or keep its values, and update its status."""
        status = job.status
        started = time.monotonic()
        status.last_attempt_at = self._clock()
        try:
            families = await job.collector.poll()
            rendered = await checked(families, self.max_series)
        except asyncio.CancelledError:
            raise
        except NotEntitledError as err:
            self._record_not_entitled(job, started, str(err))
            return True
        except UpstreamError as err:
            self._record_failure(job, started, str(err))
            log.error(
                "poll failed",
                extra={"customer_id": job.customer_id, "collector": job.name, "error": str(err)},
            )
            return False
        except Exception as err:
            self._record_failure(job, started, f"internal error: {type(err).__name__}: {err}")
            log.exception(
                "poll failed with an internal error",
                extra={"customer_id": job.customer_id, "collector": job.name},
            )
            return False
        self._store.publish(job.key, families, self._record_success(job, started), rendered)
        self._not_entitled_logged.clear(job.key)
        duration = time.monotonic() - started
        log.debug(
            "poll succeeded",
            extra={
                "customer_id": job.customer_id,
                "collector": job.name,
                "duration_seconds": round(duration, 3),
            },
        )
        return True

    def _record_success(
        self, job: PollJob, started: float, not_entitled: str | None = None
    ) -> float:
        """Record a poll that got an answer; returns its time, the result's publication time."""
        status = job.status
        now = self._clock()
        status.attempts += 1
        status.last_ok = True
        status.last_error = None
        status.not_entitled = not_entitled
        status.last_success_at = now
        status.last_duration = time.monotonic() - started
        self.changes.touch(job.customer_id)
        return now

    def _record_not_entitled(self, job: PollJob, started: float, error: str) -> None:
        """The documented "not entitled" answer (a 404): the poll succeeded, it learned that
        there is nothing to collect. `citrix_up` stays 1 and no alert fires; the collector's
        other series go at once; `citrix_collector_entitled` 0 and the landing page say why."""
        self._record_success(job, started, error_text(error))
        self._store.drop(job.key)
        if self._not_entitled_logged.first(job.key):
            log.warning(
                "customer is not entitled to this product (HTTP 404); will keep checking "
                "at the normal interval",
                extra={"customer_id": job.customer_id, "collector": job.name, "error": error},
            )

    def _record_failure(self, job: PollJob, started: float, error: str) -> None:
        status = job.status
        status.attempts += 1
        status.last_ok = False
        status.last_error = error_text(error)
        status.not_entitled = None
        status.last_duration = time.monotonic() - started
        self.changes.touch(job.customer_id)
        self._store.mark_failed(job.key)

    async def run_all_once(self) -> bool:
        """Poll every job once, concurrently; True if all succeeded."""
        results = await asyncio.gather(*(self.poll_once(job) for job in self.jobs))
        return all(results)

    def start(self) -> None:
        self._running = True
        for job in self.jobs:
            self._start(job)

    def _start(self, job: PollJob) -> None:
        self._wake[job.key] = asyncio.Event()
        self._tasks[job.key] = asyncio.create_task(
            self._loop(job), name=f"poll:{job.customer_id}:{job.name}"
        )

    async def stop(self) -> None:
        self._running = False
        await self._cancel(list(self._tasks))

    async def _cancel(self, keys: Collection[tuple[str, str]]) -> None:
        """Cancel the tasks of `keys` and wait until they have ended: nothing of theirs is
        published or counted after this returns."""
        tasks = [task for key in keys if (task := self._tasks.pop(key, None)) is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for key in keys:
            self._wake.pop(key, None)

    def add(self, jobs: Iterable[PollJob]) -> None:
        """Add jobs (a reload); once started, they poll at once and then on their slots."""
        for job in jobs:
            self.jobs.append(job)
            if self._running:
                self._start(job)

    async def remove(self, keys: Iterable[tuple[str, str]]) -> None:
        """Stop and forget the jobs of `keys` (a reload); a poll in flight is cancelled."""
        gone = set(keys)
        await self._cancel(gone)
        self.jobs = [job for job in self.jobs if job.key not in gone]

    def reschedule(self, job: PollJob, interval: float) -> None:
        """Give `job` a new interval (a reload): its next poll is at the first slot of the new
        interval at least half of it after the last one began; its state and task are kept."""
        job.interval = interval
        wake = self._wake.get(job.key)
        if wake is not None:
            wake.set()

    async def _loop(self, job: PollJob) -> None:
        """Poll at once, then once per slot of the job (fixed rate); a poll longer than the
        interval delays the next, never overlaps (schedule.delay_after_poll). A new interval
        (`reschedule`) wakes the wait and moves the slots."""
        interval = job.interval
        anchor = slot_anchor(job.slot_offset, interval, self._clock(), time.monotonic())
        while True:
            started = time.monotonic()
            await self.poll_once(job)
            while True:
                if job.interval != interval:
                    interval = job.interval
                    anchor = slot_anchor(job.slot_offset, interval, self._clock(), time.monotonic())
                delay = delay_after_poll(started, time.monotonic(), anchor, interval)
                if not await self._sleep(job.key, delay):
                    break

    async def _sleep(self, key: tuple[str, str], delay: float) -> bool:
        """Wait `delay` seconds; True if `reschedule` cut the wait short."""
        wake = self._wake.get(key)
        if wake is None:
            await asyncio.sleep(delay)
            return False
        wake.clear()
        try:
            await asyncio.wait_for(wake.wait(), delay)
        except TimeoutError:
            return False
        return True


class StatusCollector(RegistryCollector):
    """Exposes citrix_up, last success time and poll duration for every job.

    Also per customer (`changes`, `customers`, `families`), so a scrape renders again only the
    customers whose jobs finished a poll since the last one (`exposition.own`): the poller
    logs each status change (`Poller.changes`); a job added or removed makes readers resync.
    """

    def __init__(self, poller: Poller) -> None:
        self._poller = poller
        self._jobs: list[PollJob] | None = None  # the job list indexed, and its length
        self._jobs_count = 0
        self._by_customer: dict[str, list[PollJob]] = {}

    def changes(self, cursor: int) -> tuple[int, list[str] | None]:
        """The customers whose jobs' status changed after `cursor` (None: jobs were added or
        removed, every customer may have changed), and the cursor for next time."""
        jobs = self._poller.jobs
        cursor, changed = self._poller.changes.since(cursor)
        if jobs is self._jobs and len(jobs) == self._jobs_count:
            return cursor, changed
        by_customer: dict[str, list[PollJob]] = {}
        for job in jobs:
            by_customer.setdefault(job.customer_id, []).append(job)
        self._jobs, self._jobs_count, self._by_customer = jobs, len(jobs), by_customer
        return cursor, None

    def customers(self) -> list[str]:
        """The customers with jobs, as of the last `changes()`."""
        return list(self._by_customer)

    def families(self, customer_id: str) -> list[Metric]:
        """One customer's families (its jobs as of the last `changes()`)."""
        return self._families(self._by_customer.get(customer_id, []))

    def describe(self) -> Iterable[Metric]:
        return self._families([])

    def collect(self) -> Iterable[Metric]:
        return self._families(self._poller.jobs)

    def _families(self, jobs: Iterable[PollJob]) -> list[Metric]:
        labels = ["customer_id", "collector"]
        up = GaugeMetricFamily(
            "citrix_up",
            f"1 if the collector's last poll of Citrix Cloud succeeded, else 0. {STATUS_HELP}",
            labels=labels,
        )
        last_success = GaugeMetricFamily(
            "citrix_last_success_timestamp_seconds",
            f"When the collector's last successful poll ended. {STATUS_HELP}",
            labels=labels,
        )
        duration = GaugeMetricFamily(
            "citrix_collector_duration_seconds",
            f"Wall time of the collector's last poll. {STATUS_HELP}",
            labels=labels,
        )
        entitled = GaugeMetricFamily(
            "citrix_collector_entitled",
            "0 if the collector's last poll got the documented 'not entitled' answer (HTTP 404: "
            "the customer has no such product; its other series are absent, citrix_up stays 1), "
            f"else 1. {STATUS_HELP}",
            labels=labels,
        )
        for job in jobs:
            status = job.status
            key = [job.customer_id, job.name]
            if status.last_ok is None:
                continue  # no poll yet: absent rather than a misleading 0
            up.add_metric(key, 1.0 if status.last_ok else 0.0)
            entitled.add_metric(key, 0.0 if status.not_entitled is not None else 1.0)
            if status.last_success_at is not None:
                last_success.add_metric(key, status.last_success_at)
            if status.last_duration is not None:
                duration.add_metric(key, status.last_duration)
        return [up, last_success, duration, entitled]
