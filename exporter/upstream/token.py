"""Bearer tokens for one customer: fetched with client credentials, refreshed ahead of expiry.

Citrix Cloud tokens live one hour and cannot be refreshed, only fetched again. One refresh at a
time per customer (an asyncio lock) however many collectors ask; failures back off so a wrong
secret does not turn into a token-request storm.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from ..config import CustomerConfig, RetryConfig
from ..log import get_logger
from ..metrics import DataIssues, SelfMetrics
from .errors import TokenError

log = get_logger("token")

DEFAULT_LIFETIME = 3600.0
MAX_REFRESH_MARGIN = 300.0


@dataclass(frozen=True)
class Token:
    """A bearer token; the value is kept out of repr so it never lands in a log by accident."""

    value: str = field(repr=False)
    expires_at: float
    refresh_at: float


def refresh_margin(lifetime: float) -> float:
    """How long before expiry to fetch a new token: 5 minutes, or a fifth of short lifetimes."""
    return min(MAX_REFRESH_MARGIN, lifetime / 5)


class TokenManager:
    """Hands out a valid bearer token for one customer, fetching a new one when needed."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        customer: CustomerConfig,
        metrics: SelfMetrics,
        retry: RetryConfig,
        timeout: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self._customer = customer
        self._metrics = metrics
        self._retry = retry
        self._timeout = timeout
        self._clock = clock
        self._issues = DataIssues(metrics, customer.customer_id, "token")
        self._lock = asyncio.Lock()
        self._token: Token | None = None
        self._failures = 0
        self._next_attempt_at = 0.0
        self._last_error: TokenError | None = None
        # Start both counters at 0 so the first failure is an increase Prometheus can see.
        metrics.token_requests.labels(customer.customer_id)
        metrics.token_request_failures.labels(customer.customer_id)

    @property
    def url(self) -> str:
        return (
            f"{self._customer.base_url}/cctrustoauth2/{self._customer.customer_id}/tokens/clients"
        )

    @property
    def expires_at(self) -> float | None:
        return self._token.expires_at if self._token else None

    async def get(self) -> str:
        """A token valid for a while yet; concurrent callers share one fetch."""
        token = self._token
        if token and self._clock() < token.refresh_at:
            return token.value
        async with self._lock:
            token = self._token
            now = self._clock()
            if token and now < token.refresh_at:
                return token.value
            if now < self._next_attempt_at and self._last_error is not None:
                if token and now < token.expires_at:
                    return token.value  # refresh failed recently; the old one still works
                wait = self._next_attempt_at - now
                raise TokenError(f"{self._last_error} (next token request in {wait:.0f}s)")
            try:
                token = await self._fetch()
            except TokenError as err:
                self._failures += 1
                backoff = min(
                    self._retry.max_delay, self._retry.base_delay * 2 ** (self._failures - 1)
                )
                self._next_attempt_at = self._clock() + backoff
                self._last_error = err
                if self._token and now < self._token.expires_at:
                    log.warning(
                        "token refresh failed; using the current token until it expires",
                        extra={"customer_id": self._customer.customer_id, "error": str(err)},
                    )
                    return self._token.value
                raise
            self._failures = 0
            self._last_error = None
            self._token = token
            return token.value

    def invalidate(self, value: str) -> None:
        """Forget `value` after a 401, unless another caller already replaced it."""
        if self._token and self._token.value == value:
            self._token = None

    async def _fetch(self) -> Token:
        customer_id = self._customer.customer_id
        self._metrics.token_requests.labels(customer_id).inc()
        form = {
            "grant_type": "client_credentials",
            "client_id": self._customer.client_id,
            "client_secret": self._customer.client_secret.get_secret_value(),
        }
        try:
            async with self._session.post(
                self.url,
                data=form,
                headers={"Accept": "application/json"},
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            ) as resp:
                txid = resp.headers.get("Citrix-TransactionId") or resp.headers.get(
                    "CC-TransactionId"
                )
                body = await resp.json(content_type=None) if resp.status < 500 else None
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            self._metrics.token_request_failures.labels(customer_id).inc()
            raise TokenError(f"token request failed: {type(err).__name__}: {err}") from None
        if status != 200 or not isinstance(body, dict) or not body.get("access_token"):
            self._metrics.token_request_failures.labels(customer_id).inc()
            raise TokenError(_describe_failure(status, body), status, txid)
        lifetime = self._lifetime(body.get("expires_in"))
        now = self._clock()
        token = Token(
            value=str(body["access_token"]),
            expires_at=now + lifetime,
            refresh_at=now + lifetime - refresh_margin(lifetime),
        )
        self._metrics.token_expiry.labels(customer_id).set(token.expires_at)
        log.debug("fetched a bearer token", extra={"customer_id": customer_id})
        return token

    def _lifetime(self, raw: object) -> float:
        """`expires_in` arrives as a string ("3600"); accept numbers too, default to an hour."""
        try:
            lifetime = float(raw)  # type: ignore[arg-type]
            if lifetime > 0:
                return lifetime
        except (TypeError, ValueError):
            pass
        self._issues.report("bad_number", "expires_in", f"unusable expires_in {raw!r}")
        return DEFAULT_LIFETIME


def _describe_failure(status: int, body: object) -> str:
    """A safe one-line reason: the OAuth error code and description, never the request."""
    if isinstance(body, dict) and body.get("error"):
        reason = str(body.get("error"))
        description = body.get("error_description")
        if description:
            reason = f"{reason}: {description}"
        return f"token request rejected with HTTP {status} ({reason})"
    return f"token request failed with HTTP {status}"
