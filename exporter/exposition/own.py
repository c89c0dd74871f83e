"""The exporter's own per-customer metrics as blocks, rendered again only where they changed.

citrix_up, request and token counters and data issues are thousands of series at a thousand
customers: rendering them at every scrape took 50-120 ms, and in a worker thread that still
holds the GIL the event loop stalled for as long. Even finding the customers that changed, by
comparing every customer's version at every scrape, took milliseconds at thousands of
customers. So their sources (`metrics.CustomerSeries`, `poller.StatusCollector`) log which
customers changed (`changes.ChangeLog`), and a scrape renders again only those (a poll
finished, a request was counted, a token was fetched); a job added or removed makes a source
ask for a resync of every customer. Rendering runs on the event loop in slices of about
`SLICE_SECONDS`, each followed by `asyncio.sleep(0)`, so polls and /healthz run between them;
nothing here waits for the GIL. The blocks are kept as one `document.Document` per format,
behind a header block rendered from the sources' empty families (every family keeps its
HELP/TYPE even before it has a series, and has it once): a scrape with nothing changed
reuses its bytes, and a change rejoins only the families it touched.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Iterable, Sequence
from typing import Protocol

from prometheus_client.core import Metric

from .blocks import Block, Format, render_format
from .document import Document

SLICE_SECONDS = 0.0015  # rendering between two yields to the loop: ~20 customers


class PerCustomer(Protocol):
    """A source of own metrics that can render one customer at a time."""

    def describe(self) -> Iterable[Metric]:
        """Every family, without samples."""
        ...

    def changes(self, cursor: int) -> tuple[int, Sequence[str] | None]:
        """(the cursor for next time, the customers changed after `cursor`, or None if every
        customer may have changed or gone); cursor 0 is before the first change."""
        ...

    def customers(self) -> Collection[str]:
        """Every customer the source has series for, as of the last `changes()`."""
        ...

    def families(self, customer_id: str) -> Sequence[Metric]:
        """One customer's families, current."""
        ...


class CustomerBlocks:
    """Every customer's own-metric blocks, in customer order, behind one header block."""

    def __init__(self, sources: Sequence[PerCustomer]) -> None:
        self._sources = tuple(sources)
        self._cursors = [0] * len(self._sources)
        self._resync = True  # the first look takes every customer
        self._customers: set[str] = set()
        self._stale: dict[Format, set[str]] = {fmt: set() for fmt in Format}
        self._documents: dict[Format, Document] = {}
        self._lock = asyncio.Lock()  # concurrent scrapes render a changed customer once

    def _collect_changes(self) -> None:
        """Mark the customers changed since the last look stale in every format."""
        changed: set[str] = set()
        resync = self._resync
        for index, source in enumerate(self._sources):
            self._cursors[index], customers = source.changes(self._cursors[index])
            if customers is None:
                resync = True
            else:
                changed.update(customers)
        if resync:
            self._resync = False
            changed = set().union(*(source.customers() for source in self._sources))
            for gone in self._customers - changed:
                self._forget(gone)
            self._customers = changed
        else:
            self._customers |= changed
        for stale in self._stale.values():
            stale |= changed

    def _forget(self, customer_id: str) -> None:
        for fmt in Format:
            self._stale[fmt].discard(customer_id)
            if fmt in self._documents:
                self._documents[fmt].remove(customer_id)

    def _render(self, customer_id: str, fmt: Format) -> tuple[Block, ...]:
        families = [f for source in self._sources for f in source.families(customer_id)]
        return render_format(families, fmt)

    def _document(self, fmt: Format) -> Document:
        document = self._documents.get(fmt)
        if document is None:
            families = [f for source in self._sources for f in source.describe()]
            document = self._documents[fmt] = Document(render_format(families, fmt))
            self._stale[fmt] = set(self._customers)
        return document

    async def _refresh(self, fmt: Format) -> Document:
        """The document of `fmt` with every changed customer rendered again (sliced)."""
        self._collect_changes()
        document = self._document(fmt)
        stale = self._stale[fmt]
        deadline = time.perf_counter() + SLICE_SECONDS
        for customer_id in sorted(stale):
            document.update(customer_id, self._render(customer_id, fmt))
            if time.perf_counter() > deadline:
                await asyncio.sleep(0)
                deadline = time.perf_counter() + SLICE_SECONDS
        stale.clear()
        return document

    async def blocks(self, fmt: Format) -> list[tuple[Block, ...]]:
        """The header block, then each customer's blocks in `fmt`, current as of this call."""
        async with self._lock:
            return (await self._refresh(fmt)).blocks()

    async def parts(self, fmt: Format) -> list[bytes]:
        """The joined document of the header and every customer, one part per family: the
        same bytes as `blocks.join` of `blocks(fmt)`, rejoined only where something changed."""
        async with self._lock:
            return await (await self._refresh(fmt)).parts()
