"""What a reload changes: the difference between the running config and a new one, as a plan.

A reload must not cost what a restart costs (every token, counter, histogram and watermark),
so it changes only what differs, per customer:

* **added**: a new client and new jobs, polled at once;
* **removed**: jobs stopped, results and own series dropped at once;
* **credentials** changed (client id or secret, region or API URL, CA file): the same client
  and jobs, with a new token manager, so the next request fetches a token with the new
  credentials and the old token is never sent again; counters and watermarks are kept;
* **collectors** changed (any option under ``collectors:``, or ``poll.omit_zero_states``
  reaching a customer that does not set it): that customer's jobs are rebuilt, so the state
  those collectors keep (Monitor's failure counters, logon histograms, watermarks) starts again;
* **unchanged**: nothing at all.

``poll`` settings apply to every client and job (intervals, timeout, retries, caps,
staleness) except ``max_concurrency``, the size of the one shared connection pool, which needs a
restart, as do the listen address and the metrics path. Planning is a pure function of the two
configs, so it is tested without running anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Config, PollConfig, WebConfig

CREDENTIAL_KEYS = ("client_id", "client_secret", "region", "api_url", "ca_file")
# poll.* keys a reload cannot apply: the connection pool and its cap are built once.
RESTART_POLL_KEYS = ("max_concurrency",)
RESTART_WEB_KEYS = ("listen_address", "telemetry_path")


@dataclass(frozen=True)
class Plan:
    """Customer ids per kind of change (a customer can be in `credentials` and `collectors`),
    the `poll` keys that changed, and the changes kept for a restart, one sentence each."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    credentials: tuple[str, ...] = ()
    collectors: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    poll: tuple[str, ...] = ()
    needs_restart: tuple[str, ...] = ()

    def summary(self) -> dict[str, int | str]:
        """Counts for the log and the reload response."""
        counts: dict[str, int | str] = {
            "added": len(self.added),
            "removed": len(self.removed),
            "credentials_changed": len(self.credentials),
            "collectors_changed": len(self.collectors),
            "unchanged": len(self.unchanged),
        }
        if self.poll:
            counts["poll_changed"] = ",".join(self.poll)
        return counts


def _changed(old: object, new: object, keys: tuple[str, ...]) -> list[str]:
    return [key for key in keys if getattr(old, key) != getattr(new, key)]


def plan(old: Config, new: Config) -> Plan:
    """How to go from the running `old` config to `new` (both validated)."""
    before = {customer.customer_id: customer for customer in old.customers}
    after = {customer.customer_id: customer for customer in new.customers}
    credentials: list[str] = []
    collectors: list[str] = []
    unchanged: list[str] = []
    for customer_id, customer in after.items():
        previous = before.get(customer_id)
        if previous is None:
            continue
        new_credentials = bool(_changed(previous, customer, CREDENTIAL_KEYS))
        new_collectors = previous.collectors != customer.collectors
        if new_credentials:
            credentials.append(customer_id)
        if new_collectors:
            collectors.append(customer_id)
        if not (new_credentials or new_collectors):
            unchanged.append(customer_id)
    poll = _changed(old.poll, new.poll, tuple(PollConfig.model_fields))
    restart = [
        f"poll.{key}: the connection pool keeps its size until a restart"
        for key in RESTART_POLL_KEYS
        if key in poll
    ]
    return Plan(
        added=tuple(c for c in after if c not in before),
        removed=tuple(c for c in before if c not in after),
        credentials=tuple(credentials),
        collectors=tuple(collectors),
        unchanged=tuple(unchanged),
        poll=tuple(poll),
        needs_restart=tuple(restart),
    )


def web_restarts(old: WebConfig, new: WebConfig) -> list[str]:
    """The changed `web:` settings (flags applied), which only a restart applies."""
    return [
        f"web.{key}: still {getattr(old, key)!r} until a restart (new: {getattr(new, key)!r})"
        for key in _changed(old, new, RESTART_WEB_KEYS)
    ]
