"""Authenticated, retried GET requests to one customer's Citrix Cloud APIs.

Every request carries the documented headers, is counted in `citrix_api_requests_total` under a
fixed logical endpoint name, and is retried on 429/5xx/network errors with capped exponential
backoff and jitter, honouring `Retry-After`. A 401 invalidates the token and retries once.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from .. import __version__
from ..config import CustomerConfig, RetryConfig
from ..log import get_logger
from ..metrics import SelfMetrics
from .errors import NotEntitledError, ThrottledError, UpstreamError
from .token import TokenManager

log = get_logger("upstream")

Sleep = Callable[[float], Awaitable[None]]
USER_AGENT = f"citrix-cloud-exporter/{__version__}"
# Transient answers worth retrying; 501 Not Implemented (e.g. an unsupported $apply) is not.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class ApiResponse:
    """A successful response: status 200 (data parsed from JSON) or 204 (data None)."""

    status: int
    data: Any
    url: str


def transaction_id(headers: Mapping[str, str]) -> str | None:
    """The id Citrix support asks for; the header name differs between services."""
    return headers.get("Citrix-TransactionId") or headers.get("CC-TransactionId")


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), if usable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def error_detail(body: bytes) -> str:
    """The human part of a Citrix error body (`detail`, or the JSON-in-JSON `error_description`)."""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    detail = data.get("detail")
    if detail:
        return str(detail)
    description = data.get("error_description")
    if isinstance(description, str):
        try:
            inner = json.loads(description)
            if isinstance(inner, dict) and inner.get("Message"):
                return str(inner["Message"])
        except ValueError:
            return description
        return description
    return str(data.get("error", ""))


class ApiClient:
    """GETs JSON from one customer's Citrix Cloud APIs on behalf of the collectors."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        customer: CustomerConfig,
        tokens: TokenManager,
        metrics: SelfMetrics,
        retry: RetryConfig,
        timeout: float,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._session = session
        self.customer = customer
        self.tokens = tokens
        self.metrics = metrics
        self._retry = retry
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        self._throttled_until = 0.0

    @property
    def base_url(self) -> str:
        return self.customer.base_url

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (1-based): exponential, capped, half jittered."""
        ceiling = min(self._retry.max_delay, self._retry.base_delay * 2 ** (attempt - 1))
        return float(ceiling / 2 + self._jitter() * ceiling / 2)

    async def get_json(
        self, endpoint: str, url: str, params: Mapping[str, str] | None = None
    ) -> ApiResponse:
        """GET `url` and return its JSON; raises UpstreamError (or a subclass) on failure."""
        customer_id = self.customer.customer_id
        now = self._clock()
        if now < self._throttled_until:
            raise ThrottledError(
                f"{endpoint}: throttled by Citrix Cloud (Retry-After), not calling again for "
                f"{self._throttled_until - now:.0f}s",
                429,
            )
        attempt = 0
        reauthenticated = False
        while True:
            attempt += 1
            token = await self.tokens.get()
            headers = {
                "Authorization": f"CwsAuth Bearer={token}",
                "Citrix-CustomerId": customer_id,
                "Accept": "application/json",
                "Accept-Encoding": "gzip",
                "User-Agent": USER_AGENT,
            }
            try:
                async with self._session.get(
                    url, params=params, headers=headers, timeout=self._timeout
                ) as resp:
                    status = resp.status
                    body = await resp.read()
                    txid = transaction_id(resp.headers)
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"), self._clock())
                    final_url = str(resp.url)
            except (aiohttp.ClientError, TimeoutError) as err:
                self.metrics.api_requests.labels(customer_id, endpoint, "error").inc()
                reason = f"{type(err).__name__}: {err}".rstrip(": ")
                if attempt >= self._retry.attempts:
                    raise UpstreamError(f"{endpoint}: no response: {reason}") from None
                delay = self.backoff(attempt)
                self._log_retry(endpoint, reason, None, delay)
                await self._sleep(delay)
                continue

            self.metrics.api_requests.labels(customer_id, endpoint, str(status)).inc()
            if status == 200:
                try:
                    return ApiResponse(status, json.loads(body), final_url)
                except ValueError:
                    raise UpstreamError(f"{endpoint}: response is not JSON", status, txid) from None
            if status == 204:
                return ApiResponse(status, None, final_url)
            detail = error_detail(body)
            if status == 401 and not reauthenticated:
                reauthenticated = True
                attempt -= 1  # the retry after a fresh token is not a failure of the API
                self.tokens.invalidate(token)
                log.info(
                    "401 from Citrix Cloud; fetching a new token and retrying once",
                    extra={"customer_id": customer_id, "endpoint": endpoint, "txid": txid},
                )
                continue
            if status in RETRYABLE_STATUSES:
                message = f"{endpoint}: HTTP {status}" + (f" ({detail})" if detail else "")
                if (
                    status == 429
                    and retry_after is not None
                    and retry_after > self._retry.max_delay
                ):
                    self._throttled_until = self._clock() + retry_after
                    raise ThrottledError(
                        f"{message}; Retry-After {retry_after:.0f}s is longer than this poll waits",
                        status,
                        txid,
                    )
                if attempt >= self._retry.attempts:
                    error = ThrottledError if status == 429 else UpstreamError
                    raise error(f"{message} after {attempt} attempts", status, txid)
                delay = retry_after if retry_after is not None else self.backoff(attempt)
                self._log_retry(endpoint, message, txid, delay)
                await self._sleep(delay)
                continue
            message = f"{endpoint}: HTTP {status}" + (f" ({detail})" if detail else "")
            if status == 404:
                raise NotEntitledError(message, status, txid)
            raise UpstreamError(message, status, txid)

    def _log_retry(self, endpoint: str, reason: str, txid: str | None, delay: float) -> None:
        log.info(
            "upstream request failed; retrying",
            extra={
                "customer_id": self.customer.customer_id,
                "endpoint": endpoint,
                "reason": reason,
                "txid": txid or "",
                "retry_in_seconds": round(delay, 2),
            },
        )
