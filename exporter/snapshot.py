"""The latest good poll results of every customer and collector, served on /metrics.

Collectors publish whole results, each with its exposition text rendered once at publish
(`exposition.blocks`); a scrape joins the texts without locks or upstream calls (the
yet-another-cloudwatch-exporter model: build a fresh snapshot, swap it in, keep the previous
one when a poll fails). A failing collector's values are kept for `max_staleness` after its
last success, then dropped. `version` changes whenever what is served changes, so a scrape can
reuse the body it joined last time.

The store is also a prometheus_client collector (the results' families merged by name), for
`--once` and for tests that render a whole registry with `generate_latest`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from .exposition.blocks import Rendered, render

Key = tuple[str, str]  # (customer_id, collector)


@dataclass(frozen=True)
class Entry:
    families: tuple[Metric, ...]
    rendered: Rendered
    succeeded_at: float
    failing: bool = False


def merge_families(results: Iterable[Sequence[Metric]]) -> list[Metric]:
    """One family per metric name, carrying the samples of every result that has it.

    The text format forbids a family appearing twice, and several customers report the same
    families, so samples are merged under the first HELP/TYPE seen.
    """
    merged: dict[tuple[str, str], Metric] = {}
    for families in results:
        for family in families:
            key = (family.name, family.type)
            target = merged.get(key)
            if target is None:
                target = Metric(family.name, family.documentation, family.type, family.unit)
                merged[key] = target
            target.samples.extend(family.samples)
    return list(merged.values())


class SnapshotStore(Collector):
    """Holds each (customer, collector)'s last good families; a prometheus_client collector."""

    def __init__(self, max_staleness: float, clock: Callable[[], float] = time.time) -> None:
        self._max_staleness = max_staleness
        self._clock = clock
        self._entries: dict[Key, Entry] = {}
        self._merged: list[Metric] | None = []  # None: entries changed since the last merge
        self._version = 0

    @property
    def version(self) -> int:
        """Changes whenever the served values change: a publish, a drop, an expiry."""
        return self._version

    def _changed(self) -> None:
        self._merged = None
        self._version += 1

    def publish(
        self,
        key: Key,
        families: Sequence[Metric],
        at: float | None = None,
        rendered: Rendered | None = None,
    ) -> None:
        """Replace `key`'s values with a fresh successful result; `rendered` is its exposition
        text when the caller has it already (the poller renders off the event loop)."""
        at = self._clock() if at is None else at
        rendered = render(families) if rendered is None else rendered
        self._entries[key] = Entry(tuple(families), rendered, at)
        self._changed()

    def mark_failed(self, key: Key) -> None:
        """Record that `key`'s latest poll failed: its values now age towards expiry."""
        entry = self._entries.get(key)
        if entry and not entry.failing:
            self._entries[key] = Entry(
                entry.families, entry.rendered, entry.succeeded_at, failing=True
            )
        self.expire()

    def drop(self, key: Key) -> None:
        """Forget `key`'s values at once (e.g. the customer is not entitled)."""
        if self._entries.pop(key, None) is not None:
            self._changed()

    def expire(self) -> None:
        """Drop values of failing collectors whose last success is older than max_staleness."""
        now = self._clock()
        stale = [
            key
            for key, entry in self._entries.items()
            if entry.failing and now - entry.succeeded_at > self._max_staleness
        ]
        for key in stale:
            del self._entries[key]
        if stale:
            self._changed()

    def rendered(self) -> list[Rendered]:
        """Every result's exposition text, in key order (the order `collect` merges in)."""
        self.expire()
        return [self._entries[key].rendered for key in sorted(self._entries)]

    def collect(self) -> Iterable[Metric]:
        """The merged families; merged at most once per change, on the scrape that follows it.

        Merging on every publish would redo all customers' families for each of the many
        publishes between two scrapes; everything here runs on the event loop, so a scrape
        never sees a half-built list.
        """
        self.expire()
        if self._merged is None:
            ordered = [self._entries[key].families for key in sorted(self._entries)]
            self._merged = merge_families(ordered)
        return list(self._merged)
