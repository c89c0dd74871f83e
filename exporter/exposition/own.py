"""The exporter's own per-customer metrics as blocks, rendered again only where they changed.

citrix_up, request and token counters and data issues are thousands of series at a thousand
customers: rendering them at every scrape took 50-120 ms, and in a worker thread that still
holds the GIL the event loop stalled for as long. Their sources (`metrics.CustomerSeries`,
`poller.StatusCollector`) give each customer a version that changes with its values; a
customer's blocks are kept per format with that version, and a scrape renders only the
customers whose version changed since (a poll finished, a request was counted, a token was
fetched). Those are rendered on the event loop in slices of about `SLICE_SECONDS`, each
followed by `asyncio.sleep(0)`, so polls and /healthz run between them; nothing here waits for
the GIL. The blocks are joined like published results (`blocks.join`), behind a header block
rendered from the sources' empty families: every family keeps its HELP/TYPE even before it has
a series (dashboards check metadata), and has it once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client.core import Metric

from .blocks import Block, Format, render_format

SLICE_SECONDS = 0.0015  # rendering between two yields to the loop: ~20 customers


class PerCustomer(Protocol):
    """A source of own metrics that can render one customer at a time."""

    def describe(self) -> Iterable[Metric]:
        """Every family, without samples."""
        ...

    def versions(self) -> Mapping[str, Hashable]:
        """Each customer's version: equal versions mean the same series and values."""
        ...

    def families(self, customer_id: str) -> Sequence[Metric]:
        """One customer's families, as of the last `versions()`."""
        ...


@dataclass
class _Customer:
    version: Hashable
    blocks: dict[Format, tuple[Block, ...]] = field(default_factory=dict)


class CustomerBlocks:
    """Every customer's own-metric blocks, in customer order, behind one header block."""

    def __init__(self, sources: Sequence[PerCustomer]) -> None:
        self._sources = tuple(sources)
        self._customers: dict[str, _Customer] = {}
        self._headers: dict[Format, tuple[Block, ...]] = {}
        self._lock = asyncio.Lock()  # concurrent scrapes render a changed customer once

    def _versions(self) -> dict[str, tuple[Hashable, ...]]:
        by_source = [source.versions() for source in self._sources]
        customers = set().union(*by_source)
        return {c: tuple(versions.get(c) for versions in by_source) for c in customers}

    def _render(self, customer_id: str, fmt: Format) -> tuple[Block, ...]:
        families = [f for source in self._sources for f in source.families(customer_id)]
        return render_format(families, fmt)

    def headers(self, fmt: Format) -> tuple[Block, ...]:
        headers = self._headers.get(fmt)
        if headers is None:
            families = [f for source in self._sources for f in source.describe()]
            headers = self._headers[fmt] = render_format(families, fmt)
        return headers

    async def blocks(self, fmt: Format) -> list[tuple[Block, ...]]:
        """The header block, then each customer's blocks in `fmt`, current as of this call."""
        async with self._lock:
            versions = self._versions()
            for gone in self._customers.keys() - versions.keys():
                del self._customers[gone]
            out = [self.headers(fmt)]
            deadline = time.perf_counter() + SLICE_SECONDS
            for customer_id in sorted(versions):
                customer = self._customers.get(customer_id)
                if customer is None or customer.version != versions[customer_id]:
                    customer = self._customers[customer_id] = _Customer(versions[customer_id])
                blocks = customer.blocks.get(fmt)
                if blocks is None:
                    blocks = customer.blocks[fmt] = self._render(customer_id, fmt)
                    if time.perf_counter() > deadline:
                        await asyncio.sleep(0)
                        deadline = time.perf_counter() + SLICE_SECONDS
                out.append(blocks)
            return out
