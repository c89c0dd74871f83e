"""A deliberately careless Citrix Cloud for tests: answers what each test programs, per customer.

Unprogrammed requests get good answers (a token, a healthy licensing `current`, 204 for the
history), so a test programs only the bad answer it is about and keeps a second, well-behaved
customer on the same server to prove that the bad answer costs nobody else anything.

    hostile = HostileUpstream()
    hostile.on("bad1", "/ud/current", lambda request: web.Response(body=b"..."))
    server = await aiohttp_server(hostile.app())
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse] | web.StreamResponse]

TOKEN_SUFFIX = "/tokens/clients"
CURRENT_SUFFIX = "/ud/current"
HISTORY_SUFFIX = "/ud/historicalusage"


def good_current(customer_id: str, available: int = 25, used: int = 3) -> dict[str, Any]:
    """A documented `ud/current` answer (seed 001's shape)."""
    return {
        "customerId": customer_id,
        "totalUsageCount": used,
        "userLicenseUsage": {"totalUsageCount": used, "releasedCount": 0},
        "deviceLicenseUsage": {"totalUsageCount": used, "releasedCount": 0},
        "totalAvailableLicenseCount": available,
        "remainingLicenseCount": available - used,
        "timeStamp": "2026-11-30T02:56:22.0215469Z",
        "productName": "XenDesktop",
        "productEdition": "XAXDFull",
        "nextExpiredLicenses": {
            "nextExpiredTime": "2027-06-30T00:00:00.0000000Z",
            "totalCount": available,
            "daysToExpire": 211,
        },
        "nextActivatingLicense": None,
    }


@dataclass
class Seen:
    """One request the hostile upstream received."""

    method: str
    host: str
    path: str
    customer_id: str | None
    authorization: str | None
    body: bytes
    # Header names as spelled on the wire (HTTP matches them case-insensitively, proxies may not).
    raw_headers: tuple[tuple[str, str], ...] = ()
    query: str = ""


class HostileUpstream:
    """Programmable answers keyed by (customer id, path suffix); good answers otherwise."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str], Handler] = {}
        self.requests: list[Seen] = []
        self.issued_tokens: list[str] = []
        self._serial = itertools.count(1)
        # Every answer waits this long, so concurrent requests overlap and `peak_in_flight`
        # shows how many the client had in flight at once.
        self.latency = 0.0
        self.in_flight = 0
        self.peak_in_flight = 0

    def on(self, customer_id: str, suffix: str, handler: Handler) -> None:
        """Answer `customer_id`'s requests whose path ends with `suffix` with `handler`."""
        self._handlers[(customer_id, suffix)] = handler

    def count(self, suffix: str, customer_id: str | None = None) -> int:
        return sum(
            1
            for seen in self.requests
            if seen.path.endswith(suffix) and customer_id in (None, seen.customer_id)
        )

    def issue_token(self) -> str:
        """A fresh, long, unique bearer token (recorded so tests can look for leaks)."""
        token = f"hostile-token-{next(self._serial)}-{secrets.token_urlsafe(24)}"
        self.issued_tokens.append(token)
        return token

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.endswith(TOKEN_SUFFIX):
            parts = path.strip("/").split("/")
            customer_id: str | None = parts[1] if len(parts) > 1 else None
        else:
            customer_id = request.headers.get("Citrix-CustomerId")
        body = await request.read()
        self.requests.append(
            Seen(
                request.method,
                request.host,
                path,
                customer_id,
                request.headers.get("Authorization"),
                body,
                tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers),
                request.query_string,
            )
        )
        for (cid, suffix), handler in self._handlers.items():
            if cid == customer_id and path.endswith(suffix):
                result = handler(request)
                return await result if isinstance(result, Awaitable) else result
        return self._good_answer(path, customer_id or "unknown")

    def _good_answer(self, path: str, customer_id: str) -> web.StreamResponse:
        if path.endswith(TOKEN_SUFFIX):
            return web.json_response(
                {"token_type": "bearer", "access_token": self.issue_token(), "expires_in": "3600"}
            )
        if path.endswith(CURRENT_SUFFIX):
            return web.json_response(good_current(customer_id))
        return web.Response(status=204)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app
