"""The latest good poll results of every customer and collector, served on /metrics.

Collectors publish whole results; the store merges them by metric family into one immutable
list that a scrape reads without locks or upstream calls (the yet-another-cloudwatch-exporter
model: build a fresh snapshot, swap it in, keep the previous one when a poll fails). A failing
collector's values are kept for `max_staleness` after its last success, then dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

Key = tuple[str, str]  # (customer_id, collector)


@dataclass(frozen=True)
class Entry:
    families: tuple[Metric, ...]
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

    def publish(self, key: Key, families: Sequence[Metric], at: float | None = None) -> None:
        """Replace `key`'s values with a fresh successful result."""
        at = self._clock() if at is None else at
        self._entries[key] = Entry(tuple(families), at)
        self._merged = None

    def mark_failed(self, key: Key) -> None:
        """Record that `key`'s latest poll failed: its values now age towards expiry."""
        entry = self._entries.get(key)
        if entry and not entry.failing:
            self._entries[key] = Entry(entry.families, entry.succeeded_at, failing=True)
        self.expire()

    def drop(self, key: Key) -> None:
        """Forget `key`'s values at once (e.g. the customer is not entitled)."""
        if self._entries.pop(key, None) is not None:
            self._merged = None

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
            self._merged = None

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
