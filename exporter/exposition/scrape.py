"""The /metrics body: published results joined once per change, own metrics current.

A scrape at a thousand customers serves tens of thousands of series. Rendering them all again
on every scrape, on the event loop, froze polls, token refreshes and /healthz for hundreds of
milliseconds; here the published results' text was rendered when each was published, and the
body is kept as one `document.Document` per format: when the snapshot store's `version`
changes, only the results that changed are put in, and only the families they touch are
joined again. The exporter's own metrics are current at every scrape: the per-customer ones
(citrix_up, request and token counters) re-rendered on the loop, in slices, for the customers
whose values changed (`own.CustomerBlocks`), the few others (build info, process metrics)
rendered whole. The body goes out in parts (one per family), never copied into one; gzip runs
in a worker thread.

gzip without recompressing an unchanged body: the cached body's compressed form is kept with
the compressor's state after it (flushed to a byte boundary), and each scrape continues a copy
of that state with its own metrics. The result is one ordinary single-member gzip stream.

Negotiation is prometheus_client's (`choose_encoder`), content type included. The text is
rendered with its default name escaping; every name this exporter writes is a legacy
Prometheus name, which every escaping scheme leaves as it is.
"""

from __future__ import annotations

import asyncio
import threading
import zlib
from collections.abc import Sequence

from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.registry import Collector

from ..snapshot import Key, SnapshotStore
from .blocks import Format, Rendered, generate
from .document import Document
from .own import CustomerBlocks, PerCustomer

GZIP_LEVEL = 6  # zlib's default, what the aiohttp compression served before
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer around the deflate stream


def negotiate(accept: str) -> tuple[Format, str]:
    """The format and Content-Type prometheus_client would answer `accept` with."""
    _, content_type = choose_encoder(accept)
    if content_type.startswith("application/openmetrics-text"):
        return Format.OPENMETRICS, content_type
    return Format.TEXT, content_type


def wants_gzip(accept_encoding: str) -> bool:
    return gzip_accepted(accept_encoding)


class Published:
    """The joined body of the published results at one store version, and its gzip state."""

    def __init__(self, version: int, body: Sequence[bytes]) -> None:
        self.version = version
        self.body = tuple(body)  # in parts: one per family
        self._gzip: tuple[bytes, zlib._Compress] | None = None
        self._lock = threading.Lock()  # scrapes finish in worker threads

    def _gzip_state(self) -> tuple[bytes, zlib._Compress]:
        with self._lock:
            if self._gzip is None:
                compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
                prefix = b"".join(map(compressor.compress, self.body))
                prefix += compressor.flush(zlib.Z_SYNC_FLUSH)
                self._gzip = (prefix, compressor)
            return self._gzip

    def finish(self, tail: Sequence[bytes], gzip: bool) -> list[bytes]:
        """The whole document in parts: this body, then the `tail` parts; gzip-compressed if
        `gzip`. In parts, because joining them copied megabytes into fresh memory at every
        scrape."""
        if not gzip:
            return [*self.body, *tail]
        prefix, compressor = self._gzip_state()
        rest = compressor.copy()  # the cached state stays at the end of the body
        return [prefix, b"".join([*map(rest.compress, tail), rest.flush()])]


class MetricsBody:
    """Builds /metrics bodies from a snapshot store and the own metrics: `per_customer`
    sources rendered where they changed (`own.CustomerBlocks`), `own` rendered whole."""

    def __init__(
        self, store: SnapshotStore, own: Collector, per_customer: Sequence[PerCustomer] = ()
    ) -> None:
        self._store = store
        self._own = own
        self._customers = CustomerBlocks(per_customer) if per_customer else None
        self._published: dict[Format, Published] = {}
        self._documents = {fmt: Document() for fmt in Format}
        self._in_document: dict[Format, dict[Key, Rendered]] = {fmt: {} for fmt in Format}
        self._lock = asyncio.Lock()

    async def _current(self, fmt: Format) -> Published:
        """The joined body for the store as it is now: cached, or rejoined where it changed."""
        async with self._lock:  # concurrent scrapes of a changed store join once
            self._store.expire()
            cached = self._published.get(fmt)
            if cached is not None and cached.version == self._store.version:
                return cached
            version = self._store.version
            document = self._documents[fmt]
            results, had = self._store.results(), self._in_document[fmt]
            for key in had.keys() - results.keys():
                document.remove(key)
            for key, rendered in results.items():
                if had.get(key) is not rendered:
                    document.update(key, rendered.blocks(fmt))
            self._in_document[fmt] = results
            published = Published(version, await document.parts())
            self._published[fmt] = published
            return published

    async def parts(self, fmt: Format, gzip: bool) -> list[bytes]:
        """The document as parts to send one after the other (`Published.finish`)."""
        published = await self._current(fmt)
        customers = await self._customers.parts(fmt) if self._customers else []
        if not gzip:
            # The own parts are joined already and the few whole ones render in well under a
            # millisecond: less than handing them to a worker thread and waking the loop again.
            return self._finish(published, customers, fmt, gzip)
        return await asyncio.to_thread(self._finish, published, customers, fmt, gzip)

    def _finish(
        self, published: Published, customers: list[bytes], fmt: Format, gzip: bool
    ) -> list[bytes]:
        return published.finish([*customers, generate(self._own, fmt)], gzip)
