"""Reading OData v4 collections page by page, safely.

Pages are yielded as they arrive so callers aggregate without holding every row. A nextLink is
resolved against the request URL (it may be relative) and refused if it points anywhere but
the customer's own API origin (scheme, host and port): the bearer token must never be sent
elsewhere. A nextLink that repeats a URL already fetched in this read ends it at once (a server
in a loop would otherwise be asked the same page until the page bound), and the page count is
bounded so a server that keeps inventing new links cannot hold the poller forever either.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

from yarl import URL

from .client import ApiClient
from .detail import safe_text
from .errors import UpstreamError

Row = dict[str, Any]


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or default


def resolve_next_link(request_url: str, next_link: object, base_url: str) -> str:
    """The absolute URL of `next_link`; UpstreamError if it leaves the customer's API origin."""
    if not isinstance(next_link, str):
        raise UpstreamError("@odata.nextLink is not a string")
    try:
        absolute = urljoin(request_url, next_link)
        origin = _origin(absolute)
    except ValueError:
        raise UpstreamError("@odata.nextLink is not a valid URL") from None
    if origin != _origin(base_url):
        scheme, host, port = origin
        raise UpstreamError(
            f"refusing to follow @odata.nextLink to {safe_text(f'{scheme}://{host}:{port}', 120)}"
            ": not the customer's API host"
        )
    return absolute


def _canonical(url: str) -> str:
    """The URL as the HTTP client will request it, so a repeat is seen whatever its spelling."""
    try:
        return str(URL(url))
    except ValueError:
        return url


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
    fetched: set[str] = set()
    while next_url is not None:
        if len(fetched) >= max_pages:
            raise UpstreamError(
                f"{endpoint}: more than {max_pages} pages; stopped (raise "
                "collectors.monitor.max_pages if the tenant really is that large)"
            )
        async with limiter if limiter is not None else contextlib.nullcontext():
            response = await api.get_json(endpoint, next_url, next_params)
        fetched.add(_canonical(response.url))
        data = response.data
        rows = data.get("value") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise UpstreamError(f"{endpoint}: response has no 'value' list")
        yield [row for row in rows if isinstance(row, dict)]
        link = data.get("@odata.nextLink")  # a dict: it held the 'value' list
        next_url = resolve_next_link(response.url, link, api.base_url) if link else None
        next_params = None
        if next_url is not None and _canonical(next_url) in fetched:
            raise UpstreamError(
                f"{endpoint}: @odata.nextLink repeats a page already read in this poll; stopped"
            )
