"""What every collector is given and must provide."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Generic, TypeVar

from prometheus_client.core import GaugeMetricFamily, Metric

from ..config import DEFAULT_MAX_SERIES, CollectorConfig, CustomerConfig
from ..metrics import DataIssues
from ..upstream.client import ApiClient
from ..upstream.errors import UpstreamError
from .fields import Fields

OptionsT = TypeVar("OptionsT", bound=CollectorConfig)


class SeriesLimitError(UpstreamError):
    """A result has more series than `poll.max_series`: the poll fails, nothing is published."""

    def __init__(self, series: int, limit: int, cause: str = "") -> None:
        super().__init__(
            f"result has {series:,} series{cause}, more than poll.max_series ({limit:,}); not "
            "published (raise poll.max_series if this tenant really is that large)"
        )


@dataclass
class CollectorContext:
    """A collector's view of its customer: config, API client, data-issue reporter, clock,
    and the series cap (`poll.max_series`) for collectors that can stop building early."""

    customer: CustomerConfig
    api: ApiClient
    issues: DataIssues
    clock: Callable[[], float] = field(default=time.time)
    max_series: int = DEFAULT_MAX_SERIES

    @property
    def customer_id(self) -> str:
        return self.customer.customer_id


class Collector(ABC, Generic[OptionsT]):
    """Polls one area of the API for one customer; `poll` returns complete metric families.

    Raising from `poll` marks the poll failed; the previous result stays published until it
    is older than max_staleness. A subclass is built as `cls(ctx, config)` with its own options
    model (its type parameter), as registered in `registry.py`; `name` is its key under
    `collectors:`. Every collector reads upstream fields through `fields`, which reports odd
    values to the customer's data-issue counter.
    """

    name: ClassVar[str]

    def __init__(self, ctx: CollectorContext, config: OptionsT) -> None:
        self.ctx = ctx
        self.config = config
        self.fields = Fields(ctx.issues)

    @abstractmethod
    async def poll(self) -> list[Metric]:
        """Fetch and return this collector's families for the customer."""


class GaugeSet:
    """Builds gauge families that share label names, created on first use, in a fixed order."""

    def __init__(self, labelnames: list[str], help_suffix: str) -> None:
        self._labelnames = labelnames
        self._help_suffix = help_suffix
        self._families: dict[str, GaugeMetricFamily] = {}

    def add(
        self,
        name: str,
        help_text: str,
        labels: list[str],
        value: float | None,
        extra_labels: dict[str, str] | None = None,
    ) -> None:
        """Add one sample; a `value` of None (a field missing or odd, and so already reported
        by `Fields`) adds nothing, so that collectors pass what they read straight in."""
        if value is None:
            return
        extra = extra_labels or {}
        family = self._families.get(name)
        if family is None:
            family = GaugeMetricFamily(
                name,
                f"{help_text} {self._help_suffix}",
                labels=[*self._labelnames, *extra],
            )
            self._families[name] = family
        family.add_metric([*labels, *extra.values()], float(value))

    def families(self) -> list[Metric]:
        return list(self._families.values())
