"""Authenticated, retried GET requests to one customer's Citrix Cloud APIs.

Every request carries the documented headers, is counted in `citrix_api_requests_total` under a
fixed logical endpoint name, and follows the one retry policy (`retry.py`): 429/5xx and network
errors are retried with capped exponential backoff and jitter, honouring a sane `Retry-After`;
a 401 invalidates the token and retries once. Answers are untrusted: bodies are read up to
`poll.max_response_bytes` (after decompression), redirects are refused (the bearer token and
customer id must reach no other host), and error messages keep only scrubbed human fields.

`send` makes one request and reports what came back; `decide` turns that into a result, a
retry or an error, one rule per branch.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from .. import __version__
from ..config import CustomerConfig, PollConfig
from ..log import get_logger
from ..metrics import DataIssues, SelfMetrics
from .access import access_hint
from .body import ResponseTooLarge, read_bounded
from .detail import (
    MAX_ERROR_BODY_BYTES,
    error_detail,
    exception_reason,
    is_redirect,
    redirect_host,
    transaction_id,
)
from .errors import NotEntitledError, ThrottledError, UpstreamError
from .retry import RETRYABLE_STATUSES, RetryPolicy
from .sliced import parse_json_yielding
from .token import TokenManager
from .transport import Transport

log = get_logger("upstream")

Sleep = Callable[[float], Awaitable[None]]
USER_AGENT = f"citrix-cloud-exporter/{__version__}"


@dataclass(frozen=True)
class ApiResponse:
    """A successful response: status 200 (data parsed from JSON) or 204 (data None)."""

    status: int
    data: Any
    url: str


@dataclass(frozen=True)
class Answer:
    """What one request brought back, before anything is decided about it."""

    status: int
    body: bytes
    headers: Mapping[str, str]
    url: str


@dataclass(frozen=True)
class Retry:
    """Ask again after `delay` seconds (or, with `reauthenticate`, at once with a new token)."""

    delay: float
    reason: str
    txid: str | None = None
    reauthenticate: bool = False


class ApiClient:
    """GETs JSON from one customer's Citrix Cloud APIs on behalf of the collectors.

    Built from the poll settings (retries, timeout, response cap) with its own token manager,
    so a customer's client is wired one way (by `connections.Connections`, and by the tests).
    """

    def __init__(
        self,
        transport: Transport,
        customer: CustomerConfig,
        poll: PollConfig,
        metrics: SelfMetrics,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.transport = transport
        self.customer = customer
        # The customer's one token manager, on the same transport, retry settings and clock.
        self.tokens = TokenManager(transport, customer, metrics, poll.retry, poll.timeout, clock)
        self.metrics = metrics
        self._jitter = jitter
        self._sleep = sleep
        self._clock = clock
        self._throttled_until = 0.0
        # Repairs made before any collector sees the data (invalid UTF-8 in a body).
        self._issues = DataIssues(metrics, customer.customer_id, "upstream")
        self._settings(poll)

    def _settings(self, poll: PollConfig) -> None:
        self.policy = RetryPolicy(poll.retry, self._jitter)
        self._timeout = aiohttp.ClientTimeout(total=poll.timeout)
        self._max_response_bytes = poll.max_response_bytes

    def reconfigure(
        self, transport: Transport, customer: CustomerConfig, poll: PollConfig, new_token: bool
    ) -> None:
        """Apply a reload in place (the collectors hold this client): the new transport, poll
        settings and customer entry; with `new_token` (credentials or endpoint changed) a new
        token manager, so the old token is never sent again."""
        if new_token:
            self.tokens = TokenManager(
                transport, customer, self.metrics, poll.retry, poll.timeout, self._clock
            )
        else:
            self.tokens.reconfigure(transport, poll.retry, poll.timeout)
        self.transport = transport
        self.customer = customer
        self._settings(poll)

    @property
    def base_url(self) -> str:
        return self.customer.base_url

    @property
    def throttled_until(self) -> float:
        """When a long Retry-After ends (0 when none is pending): no request before then."""
        return self._throttled_until

    async def get_json(
        self, endpoint: str, url: str, params: Mapping[str, str] | None = None
    ) -> ApiResponse:
        """GET `url` and return its JSON; raises UpstreamError (or a subclass) on failure."""
        self._check_throttled(endpoint)
        attempt = 0
        reauthenticated = False
        while True:
            attempt += 1
            token = await self.tokens.get()
            try:
                answer = await self.send(endpoint, url, params, token)
            except (aiohttp.ClientError, TimeoutError) as err:
                outcome: ApiResponse | Retry = self._no_response(endpoint, err, attempt)
            else:
                outcome = await self.decide(endpoint, answer, attempt, reauthenticated)
            if isinstance(outcome, ApiResponse):
                return outcome
            self._log_retry(endpoint, outcome)
            if outcome.reauthenticate:
                reauthenticated = True
                attempt -= 1  # the retry after a fresh token is not a failure of the API
                self.tokens.invalidate(token)
                continue
            await self._sleep(outcome.delay)

    async def send(
        self, endpoint: str, url: str, params: Mapping[str, str] | None, token: str
    ) -> Answer:
        """One GET, redirects not followed, body bounded; counted under its status."""
        headers = {
            "Authorization": f"CwsAuth Bearer={token}",
            "Citrix-CustomerId": self.customer.customer_id,
            "Accept": "application/json",
            "Accept-Encoding": "gzip",
            "User-Agent": USER_AGENT,
        }
        try:
            async with self.transport.request(
                "GET",
                url,
                params=params,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                body = await self._read(endpoint, resp)
                answer = Answer(resp.status, body, resp.headers, str(resp.url))
        except (aiohttp.ClientError, TimeoutError):
            self._count(endpoint, "error")
            raise
        except ResponseTooLarge as err:
            self._count(endpoint, str(err.status))
            raise
        self._count(endpoint, str(answer.status))
        return answer

    async def _read(self, endpoint: str, resp: aiohttp.ClientResponse) -> bytes:
        """A success body up to the configured cap; an error body only as far as its detail."""
        if resp.status == 200:
            return await read_bounded(
                resp, self._max_response_bytes, endpoint, "poll.max_response_bytes"
            )
        try:
            return await read_bounded(resp, MAX_ERROR_BODY_BYTES, endpoint, "error body")
        except ResponseTooLarge:
            return b""  # the status alone decides; an oversized error body is not worth more

    async def decide(
        self, endpoint: str, answer: Answer, attempt: int, reauthenticated: bool
    ) -> ApiResponse | Retry:
        """The result of `answer`, a Retry, or an UpstreamError raised (one rule per status).
        A large 200 body is parsed in slices, giving the loop a turn (`sliced.py`)."""
        status = answer.status
        txid = transaction_id(answer.headers)
        if status == 200:
            data = await parse_json_yielding(
                answer.body, endpoint, status, txid, lambda: self._report_invalid_utf8(endpoint)
            )
            return ApiResponse(status, data, answer.url)
        if status == 204:
            return ApiResponse(status, None, answer.url)
        if is_redirect(status):
            where = redirect_host(answer.headers)
            raise UpstreamError(
                f"{endpoint}: HTTP {status} redirect to {where} refused", status, txid
            )
        if status == 401 and not reauthenticated:
            return Retry(0.0, f"{endpoint}: HTTP 401", txid, reauthenticate=True)
        detail = error_detail(answer.body)
        message = f"{endpoint}: HTTP {status}" + (f" ({detail})" if detail else "")
        if status in RETRYABLE_STATUSES:
            return self._retry_or_raise(message, answer, attempt, txid)
        if status == 404:
            raise NotEntitledError(message, status, txid)
        if status == 403:
            message = f"{message}; {access_hint(endpoint)}"
        raise UpstreamError(message, status, txid)

    def _retry_or_raise(
        self, message: str, answer: Answer, attempt: int, txid: str | None
    ) -> Retry:
        """A retryable status: wait as asked (within reason) or by backoff, while attempts last."""
        status = answer.status
        now = self._clock()
        retry_after = self.policy.retry_after(answer.headers, now)
        if retry_after is not None and retry_after > self.policy.max_delay:
            self._throttled_until = now + retry_after
            # Exported: while it lasts no request is sent, so no 429 is counted to alert on.
            self.metrics.throttled_until.labels(self.customer.customer_id).set(
                self._throttled_until
            )
            raise ThrottledError(
                f"{message}; Retry-After {retry_after:.0f}s is longer than this poll waits",
                status,
                txid,
            )
        if attempt >= self.policy.attempts:
            error = ThrottledError if status == 429 else UpstreamError
            raise error(f"{message} after {attempt} attempts", status, txid)
        delay = retry_after if retry_after is not None else self.policy.backoff(attempt)
        return Retry(delay, message, txid)

    def _no_response(self, endpoint: str, err: BaseException, attempt: int) -> Retry:
        """A network error or timeout: retried by backoff while attempts last."""
        reason = exception_reason(err)
        if attempt >= self.policy.attempts:
            raise UpstreamError(f"{endpoint}: no response: {reason}") from None
        return Retry(self.policy.backoff(attempt), reason)

    def _check_throttled(self, endpoint: str) -> None:
        now = self._clock()
        if now < self._throttled_until:
            raise ThrottledError(
                f"{endpoint}: throttled by Citrix Cloud (Retry-After), not calling again for "
                f"{self._throttled_until - now:.0f}s",
                429,
            )

    def _count(self, endpoint: str, code: str) -> None:
        self.metrics.api_requests.labels(self.customer.customer_id, endpoint, code).inc()

    def _report_invalid_utf8(self, endpoint: str) -> None:
        self._issues.report(
            "invalid_utf8", endpoint, "bytes that are not UTF-8 were replaced with U+FFFD"
        )

    def _log_retry(self, endpoint: str, outcome: Retry) -> None:
        """Every retry is logged with the transaction id Citrix support asks for."""
        extra: dict[str, object] = {"customer_id": self.customer.customer_id, "endpoint": endpoint}
        if outcome.reauthenticate:
            extra["txid"] = outcome.txid or ""
            log.info("401 from Citrix Cloud; fetching a new token and retrying once", extra=extra)
            return
        extra.update(
            reason=outcome.reason, txid=outcome.txid or "", retry_in_seconds=round(outcome.delay, 2)
        )
        log.info("upstream request failed; retrying", extra=extra)
