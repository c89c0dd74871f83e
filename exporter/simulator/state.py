"""Mutable state of the Citrix Cloud simulator.

Everything the fake upstream knows lives in one :class:`SimulatorState` object: the customers
and their licence figures, the switchable faults, the tokens it issued and a log of every
request it received. Tests build or mutate this object directly (no HTTP round trip needed to
arrange a scenario or to assert what the exporter sent), and the exporter's ``--demo`` mode
builds one with :func:`exporter.simulator.scenarios.demo_state`.

The clock is injectable (``SimulatorState.now``) so that time-dependent answers (token expiry,
``daysToExpire``, ``timeStamp``, demo drift) are deterministic under test.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from aiohttp import web

from .monitor import MonitorData
from .observed_data import ObservedData


def utcnow() -> datetime:
    """The default clock: the real time, timezone-aware UTC."""
    return datetime.now(UTC)


def month_start(day: date) -> date:
    """First day of the month containing ``day``."""
    return date(day.year, day.month, 1)


def add_months(month: date, delta: int) -> date:
    """First day of the month ``delta`` months after (or before, if negative) ``month``."""
    index = month.year * 12 + (month.month - 1) + delta
    return date(index // 12, index % 12 + 1, 1)


@dataclass
class HistoryMonth:
    """One month of the UD historical usage answer (seed 002), for both assignment kinds."""

    month: date
    available: int
    user_cumulative: int
    user_new: int
    user_released: int
    device_cumulative: int
    device_new: int
    device_released: int


def generate_history(
    end_month: date,
    *,
    months: int = 12,
    available: int = 25,
    user_used: int = 3,
    device_used: int = 3,
) -> list[HistoryMonth]:
    """Build ``months`` plausible months ending with ``end_month``, oldest first.

    Usage grows steadily towards the current figures, so the last month matches the current
    usage; this keeps "current" and "history" consistent when a scenario does not spell out
    its history.
    """
    end = month_start(end_month)
    result: list[HistoryMonth] = []
    prev_user = prev_device = 0
    for i in range(months):
        fraction = (i + 1) / months
        user = max(0, round(user_used * (0.6 + 0.4 * fraction)))
        device = max(0, round(device_used * (0.6 + 0.4 * fraction)))
        result.append(
            HistoryMonth(
                month=add_months(end, i - months + 1),
                available=available,
                user_cumulative=user,
                user_new=max(0, user - prev_user) if i else user,
                user_released=0,
                device_cumulative=device,
                device_new=max(0, device - prev_device) if i else device,
                device_released=0,
            )
        )
        prev_user, prev_device = user, device
    return result


class _AutoHistory(list[HistoryMonth]):
    """Marker default for ``LicenseScenario.history``: "generate 12 months from my figures".

    A plain empty list passed explicitly means "no history at all" (the API then answers 204),
    so the default needs to be distinguishable from it.
    """


@dataclass
class LicenseScenario:
    """Licence figures of one customer for the DaaS user/device (UD) model.

    ``drift_amplitude`` > 0 makes the usage move by up to that many licences, as a smooth
    deterministic function of the clock (period ``drift_period_minutes``), so a demo looks
    alive while tests with a fixed clock stay reproducible. It is 0 (no drift) by default.
    """

    product_name: str = "XenDesktop"
    product_edition: str = "XAXDFull"
    available: int = 25
    user_used: int = 3
    device_used: int = 3
    user_released: int = 0
    device_released: int = 0
    next_expiry: datetime | None = None
    expiring_count: int = 25
    next_activation: datetime | None = None
    activating_count: int = 0
    entitled: bool = True
    history: list[HistoryMonth] = field(default_factory=_AutoHistory)
    drift_amplitude: int = 0
    drift_period_minutes: float = 60.0
    drift_phase: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.history, _AutoHistory):
            self.history = generate_history(
                utcnow().date(),
                available=self.available,
                user_used=self.user_used,
                device_used=self.device_used,
            )

    def drift_at(self, now: datetime) -> int:
        """Licences added to (or removed from) the base usage at time ``now``."""
        if self.drift_amplitude <= 0 or self.drift_period_minutes <= 0:
            return 0
        minutes = now.timestamp() / 60.0
        angle = 2 * math.pi * minutes / self.drift_period_minutes + self.drift_phase
        return round(self.drift_amplitude * math.sin(angle))

    def usage_at(self, now: datetime) -> tuple[int, int]:
        """(user, device) usage at ``now``, drift included, never negative."""
        offset = self.drift_at(now)
        return max(0, self.user_used + offset), max(0, self.device_used + offset)


@dataclass
class SimCustomer:
    """A Citrix Cloud customer with one API client (id + secret) allowed to get tokens;
    ``other_secrets`` are accepted too (a secret being rotated: the old one until revoked)."""

    customer_id: str
    client_id: str
    client_secret: str = field(repr=False)
    licensing: LicenseScenario = field(default_factory=LicenseScenario)
    monitor: MonitorData = field(default_factory=MonitorData)
    """Monitor Service (OData) rows; empty tenant by default (see ``monitor_tenants``)."""
    observed: ObservedData = field(default_factory=ObservedData)
    """Answers of the observed (undocumented) licensing APIs; all 404 by default."""
    other_secrets: list[str] = field(default_factory=list, repr=False)

    def accepts(self, secret: str) -> bool:
        """Whether ``secret`` is one of this client's secrets (compared in constant time)."""
        return any(
            secrets.compare_digest(known.encode(), secret.encode())
            for known in (self.client_secret, *self.other_secrets)
        )


@dataclass
class Faults:
    """Failure modes switchable at runtime, by tests (mutate) or ``POST /_simulator/faults``.

    Counters are consumed (decremented) by the requests they hit, so a test can say "the next
    two calls fail" and then watch the exporter recover.
    """

    throttle_next: int = 0
    retry_after: str | None = None
    error_next: int = 0
    token_error_next: int = 0
    delay_seconds: float = 0.0
    token_lifetime: int = 3600
    revoke_tokens: bool = False
    reject_apply: int = 0
    """Monitor OData: 0 accepts ``$apply``; 400 or 501 answer every ``$apply`` with that."""
    next_link_mode: str = "absolute"
    """Monitor OData ``@odata.nextLink``: ``absolute``, ``relative`` (path and query),
    ``foreign`` (host ``evil.example.com``) or ``loop`` (always this very page)."""
    odata_page_size: int = 1000
    """Monitor OData: most rows per page (server-driven paging)."""


@dataclass(frozen=True)
class TokenInfo:
    """What the simulator remembers about a bearer token it issued."""

    customer_id: str
    expires_at: datetime


@dataclass
class RecordedRequest:
    """One received request, as seen by the simulator (``status`` is filled in afterwards).

    Only the URL query is kept, never the body, so client secrets are not recorded.
    """

    method: str
    path: str
    query: dict[str, str]
    status: int
    customer_id: str | None
    authorization: str | None


def secret_fingerprint(secret: str) -> str:
    """What the simulator records of a client secret: enough to tell two apart, not the secret."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class TokenRequest:
    """One token request: the client, which secret it sent (`secret_fingerprint`), the answer."""

    client_id: str
    secret: str
    granted: bool


@dataclass
class SimulatorState:
    """The whole simulator: customers, faults, tokens, request log and clock."""

    customers: dict[str, SimCustomer] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    requests: list[RecordedRequest] = field(default_factory=list)
    issued_tokens: dict[str, TokenInfo] = field(default_factory=dict)
    token_requests: list[TokenRequest] = field(default_factory=list)
    now: Callable[[], datetime] = utcnow

    def count(self, path_suffix: str | None = None, method: str | None = None) -> int:
        """Number of recorded requests whose path ends with ``path_suffix`` (and ``method``)."""
        return sum(
            1
            for r in self.requests
            if (path_suffix is None or r.path.endswith(path_suffix))
            and (method is None or r.method.upper() == method.upper())
        )

    def counts_by_path(self) -> dict[str, int]:
        """Recorded requests per path, in order of first appearance."""
        return dict(Counter(r.path for r in self.requests))

    def revoke_all_tokens(self) -> None:
        """Invalidate every token issued so far; later tokens are valid again."""
        self.issued_tokens.clear()

    def find_client(self, client_id: str) -> SimCustomer | None:
        """The customer owning API client ``client_id``, if any."""
        for customer in self.customers.values():
            if customer.client_id == client_id:
                return customer
        return None


STATE_KEY: web.AppKey[SimulatorState] = web.AppKey("simulator_state", SimulatorState)
"""Where :func:`exporter.simulator.app.create_app` stores the state on the application."""

CUSTOMER_KEY: web.RequestKey[SimCustomer] = web.RequestKey("simulator_customer", SimCustomer)
"""The authenticated customer of an API request, set by the middleware before the handler."""
