"""Bearer tokens for one customer: fetched with client credentials, refreshed ahead of expiry.

Citrix Cloud tokens live one hour and cannot be refreshed, only fetched again. One refresh at a
time per customer (an asyncio lock) however many collectors ask; failures back off by the shared
retry policy so a wrong secret does not turn into a token-request storm, and while a refresh
fails the current token is handed out until it expires.

The token endpoint sees our client secret, so its answer is treated with care: the POST never
follows a redirect, the answer is read only up to `MAX_TOKEN_RESPONSE_BYTES`, a failure message
keeps only the OAuth `error` code and description (scrubbed, bounded), and an issued token is
registered with the redactor the moment it is parsed.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp

from ..config import CustomerConfig, RetryConfig
from ..log import get_logger
from ..metrics import DataIssues, SelfMetrics
from ..redact import REDACTOR
from .body import parse_json, read_bounded
from .detail import exception_reason, is_redirect, oauth_reason, redirect_host, transaction_id
from .errors import TokenError, UpstreamError
from .retry import RetryPolicy
from .transport import Transport

log = get_logger("token")

DEFAULT_LIFETIME = 3600.0
MAX_REFRESH_MARGIN = 300.0
# A token answer is ~1 KiB of JSON; anything near this is not a token answer.
MAX_TOKEN_RESPONSE_BYTES = 64 * 1024
# Visible ASCII only: a token goes into a header, where CR/LF or spaces would be an injection.
_TOKEN_SHAPE = re.compile(r"[\x21-\x7e]{1,16384}")


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
        transport: Transport,
        customer: CustomerConfig,
        metrics: SelfMetrics,
        retry: RetryConfig,
        timeout: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._transport = transport
        self._customer = customer
        self._metrics = metrics
        self.policy = RetryPolicy(retry)
        self._timeout = timeout
        self._clock = clock
        self._issues = DataIssues(metrics, customer.customer_id, "token")
        self._lock = asyncio.Lock()
        self._token: Token | None = None
        self._failures = 0
        self._next_attempt_at = 0.0
        self._last_error: TokenError | None = None
        self._retry_after: float | None = None
        # Known to the redactor before anything can echo it (config loading also registers it).
        REDACTOR.add_secrets([customer.client_secret.get_secret_value()])
        # Start both counters at 0 so the first failure is an increase Prometheus can see.
        metrics.token_requests.labels(customer.customer_id)
        metrics.token_request_failures.labels(customer.customer_id)

    def reconfigure(self, transport: Transport, retry: RetryConfig, timeout: float) -> None:
        """A reload that keeps the customer's credentials: the token and its back-off state are
        kept; the way out and the retry settings are the new ones."""
        self._transport = transport
        self.policy = RetryPolicy(retry)
        self._timeout = timeout

    @property
    def url(self) -> str:
        return (
            f"{self._customer.base_url}/cctrustoauth2/{self._customer.customer_id}/tokens/clients"
        )

    @property
    def expires_at(self) -> float | None:
        return self._token.expires_at if self._token else None

    @property
    def next_attempt_at(self) -> float:
        """After a failure: no token request before this time (0 when none failed)."""
        return self._next_attempt_at

    def _usable(self, now: float) -> str | None:
        """The current token if it is not due for refresh yet."""
        token = self._token
        return token.value if token and now < token.refresh_at else None

    def _unexpired(self, now: float) -> str | None:
        """The current token if it still works, due for refresh or not."""
        token = self._token
        return token.value if token and now < token.expires_at else None

    async def get(self) -> str:
        """A token valid for a while yet; concurrent callers share one fetch."""
        value = self._usable(self._clock())
        if value:
            return value
        async with self._lock:
            now = self._clock()
            value = self._usable(now)
            if value:
                return value
            if now < self._next_attempt_at and self._last_error is not None:
                value = self._unexpired(now)
                if value:
                    return value  # refresh failed recently; the old one still works
                wait = self._next_attempt_at - now
                raise TokenError(f"{self._last_error} (next token request in {wait:.0f}s)")
            try:
                token = await self._fetch()
            except TokenError as err:
                return self._after_failure(err, now)
            self._failures = 0
            self._last_error = None
            self._next_attempt_at = 0.0
            self._token = token
            return token.value

    def _after_failure(self, err: TokenError, now: float) -> str:
        """Back off (Retry-After if the endpoint sent a usable one); keep a working token."""
        self._failures += 1
        wait = self._retry_after
        if wait is None:
            wait = self.policy.ceiling(self._failures)
        self._next_attempt_at = self._clock() + wait
        self._last_error = err
        value = self._unexpired(now)
        if value is None:
            raise err
        log.warning(
            "token refresh failed; using the current token until it expires",
            extra={"customer_id": self._customer.customer_id, "error": str(err)},
        )
        return value

    def invalidate(self, value: str) -> None:
        """Forget `value` after a 401, unless another caller already replaced it."""
        if self._token and self._token.value == value:
            self._token = None

    async def _fetch(self) -> Token:
        customer_id = self._customer.customer_id
        self._metrics.token_requests.labels(customer_id).inc()
        self._retry_after = None
        try:
            status, body, headers = await self._post()
            token = self._parse(status, body, headers)
        except (aiohttp.ClientError, TimeoutError) as err:
            self._metrics.token_request_failures.labels(customer_id).inc()
            reason = exception_reason(err)
            raise TokenError(f"token request failed: {reason}") from None
        except TokenError:
            self._metrics.token_request_failures.labels(customer_id).inc()
            raise
        except UpstreamError as err:  # too large, not JSON, nested too deeply
            self._metrics.token_request_failures.labels(customer_id).inc()
            raise TokenError(str(err), err.status) from None
        self._metrics.token_expiry.labels(customer_id).set(token.expires_at)
        log.debug("fetched a bearer token", extra={"customer_id": customer_id})
        return token

    async def _post(self) -> tuple[int, bytes, Mapping[str, str]]:
        """One token request, not redirected; the answer read up to its small cap."""
        form = {
            "grant_type": "client_credentials",
            "client_id": self._customer.client_id,
            "client_secret": self._customer.client_secret.get_secret_value(),
        }
        async with self._transport.request(
            "POST",
            self.url,
            data=form,
            headers={"Accept": "application/json"},
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            allow_redirects=False,
        ) as resp:
            body = await read_bounded(
                resp, MAX_TOKEN_RESPONSE_BYTES, "token request", "MAX_TOKEN_RESPONSE_BYTES"
            )
            return resp.status, body, resp.headers

    def _parse(self, status: int, body: bytes, headers: Mapping[str, str]) -> Token:
        """The token in a 200 answer (registered with the redactor at once), else TokenError."""
        txid = transaction_id(headers)
        if status != 200:
            self._retry_after = self.policy.retry_after(headers, self._clock())
            raise TokenError(_describe_failure(status, body, headers), status, txid)
        data = parse_json(body, "token request", status, txid)
        raw = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(raw, str) or not _TOKEN_SHAPE.fullmatch(raw):
            raise TokenError("token request: answer has no usable access_token", status, txid)
        REDACTOR.add_token(raw)
        lifetime = self._lifetime(data.get("expires_in"))
        now = self._clock()
        return Token(
            value=raw,
            expires_at=now + lifetime,
            refresh_at=now + lifetime - refresh_margin(lifetime),
        )

    def _lifetime(self, raw: object) -> float:
        """`expires_in` arrives as a string ("3600"); accept numbers too, default to an hour."""
        try:
            lifetime = float(raw)  # type: ignore[arg-type]
            if 0 < lifetime < float("inf"):
                return lifetime
        except (TypeError, ValueError, OverflowError):
            pass
        self._issues.report(
            "bad_number", "expires_in", f"unusable expires_in {raw!r}"
        )  # DataIssues bounds it
        return DEFAULT_LIFETIME


def _describe_failure(status: int, body: bytes, headers: Mapping[str, str]) -> str:
    """A safe one-line reason: the OAuth error code and description, never the request."""
    if is_redirect(status):
        return f"token request: HTTP {status} redirect to {redirect_host(headers)} refused"
    reason = oauth_reason(body)
    if reason:
        return f"token request rejected with HTTP {status} ({reason})"
    return f"token request failed with HTTP {status}"
