"""The one retry policy of the upstream layer: which answers to retry, and how long to wait.

Both the API client and the token manager wait by these rules, so a change to the backoff or
to how far a server may push us back happens here once. `Retry-After` is upstream-controlled:
a value that is not a finite, non-negative number or a future date is ignored (the normal
backoff applies), and a usable one is never honoured longer than `max_retry_after`, so
`Retry-After: inf` or a date in 2099 cannot silence a customer for good and `NaN`, `-1` or a
past date cannot turn retries into a storm.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime

from ..config import RetryConfig

# Transient answers worth retrying; 501 Not Implemented (e.g. an unsupported $apply) is not.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# 2**62 times any configured base delay is far beyond any max_delay; bounding the exponent
# keeps a customer that has failed for days from overflowing the float.
_MAX_EXPONENT = 62


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff and `Retry-After` handling for one customer's requests."""

    config: RetryConfig
    jitter: Callable[[], float] = field(default=random.random)

    @property
    def attempts(self) -> int:
        return self.config.attempts

    @property
    def max_delay(self) -> float:
        return self.config.max_delay

    def ceiling(self, attempt: int) -> float:
        """The longest wait after failure number `attempt` (1-based): exponential, capped."""
        exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
        return float(min(self.config.max_delay, self.config.base_delay * 2.0**exponent))

    def backoff(self, attempt: int) -> float:
        """The jittered wait after failure number `attempt`: between half and all the ceiling,
        so clients that failed together do not retry together."""
        ceiling = self.ceiling(attempt)
        return ceiling / 2 + self.jitter() * ceiling / 2

    def retry_after(self, headers: Mapping[str, str], now: float) -> float | None:
        """Seconds the server asked us to wait, capped at `max_retry_after`; None if unusable."""
        seconds = parse_retry_after(headers.get("Retry-After"), now)
        if seconds is None:
            return None
        return min(seconds, self.config.max_retry_after)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), uncapped.

    None when absent or unusable: NaN, negative numbers and dates in the past; `inf` and
    far-future dates come back as they are for the caller to cap.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        return _seconds_until_date(value, now)
    if math.isnan(seconds) or seconds < 0:
        return None
    return seconds


def _seconds_until_date(value: str, now: float) -> float | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": RFC 5322 for "UTC, origin unknown"
        when = when.replace(tzinfo=UTC)
    try:
        seconds = when.timestamp() - now
    except (OverflowError, OSError, ValueError):
        return None
    return seconds if seconds >= 0 else None
