"""Monitor collector: DaaS sessions, machines, connection failures and logon durations.

Built to poll every minute for a tenant with 100,000 sessions without being throttled:
- Gauges (sessions, machines) are aggregated on the server with `$apply=groupby(...)` — one
  request each, however large the tenant. When the gateway rejects `$apply` (400/501) the
  query falls back, for that customer, to paging with a minimal `$select`, and remembers it.
- Rows are folded into per-group counts as pages arrive: memory grows with the number of
  groups, not rows.
- The failure counter and the logon histogram are incremental: each poll asks only for rows
  newer than a watermark, re-reading a small overlap window and de-duplicating by key, so rows
  that arrive late are neither lost nor counted twice.
- Delivery group names are fetched at most every `desktop_groups_refresh` and joined locally,
  and so is each active machine's group (ConnectionFailureLogs name a machine, not a group).
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from ..config import MonitorCollectorConfig
from ..log import get_logger
from ..upstream.errors import NotEntitledError, UpstreamError
from ..upstream.odata import Row, iter_pages
from .base import Collector, CollectorContext, GaugeSet, SeriesLimitError
from .fields import check_count
from .monitor_enums import (
    CONNECTION_STATE,
    DELIVERY_TYPE,
    FAULT_STATE,
    FAULTED_STATES,
    POWER_STATE,
    REGISTRATION_STATE,
    SESSION_FAILURE_CODE,
    SESSION_SUPPORT,
)

log = get_logger("monitor")

UNKNOWN_GROUP = "unknown"
LOGON_BUCKETS = (5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0)
BUCKET_BOUNDS = (*(repr(bound) for bound in LOGON_BUCKETS), "+Inf")  # their `le` labels
HELP_SUFFIX = "Polled from the Citrix Monitor Service OData API every monitor interval."
APPLY_REJECTED = (400, 501)
# The logical `endpoint` label of citrix_api_requests_total: one per entity set.
ENDPOINTS = {
    "DesktopGroups": "monitor_desktop_groups",
    "Machines": "monitor_machines",
    "Sessions": "monitor_sessions",
    "ConnectionFailureLogs": "monitor_connection_failure_logs",
}
UNKNOWN_GROUP_REFRESH_SECONDS = 60.0
# The zero-filled series of one active delivery group: sessions by state, machines by
# registration state, in maintenance, faulted by fault state, by power state, and the info.
# Then powered on (and not in maintenance), and of those the unregistered: 2 more.
SERIES_PER_GROUP = (
    len(CONNECTION_STATE) + len(REGISTRATION_STATE) + 1 + len(FAULTED_STATES)
    + len(POWER_STATE) + 1 + 2
)  # fmt: skip
# Only "on" is powered on: a machine turning on is unregistered for a while by design, and an
# unmanaged one (no power management: Remote PC, physical) has no power state to go by.
POWERED_ON = POWER_STATE[3]
UNREGISTERED = REGISTRATION_STATE[2]


def odata_datetime(timestamp: float) -> str:
    """An unquoted OData datetime literal, as the Monitor gateway expects in `$filter`."""
    return datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class DesktopGroup:
    name: str
    delivery_type: str
    session_support: str


def _failure(err: NotEntitledError) -> UpstreamError:
    """A 404 after DesktopGroups answered: a failed poll, not a tenant without DaaS."""
    return UpstreamError(str(err), err.status)


def _machine_group(row: Row) -> str | None:
    machine = row.get("Machine")
    group_id = machine.get("DesktopGroupId") if isinstance(machine, dict) else None
    return str(group_id) if group_id else None


def _scalar(row: Row, key: str) -> object:
    """`row[key]` if it can be a key of a count (a JSON scalar), else its type's name, which
    no enum table knows (so it is reported as unknown_enum)."""
    value = row.get(key)
    return value if value is None or isinstance(value, str | int | float) else type(value).__name__


def _session_key(row: Row) -> tuple[Any, ...]:
    return (_machine_group(row), _scalar(row, "ConnectionState"))


def _machine_key(row: Row) -> tuple[Any, ...]:
    group_id = row.get("DesktopGroupId")
    return (
        str(group_id) if group_id else None,
        _scalar(row, "CurrentRegistrationState"),
        _scalar(row, "CurrentPowerState"),
        _scalar(row, "FaultState"),
        _scalar(row, "IsInMaintenanceMode"),
    )


@dataclass(frozen=True)
class GroupedQuery:
    """A count of rows grouped by `key`: `apply` asks the server to count, `fallback` pages
    the rows with the fields `key` reads. Both forms yield rows `key` understands."""

    name: str
    entity_set: str
    apply: str
    fallback: dict[str, str]
    key: Callable[[Row], tuple[Any, ...]]


SESSIONS_BY_STATE = GroupedQuery(
    name="sessions",
    entity_set="Sessions",
    apply="filter(EndDate eq null)/groupby((ConnectionState,Machine/DesktopGroupId),"
    "aggregate($count as n))",
    fallback={
        "$filter": "EndDate eq null",
        "$select": "ConnectionState",
        "$expand": "Machine($select=DesktopGroupId)",
    },
    key=_session_key,
)
MACHINES_BY_STATE = GroupedQuery(
    name="machines",
    entity_set="Machines",
    apply="filter(LifecycleState eq 0)/groupby((DesktopGroupId,CurrentRegistrationState,"
    "CurrentPowerState,FaultState,IsInMaintenanceMode),aggregate($count as n))",
    fallback={
        "$filter": "LifecycleState eq 0",
        "$select": "DesktopGroupId,CurrentRegistrationState,CurrentPowerState,FaultState,"
        "IsInMaintenanceMode",
    },
    key=_machine_key,
)


class Watermark:
    """Rows newer than the last poll, re-reading `overlap` seconds, each key counted once.

    Keys are remembered only while their time is inside the overlap window, so the memory is
    bounded by the rows of that window, not by the rows since start.
    """

    def __init__(self, start: float, overlap: float) -> None:
        self._floor = start  # nothing from before the exporter started
        self._mark = start
        self._overlap = overlap
        self._seen: dict[str, float] = {}

    def since(self) -> float:
        return max(self._floor, self._mark - self._overlap)

    def is_new(self, key: str, when: float) -> bool:
        if key in self._seen or when < self._floor:
            return False
        self._seen[key] = when
        return True

    def advance(self, to: float) -> None:
        self._mark = max(self._mark, to)
        cutoff = self.since()
        self._seen = {key: when for key, when in self._seen.items() if when >= cutoff}


class MonitorCollector(Collector[MonitorCollectorConfig]):
    name = "monitor"

    def __init__(self, ctx: CollectorContext, config: MonitorCollectorConfig) -> None:
        super().__init__(ctx, config)
        self._limiter = asyncio.Semaphore(config.concurrency)
        # Keyed by id; `None` (a row without a group) is never a key, so it looks up nothing.
        self._groups: dict[str | None, DesktopGroup] = {}
        self._groups_fetched_at: float | None = None
        # Active machine id -> its DesktopGroupId, refreshed with the names: a failure row
        # names only its machine.
        self._machine_groups: dict[str, str | None] = {}
        self._apply_rejected: set[str] = set()  # queries whose `$apply` this gateway refused
        started = ctx.clock()
        self._failure_marks = Watermark(started, config.overlap)
        self._logon_marks = Watermark(started, config.overlap)
        self._failures: Counter[str] = Counter(dict.fromkeys(SESSION_FAILURE_CODE.values(), 0))
        self._failures_by_group: Counter[tuple[str, str]] = Counter()  # (group name, reason)
        self._logons: dict[str, _Histogram] = {}

    @property
    def _base(self) -> str:
        """Read at each request: a reload may move the customer to another API URL."""
        return f"{self.ctx.api.base_url}/monitorodata"

    # -- poll ------------------------------------------------------------------------------

    async def poll(self) -> list[Metric]:
        """A 404 on DesktopGroups, the poll's first query whenever the names are not cached,
        is "not entitled" (a tenant without DaaS answers 404 to every Monitor query). A 404 on
        another query, once DesktopGroups answered, is a failure; the names are forgotten so
        that the next poll asks DesktopGroups first and learns which it is."""
        poll_started = self.ctx.clock()
        await self._refresh_groups()
        try:
            return await self._poll_counts(poll_started)
        except NotEntitledError as err:
            self._groups_fetched_at = None
            raise _failure(err) from None

    async def _poll_counts(self, poll_started: float) -> list[Metric]:
        sessions, machines = await asyncio.gather(
            self._grouped(SESSIONS_BY_STATE),
            self._grouped(MACHINES_BY_STATE),
        )
        await asyncio.gather(self._poll_failures(), self._poll_logons())
        self._failure_marks.advance(poll_started)
        self._logon_marks.advance(poll_started)
        seen_ids = {key[0] for key in (*sessions, *machines)} - {None}
        if seen_ids - set(self._groups) and self._groups_age() > UNKNOWN_GROUP_REFRESH_SECONDS:
            await self._refresh_groups(force=True)  # a group created since the last refresh
        # Zero-filled series only for groups that have machines or sessions now: a deleted
        # group's series disappear on the next poll, even between name refreshes.
        live = sorted({self._groups[i].name for i in seen_ids if i in self._groups})
        # Zero-filling multiplies: checked before building them, 10,000 groups would be 320,000
        # samples in memory. Without the zeros the result grows with the upstream counts already
        # in memory, and the poller's check of the whole result is the one that counts.
        series = len(live) * SERIES_PER_GROUP
        if not self.config.omit_zero_states and series > self.ctx.max_series:
            raise SeriesLimitError(series, self.ctx.max_series, f" ({len(live):,} groups)")
        return [
            *self._session_families(sessions, live),
            *self._machine_families(machines, live),
            *self._group_info(live),
            *self._failure_families(),
            self._logon_family(),
        ]

    # -- delivery groups -------------------------------------------------------------------

    def _groups_age(self) -> float:
        if self._groups_fetched_at is None:
            return math.inf
        return self.ctx.clock() - self._groups_fetched_at

    async def _refresh_groups(self, force: bool = False) -> None:
        if not force and self._groups_age() < self.config.desktop_groups_refresh:
            return
        groups: dict[str | None, DesktopGroup] = {}
        params = {"$select": "Id,Name,DeliveryType,SessionSupport,LifecycleState"}
        async for rows in self._pages("DesktopGroups", params):
            for row in rows:
                group_id = row.get("Id")
                if not group_id or row.get("LifecycleState") not in (0, None):
                    continue
                groups[str(group_id)] = DesktopGroup(
                    self._name(row),
                    self._enum(DELIVERY_TYPE, row.get("DeliveryType"), "DeliveryType"),
                    self._enum(SESSION_SUPPORT, row.get("SessionSupport"), "SessionSupport"),
                )
        self._groups = groups
        try:
            self._machine_groups = await self._fetch_machine_groups()
        except NotEntitledError as err:
            raise _failure(err) from None  # DesktopGroups answered: a 404 now is a failure
        self._groups_fetched_at = self.ctx.clock()

    async def _fetch_machine_groups(self) -> dict[str, str | None]:
        """Active machines only: deleted ones pile up in Monitor, and a failure is on a live
        machine. One paged query, on the names' cadence."""
        machine_groups: dict[str, str | None] = {}
        params = {"$filter": "LifecycleState eq 0", "$select": "Id,DesktopGroupId"}
        async for rows in self._pages("Machines", params):
            for row in rows:
                machine_id, group_id = row.get("Id"), row.get("DesktopGroupId")
                if machine_id:
                    machine_groups[str(machine_id).lower()] = str(group_id) if group_id else None
        return machine_groups

    def _name(self, row: Row) -> str:
        name = row.get("Name")
        if not isinstance(name, str) or not name:
            self.ctx.issues.report("null", "DesktopGroups.Name")
            return UNKNOWN_GROUP
        return self.fields.label_text(name, "DesktopGroups.Name")

    def _group_name(self, group_id: str | None) -> str:
        group = self._groups.get(group_id)
        return group.name if group else UNKNOWN_GROUP

    def _known_names(self) -> set[str]:
        """The group names a per-group counter keeps: a deleted group's series go."""
        return {group.name for group in self._groups.values()} | {UNKNOWN_GROUP}

    # -- grouped counts (server-side aggregation with a paging fallback) -------------------

    async def _grouped(self, query: GroupedQuery) -> Counter[tuple[Any, ...]]:
        """Counts per key; tries `$apply` unless this customer's gateway rejected it before."""
        if query.name not in self._apply_rejected:
            counts: Counter[tuple[Any, ...]] = Counter()
            try:
                async for rows in self._pages(query.entity_set, {"$apply": query.apply}):
                    for row in rows:
                        counts[query.key(row)] += self._count(row)
            except UpstreamError as err:
                if err.status not in APPLY_REJECTED:
                    raise
                self._apply_rejected.add(query.name)
                log.info(
                    "Monitor API rejected $apply; counting by paging with $select instead "
                    "(remembered for this customer)",
                    extra={"customer_id": self.ctx.customer_id, "query": query.name,
                           "error": str(err)},
                )  # fmt: skip
            else:
                return counts
        counts = Counter()
        async for rows in self._pages(query.entity_set, query.fallback):
            for row in rows:
                counts[query.key(row)] += 1
        return counts

    def _count(self, row: Row) -> int:
        value = row.get("n")
        if not isinstance(value, int) or isinstance(value, bool):
            self.ctx.issues.report("bad_number", "$apply count", repr(value)[:80])
            return 0
        issue = check_count(value)
        if issue is not None:
            self.ctx.issues.report(issue, "$apply count", repr(value)[:80])
            return 0
        return value

    def _session_families(self, counts: Counter[tuple[Any, ...]], live: list[str]) -> list[Metric]:
        gauges = GaugeSet(["customer_id", "delivery_group", "state"], HELP_SUFFIX)
        totals: Counter[tuple[str, str]] = Counter()
        for (group_id, state), count in counts.items():
            name = self._enum(CONNECTION_STATE, state, "Sessions.ConnectionState")
            totals[(self._group_name(group_id), name)] += count
        for (group, state), count in self._by_state(totals, live, CONNECTION_STATE.values()):
            gauges.add(
                "citrix_sessions",
                "Open sessions (EndDate null) by delivery group and ConnectionState.",
                [self.ctx.customer_id, group, state],
                count,
            )
        return gauges.families()

    def _machine_families(self, counts: Counter[tuple[Any, ...]], live: list[str]) -> list[Metric]:
        # Each counted by (delivery group, state); maintenance has no state label ("").
        registration: Counter[tuple[str, str]] = Counter()
        maintenance: Counter[tuple[str, str]] = Counter()
        faulted: Counter[tuple[str, str]] = Counter()
        power: Counter[tuple[str, str]] = Counter()
        powered_on: Counter[tuple[str, str]] = Counter()  # and not in maintenance
        unregistered_on: Counter[tuple[str, str]] = Counter()  # of those, unregistered
        for key, count in counts.items():
            group_id, reg, power_state, fault, in_maintenance = key
            group = self._group_name(group_id)
            reg_name = self._enum(REGISTRATION_STATE, reg, "CurrentRegistrationState")
            registration[(group, reg_name)] += count
            power_name = self._enum(POWER_STATE, power_state, "CurrentPowerState")
            power[(group, power_name)] += count
            fault_name = self._enum(FAULT_STATE, fault, "FaultState")
            if fault_name in FAULTED_STATES.values():
                faulted[(group, fault_name)] += count
            maintenance[(group, "")] += count if in_maintenance is True else 0
            usable = power_name == POWERED_ON and in_maintenance is not True
            powered_on[(group, "")] += count if usable else 0
            unregistered_on[(group, "")] += count if usable and reg_name == UNREGISTERED else 0
        # (metric, help, state label, counts, the states a live group shows, 0 or not, unless
        # omit_zero_states; maintenance has no state and always shows)
        metrics: tuple[tuple[str, str, str, Counter[tuple[str, str]], Iterable[str]], ...] = (
            ("citrix_machines",
             "Active machines (LifecycleState 0) by CurrentRegistrationState.",
             "registration_state", registration, REGISTRATION_STATE.values()),
            ("citrix_machines_in_maintenance",
             "Active machines in maintenance mode.",
             "", maintenance, ("",)),
            ("citrix_machines_faulted",
             "Active machines with a fault (FaultState other than unknown or none).",
             "fault_state", faulted, FAULTED_STATES.values()),
            ("citrix_machines_by_power_state",
             "Active machines by CurrentPowerState.",
             "power_state", power, POWER_STATE.values()),
            ("citrix_machines_powered_on",
             "Active machines powered on (CurrentPowerState on) and not in maintenance mode: "
             "the ones expected to be registered.",
             "", powered_on, ("",)),
            ("citrix_machines_unregistered_powered_on",
             "Of citrix_machines_powered_on, those unregistered: all of them is a delivery "
             "group down; powered-off machines (autoscale at night) are not counted.",
             "", unregistered_on, ("",)),
        )  # fmt: skip
        cid = self.ctx.customer_id
        gauges = GaugeSet(["customer_id", "delivery_group"], HELP_SUFFIX)
        for name, help_text, label, by_state, states in metrics:
            series = self._by_state(by_state, live, states, is_state=bool(label))
            for (group, state), count in series:
                gauges.add(name, help_text, [cid, group], count, {label: state} if label else None)
        return gauges.families()

    def _by_state(
        self,
        counts: Counter[tuple[str, str]],
        live: list[str],
        states: Iterable[str],
        is_state: bool = True,
    ) -> list[tuple[tuple[str, str], int]]:
        """The sorted ``((group, state), count)`` series of one metric: every state of every
        live group, 0 or not; or, for a state metric under ``omit_zero_states``, those not 0."""
        if is_state and self.config.omit_zero_states:
            return sorted((key, count) for key, count in counts.items() if count)
        for group in live:
            for state in states:
                counts.setdefault((group, state), 0)
        return sorted(counts.items())

    def _group_info(self, live: list[str]) -> list[Metric]:
        gauges = GaugeSet(
            ["customer_id", "delivery_group", "delivery_type", "session_support"], HELP_SUFFIX
        )
        # A set: two groups whose names and kinds are alike must not make a duplicate series.
        groups = {g for g in self._groups.values() if g.name in live}
        for group in sorted(groups, key=lambda g: (g.name, g.delivery_type, g.session_support)):
            gauges.add(
                "citrix_delivery_group_info",
                "Always 1 for each active delivery group with machines or sessions; labels "
                "describe it.",
                [self.ctx.customer_id, group.name, group.delivery_type, group.session_support],
                1,
            )
        return gauges.families()

    # -- incremental: connection failures --------------------------------------------------

    async def _poll_failures(self) -> None:
        new: Counter[tuple[str | None, str]] = Counter()  # (machine id, reason)
        rows = self._new_rows(
            "ConnectionFailureLogs",
            self._failure_marks,
            ("FailureDate", "Id"),
            {
                "$select": "Id,FailureDate,ConnectionFailureEnumValue,MachineId",
                "$orderby": "FailureDate",
            },
        )
        async for row in rows:
            reason = self._enum(
                SESSION_FAILURE_CODE,
                row.get("ConnectionFailureEnumValue"),
                "ConnectionFailureEnumValue",
            )
            machine_id = row.get("MachineId")
            new[(str(machine_id).lower() if machine_id else None, reason)] += 1
        machines = {machine for machine, _ in new} - {None}
        if (
            machines - set(self._machine_groups)
            and self._groups_age() > UNKNOWN_GROUP_REFRESH_SECONDS
        ):
            await self._refresh_groups(force=True)  # a machine created since the last refresh
        for (machine_id, reason), count in new.items():
            group_id = self._machine_groups.get(machine_id) if machine_id else None
            group = self._group_name(group_id)
            self._failures[reason] += count
            self._failures_by_group[(group, reason)] += count

    def _failure_families(self) -> list[Metric]:
        total = CounterMetricFamily(
            "citrix_connection_failures",
            "Connection failures (ConnectionFailureLogs rows) seen since the exporter started, "
            f"by failure reason. {HELP_SUFFIX}",
            labels=["customer_id", "failure_reason"],
        )
        for reason, count in sorted(self._failures.items()):
            total.add_metric([self.ctx.customer_id, reason], count)
        by_group = CounterMetricFamily(
            "citrix_connection_failures_by_group",
            "Connection failures seen since the exporter started, by the delivery group of "
            "their machine (unknown: no machine, as when none was available, or one not known) "
            f"and failure reason. {HELP_SUFFIX}",
            labels=["customer_id", "delivery_group", "failure_reason"],
        )
        live = self._known_names()
        for key in [key for key in self._failures_by_group if key[0] not in live]:
            del self._failures_by_group[key]  # the delivery group is gone: its series go too
        for (group, reason), count in sorted(self._failures_by_group.items()):
            by_group.add_metric([self.ctx.customer_id, group, reason], count)
        return [total, by_group]

    # -- incremental: logon durations ------------------------------------------------------

    async def _poll_logons(self) -> None:
        rows = self._new_rows(
            "Sessions",
            self._logon_marks,
            ("StartDate", "SessionKey"),
            {
                "$select": "SessionKey,StartDate,LogOnDuration",
                "$expand": "Machine($select=DesktopGroupId)",
            },
            also=" and LogOnDuration ne null",
        )
        async for row in rows:
            duration = self.fields.count(row, "LogOnDuration", "Sessions.LogOnDuration")
            if duration is None:
                continue
            group = self._group_name(_machine_group(row))
            self._logons.setdefault(group, _Histogram()).observe(duration / 1000.0)

    def _logon_family(self) -> Metric:
        family = HistogramMetricFamily(
            "citrix_logon_duration_seconds",
            "Logon duration (LogOnDuration) of sessions that started since the exporter "
            f"started. {HELP_SUFFIX}",
            labels=["customer_id", "delivery_group"],
        )
        live = self._known_names()
        for group in [g for g in self._logons if g not in live]:
            del self._logons[group]  # the delivery group is gone: its series go too
        for group, histogram in sorted(self._logons.items()):
            family.add_metric(
                [self.ctx.customer_id, group], histogram.buckets(), sum_value=histogram.total
            )
        return family

    # -- helpers ---------------------------------------------------------------------------

    def _pages(self, entity_set: str, params: dict[str, str]) -> AsyncIterator[list[Row]]:
        return iter_pages(
            self.ctx.api,
            ENDPOINTS[entity_set],
            f"{self._base}/{entity_set}",
            params,
            max_pages=self.config.max_pages,
            limiter=self._limiter,
        )

    async def _new_rows(
        self,
        entity_set: str,
        marks: Watermark,
        fields: tuple[str, str],
        params: dict[str, str],
        also: str = "",
    ) -> AsyncIterator[Row]:
        """The rows of `entity_set` after `marks`' start (and matching `also`) not counted yet.

        `fields` names a row's time and key. A row without a readable time (reported) or a key
        is skipped, and so is one `marks` has seen: each query overlaps the one before, so it
        re-reads the rows near its start.
        """
        time_field, key_field = fields
        since = odata_datetime(marks.since())
        params = {"$filter": f"{time_field} gt {since}{also}", **params}
        async for rows in self._pages(entity_set, params):
            for row in rows:
                when = self.fields.timestamp(row, time_field, f"{entity_set}.{time_field}")
                key = row.get(key_field)
                if when is not None and key is not None and marks.is_new(str(key), when):
                    yield row

    def _enum(self, table: dict[int, str], value: object, field: str) -> str:
        if isinstance(value, int) and not isinstance(value, bool) and value in table:
            return table[value]
        self.ctx.issues.report("unknown_enum", field, repr(value))
        return "unknown"


class _Histogram:
    """Cumulative logon-duration histogram of one delivery group."""

    def __init__(self) -> None:
        self.counts = [0] * (len(LOGON_BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.total += seconds
        for index, bound in enumerate(LOGON_BUCKETS):
            if seconds <= bound:
                self.counts[index] += 1
                return
        self.counts[-1] += 1

    def buckets(self) -> list[tuple[str, float]]:
        """(`le` label, cumulative count) per bucket, +Inf last."""
        return [(BUCKET_BOUNDS[i], float(n)) for i, n in enumerate(accumulate(self.counts))]
