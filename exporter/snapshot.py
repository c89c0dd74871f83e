"""The latest good poll results of every customer and collector, served on /metrics.

Collectors publish whole results, each with its exposition text rendered once at publish
(`exposition.blocks`); a scrape joins the texts without locks or upstream calls (the
yet-another-cloudwatch-exporter model: build a fresh snapshot, swap it in, keep the previous
one when a poll fails). A failing collector's values are kept for `max_staleness` after its
last success, then dropped. `version` changes whenever what is served changes, so a scrape can
reuse the body it joined last time.

The store keeps only the rendered text, not the families: at 1,000 customers the families are
over 100,000 objects that every full garbage collection would walk, on the event loop. It is
still a prometheus_client collector, for `--once` and for tests that render a whole registry
with `generate_latest`: `collect` parses the joined OpenMetrics text back into families.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from prometheus_client.core import Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from .exposition.blocks import EOF_LINE, Rendered, join, render

Key = tuple[str, str]  # (customer_id, collector)


@dataclass(frozen=True)
class Entry:
    rendered: Rendered
    succeeded_at: float
    failing: bool = False


class SnapshotStore(Collector):
    """Holds each (customer, collector)'s last good families; a prometheus_client collector."""

    def __init__(self, max_staleness: float, clock: Callable[[], float] = time.time) -> None:
        self.max_staleness = max_staleness  # a reload may change it
        self._clock = clock
        self._entries: dict[Key, Entry] = {}
        self._failing: set[Key] = set()  # what `expire` looks at: not every entry per scrape
        self._version = 0

    @property
    def version(self) -> int:
        """Changes whenever the served values change: a publish, a drop, an expiry."""
        return self._version

    def _changed(self) -> None:
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
        self._entries[key] = Entry(rendered, at)
        self._failing.discard(key)
        self._changed()

    def mark_failed(self, key: Key) -> None:
        """Record that `key`'s latest poll failed: its values now age towards expiry."""
        entry = self._entries.get(key)
        if entry and not entry.failing:
            self._entries[key] = Entry(entry.rendered, entry.succeeded_at, failing=True)
            self._failing.add(key)
        self.expire()

    def drop(self, key: Key) -> None:
        """Forget `key`'s values at once (e.g. the customer is not entitled)."""
        if self._entries.pop(key, None) is not None:
            self._changed()

    def retain(self, keys: Collection[Key]) -> None:
        """Forget the values of every key not in `keys` (the jobs a reload removed)."""
        gone = [key for key in self._entries if key not in keys]
        for key in gone:
            del self._entries[key]
        if gone:
            self._changed()

    def expire(self) -> None:
        """Drop values of failing collectors whose last success is older than max_staleness."""
        now = self._clock()
        stale = []
        for key in list(self._failing):
            entry = self._entries.get(key)
            if entry is None or not entry.failing:
                self._failing.discard(key)  # dropped or published again since
            elif now - entry.succeeded_at > self.max_staleness:
                self._failing.discard(key)
                stale.append(key)
        for key in stale:
            del self._entries[key]
        if stale:
            self._changed()

    def rendered(self) -> list[Rendered]:
        """Every result's exposition text, in key order (the order `collect` merges in)."""
        self.expire()
        return [self._entries[key].rendered for key in sorted(self._entries)]

    def results(self) -> dict[Key, Rendered]:
        """Every result's exposition text by key, in no particular order."""
        self.expire()
        return {key: entry.rendered for key, entry in self._entries.items()}

    def collect(self) -> Iterable[Metric]:
        """The published families, one per name (every result's samples under the first
        header seen), parsed back from the joined OpenMetrics text. Not on the scrape path."""
        document = join(rendered.openmetrics for rendered in self.rendered()) + EOF_LINE
        return list(text_string_to_metric_families(document.decode("utf-8")))  # type: ignore[no-untyped-call]
