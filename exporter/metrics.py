"""The exporter's own live metrics: upstream requests, token fetches, odd upstream data.

These are ordinary prometheus_client counters and gauges updated as things happen, registered
in the exporter's own registry (never the global one) so that tests and `--demo` can run
several exporters in one process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from . import __version__
from .build import python_version, revision
from .log import LogOnce, get_logger

log = get_logger("data")

DETAIL_LIMIT = 200  # an odd value is quoted in the log, never a megabyte of it


class SelfMetrics:
    """Counters and gauges the runtime updates while it talks to Citrix Cloud."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.api_requests = Counter(
            "citrix_api_requests",
            "Requests made to the Citrix Cloud APIs, by logical endpoint and HTTP status code "
            "('error' when no response was received).",
            ["customer_id", "endpoint", "code"],
            registry=registry,
        )
        self.token_requests = Counter(
            "citrix_token_requests",
            "Bearer token requests made to Citrix Cloud.",
            ["customer_id"],
            registry=registry,
        )
        self.token_request_failures = Counter(
            "citrix_token_request_failures",
            "Bearer token requests that did not return a token.",
            ["customer_id"],
            registry=registry,
        )
        self.token_expiry = Gauge(
            "citrix_token_expiry_timestamp_seconds",
            "Expiry time of the bearer token currently held for the customer.",
            ["customer_id"],
            registry=registry,
        )
        self.data_issues = Counter(
            "citrix_upstream_data_issues",
            "Upstream values that were missing, null, malformed or of an unknown enum value and "
            "were skipped or mapped to 'unknown'.",
            ["customer_id", "collector", "issue"],
            registry=registry,
        )
        build_info = Gauge(
            "citrix_exporter_build_info",
            "Always 1; labelled with the exporter's version, the git commit it was built from "
            "('unknown' if not known) and the Python version.",
            ["version", "revision", "python_version"],
            registry=registry,
        )
        build_info.labels(__version__, revision(), python_version()).set(1)


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
