"""The way out to Citrix Cloud for one customer: the shared session, its TLS trust, the global cap.

Every customer goes through one aiohttp session and connection pool, so a thousand customers
on `api.cloud.com` share kept-alive connections instead of each holding its own pool. A
customer's CA file still applies to that customer's requests only: the SSL context is passed
with each request, and aiohttp keys pooled connections by it, so a connection verified with one
customer's CA bundle is never handed to a customer without it.

`poll.max_concurrency` is one semaphore shared by every customer's API client and token
manager. It is held for the HTTP exchange only (send and bounded read): a request that waits
for backoff or `Retry-After` holds no slot, and the request timeout starts once a slot is held,
so waiting in the queue never times a request out.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass(frozen=True)
class Transport:
    """How one customer's requests are sent: `session` (shared), `trust` (True: the system
    store; a context: the system store plus the customer's CA file), `limiter` (the global cap;
    None: no cap, for tests that build a client on their own)."""

    session: aiohttp.ClientSession
    trust: ssl.SSLContext | bool = True
    limiter: asyncio.Semaphore | None = None

    @contextlib.asynccontextmanager
    async def request(
        self, method: str, url: str, **kwargs: Any
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One request under the global cap; read the body inside the `async with`."""
        async with (
            self.limiter or contextlib.nullcontext(),
            self.session.request(method, url, ssl=self.trust, **kwargs) as resp,
        ):
            yield resp
