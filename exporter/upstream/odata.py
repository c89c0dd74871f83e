"""Reading OData v4 collections page by page, safely.

Pages are yielded as they arrive so callers aggregate without holding every row. A nextLink is
resolved against the request URL (it may be relative) and refused if it points anywhere but
the customer's own API host: the bearer token must never be sent elsewhere. The page count is
bounded so a server that loops cannot hold the poller forever.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

from .client import ApiClient
from .errors import UpstreamError

Row = dict[str, Any]


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or default


def resolve_next_link(request_url: str, next_link: str, base_url: str) -> str:
    """The absolute URL of `next_link`; UpstreamError if it leaves the customer's API origin."""
    absolute = urljoin(request_url, next_link)
    if _origin(absolute) != _origin(base_url):
        scheme, host, port = _origin(absolute)
        raise UpstreamError(
            f"refusing to follow @odata.nextLink to {scheme}://{host}:{port}: "
            "not the customer's API host"
        )
    return absolute


async def iter_pages(
    api: ApiClient,
    endpoint: str,
    url: str,
    params: Mapping[str, str] | None,
    *,
    max_pages: int,
    limiter: asyncio.Semaphore | None = None,
) -> AsyncIterator[list[Row]]:
    """Yield the `value` rows of each page of the collection at `url`."""
    next_url: str | None = url
    next_params = params
    pages = 0
    while next_url is not None:
        if pages >= max_pages:
            raise UpstreamError(
                f"{endpoint}: more than {max_pages} pages; stopped (raise "
                "collectors.monitor.max_pages if the tenant really is that large)"
            )
        pages += 1
        async with limiter if limiter is not None else contextlib.nullcontext():
            response = await api.get_json(endpoint, next_url, next_params)
        data = response.data
        rows = data.get("value") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise UpstreamError(f"{endpoint}: response has no 'value' list")
        yield [row for row in rows if isinstance(row, dict)]
        link = data.get("@odata.nextLink") if isinstance(data, dict) else None
        next_url = resolve_next_link(response.url, link, api.base_url) if link else None
        next_params = None
