"""The exporter's own live metrics: upstream requests, token fetches, odd upstream data.

Every one of these series belongs to one customer, and a thousand customers make thousands of
them; rendering them all at every scrape stalled the exporter for a tenth of a second (issue
12). So they are kept per customer, with a version each update bumps: a scrape renders again
only the customers whose version changed (`exposition.own`). Callers update them as they would
prometheus_client metrics (`metrics.api_requests.labels(customer, endpoint, code).inc()`), and
the same values are one prometheus_client collector (`CustomerSeries`) for `--once`, name
filters and tests, with the names, HELP, types and values prometheus_client gave them.

They live in the exporter's own registry (never the global one) so that tests and `--demo` can
run several exporters in one process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import __version__
from .build import python_version, revision
from .exposition.changes import ChangeLog
from .log import LogOnce, get_logger

log = get_logger("data")

DETAIL_LIMIT = 200  # an odd value is quoted in the log, never a megabyte of it

LabelValues = tuple[str, ...]  # customer_id first


@dataclass(frozen=True)
class Family:
    """One own metric family, named as prometheus_client names it (a counter without
    `_total`); its first label is always customer_id."""

    name: str
    documentation: str
    type: str  # "counter" or "gauge"
    labels: tuple[str, ...]

    def metric(self) -> CounterMetricFamily | GaugeMetricFamily:
        """An empty family, ready for `add_metric`."""
        if self.type == "counter":
            return CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        return GaugeMetricFamily(self.name, self.documentation, labels=self.labels)


API_REQUESTS = Family(
    "citrix_api_requests",
    "Requests made to the Citrix Cloud APIs, by logical endpoint and HTTP status code "
    "('error' when no response was received).",
    "counter",
    ("customer_id", "endpoint", "code"),
)
TOKEN_REQUESTS = Family(
    "citrix_token_requests",
    "Bearer token requests made to Citrix Cloud.",
    "counter",
    ("customer_id",),
)
TOKEN_REQUEST_FAILURES = Family(
    "citrix_token_request_failures",
    "Bearer token requests that did not return a token.",
    "counter",
    ("customer_id",),
)
TOKEN_EXPIRY = Family(
    "citrix_token_expiry_timestamp_seconds",
    "Expiry time of the bearer token currently held for the customer.",
    "gauge",
    ("customer_id",),
)
DATA_ISSUES = Family(
    "citrix_upstream_data_issues",
    "Upstream values that were missing, null, malformed or of an unknown enum value and "
    "were skipped or mapped to 'unknown'.",
    "counter",
    ("customer_id", "collector", "issue"),
)
THROTTLED_UNTIL = Family(
    "citrix_upstream_throttled_until_timestamp_seconds",
    "Until when no request is sent to Citrix Cloud for the customer, after a Retry-After "
    "longer than one poll waits (poll.retry.max_delay). A time in the past when that wait is "
    "over; absent until the first such Retry-After. Throttled now: value > time().",
    "gauge",
    ("customer_id",),
)
FAMILIES = (
    API_REQUESTS,
    TOKEN_REQUESTS,
    TOKEN_REQUEST_FAILURES,
    TOKEN_EXPIRY,
    DATA_ISSUES,
    THROTTLED_UNTIL,
)


class CustomerSeries(Collector):
    """The values of the own families, per customer; each change is logged (`ChangeLog`), so a
    scrape renders again only the customers changed since the last one (`exposition.own`).

    Updates come from the event loop; a lock keeps a reader in another thread (a registry
    rendered by prometheus_client's handler) from seeing a dict change under it.
    """

    def __init__(self, families: Sequence[Family] = FAMILIES) -> None:
        self._families = tuple(families)
        self._values: dict[str, dict[Family, dict[LabelValues, float]]] = {}
        self._changes = ChangeLog()
        self._lock = threading.Lock()

    def update(self, family: Family, labels: LabelValues, add: float, replace: bool) -> None:
        """Add `add` to the series (or set it to `add` if `replace`); a new series starts at 0."""
        customer_id = labels[0]
        with self._lock:
            series = self._values.setdefault(customer_id, {}).setdefault(family, {})
            old = series.get(labels)
            new = add if replace else (old or 0.0) + add
            if old is None or new != old:
                series[labels] = new
                self._changes.touch(customer_id)

    def remove(self, customer_id: str) -> None:
        """Forget every series of `customer_id` (removed by a reload): gone from the next scrape."""
        with self._lock:
            self._values.pop(customer_id, None)
            self._changes.forget(customer_id)

    def changes(self, cursor: int) -> tuple[int, list[str]]:
        """The customers whose values changed after `cursor`, and the cursor for next time."""
        with self._lock:
            return self._changes.since(cursor)

    def customers(self) -> list[str]:
        with self._lock:
            return list(self._values)

    def families(self, customer_id: str) -> list[Metric]:
        """One customer's families (empty ones too)."""
        return self._collect([customer_id])

    def describe(self) -> Iterable[Metric]:
        return [family.metric() for family in self._families]

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            customers = list(self._values)
        return self._collect(customers)

    def _collect(self, customers: Iterable[str]) -> list[Metric]:
        metrics = {family: family.metric() for family in self._families}
        with self._lock:
            for customer_id in customers:
                for family, series in self._values.get(customer_id, {}).items():
                    for labels, value in series.items():
                        metrics[family].add_metric(labels, value)
        return list(metrics.values())


class _Child:
    """One series of a family, as prometheus_client's `labels()` returns it."""

    __slots__ = ("_family", "_labels", "_series")

    def __init__(self, series: CustomerSeries, family: Family, labels: LabelValues) -> None:
        self._series = series
        self._family = family
        self._labels = labels


class CounterChild(_Child):
    __slots__ = ()

    def inc(self, amount: float = 1) -> None:
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self._series.update(self._family, self._labels, float(amount), replace=False)


class GaugeChild(_Child):
    __slots__ = ()

    def set(self, value: float) -> None:
        self._series.update(self._family, self._labels, float(value), replace=True)


class _Labelled:
    """A family's `labels(...)`: like prometheus_client's, it creates the series at 0."""

    def __init__(self, series: CustomerSeries, family: Family) -> None:
        self._series = series
        self._family = family

    def _labels(self, values: tuple[object, ...]) -> LabelValues:
        if len(values) != len(self._family.labels):
            raise ValueError(f"{self._family.name}: expected labels {self._family.labels}")
        labels = tuple(str(value) for value in values)
        self._series.update(self._family, labels, 0.0, replace=False)
        return labels


class LabelledCounter(_Labelled):
    def labels(self, *values: object) -> CounterChild:
        return CounterChild(self._series, self._family, self._labels(values))


class LabelledGauge(_Labelled):
    def labels(self, *values: object) -> GaugeChild:
        return GaugeChild(self._series, self._family, self._labels(values))


class SelfMetrics:
    """Counters and gauges the runtime updates while it talks to Citrix Cloud."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.series = CustomerSeries()
        registry.register(self.series)
        self.api_requests = LabelledCounter(self.series, API_REQUESTS)
        self.token_requests = LabelledCounter(self.series, TOKEN_REQUESTS)
        self.token_request_failures = LabelledCounter(self.series, TOKEN_REQUEST_FAILURES)
        self.token_expiry = LabelledGauge(self.series, TOKEN_EXPIRY)
        self.data_issues = LabelledCounter(self.series, DATA_ISSUES)
        self.throttled_until = LabelledGauge(self.series, THROTTLED_UNTIL)


def build_info() -> Gauge:
    """citrix_exporter_build_info, in no registry yet: the runtime registers it."""
    gauge = Gauge(
        "citrix_exporter_build_info",
        "Always 1; labelled with the exporter's version, the git commit it was built from "
        "('unknown' if not known) and the Python version.",
        ["version", "revision", "python_version"],
        registry=None,
    )
    gauge.labels(__version__, revision(), python_version()).set(1)
    return gauge


class ReloadStatus:
    """`citrix_exporter_config_last_reload_successful` and its success time, as Prometheus and
    its exporters name them: 1 and the start time at start, then set by every reload."""

    def __init__(self, started_at: float) -> None:
        self.successful = Gauge(
            "citrix_exporter_config_last_reload_successful",
            "1 if the last reload of the configuration (SIGHUP or POST /-/reload) succeeded "
            "(and at start), 0 if it failed and the previous configuration is still in force.",
            registry=None,
        )
        self.success_timestamp = Gauge(
            "citrix_exporter_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully (the start time before the "
            "first reload).",
            registry=None,
        )
        self.succeeded(started_at)

    @property
    def collectors(self) -> tuple[Gauge, Gauge]:
        return self.successful, self.success_timestamp

    def succeeded(self, at: float) -> None:
        self.successful.set(1)
        self.success_timestamp.set(at)

    def failed(self) -> None:
        self.successful.set(0)


class DataIssues:
    """Reports odd upstream data for one customer and collector: counted always, logged once.

    Logging once per (field, issue) keeps a persistent upstream quirk from flooding the log at
    every poll while the counter still shows that it keeps happening.
    """

    def __init__(self, metrics: SelfMetrics, customer_id: str, collector: str) -> None:
        self._metrics = metrics
        self._customer_id = customer_id
        self._collector = collector
        self._logged: LogOnce[tuple[str, str]] = LogOnce()

    def report(self, issue: str, field: str, detail: str = "") -> None:
        """Count one occurrence of `issue` (e.g. 'null', 'bad_timestamp') in `field`."""
        self._metrics.data_issues.labels(self._customer_id, self._collector, issue).inc()
        if self._logged.first((issue, field)):
            log.warning(
                "unexpected upstream data "
                "(logged once, counted in citrix_upstream_data_issues_total)",
                extra={
                    "customer_id": self._customer_id,
                    "collector": self._collector,
                    "issue": issue,
                    "field": field,
                    "detail": detail[:DETAIL_LIMIT],
                },
            )
