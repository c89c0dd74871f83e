"""Errors raised by the upstream layer; their messages are safe to show (no secrets).

Messages are built only from our own words and the bounded, scrubbed fields of `detail.py`;
the redactor runs once more here so a secret cannot reach a page or a log even by a route
nobody thought of.
"""

from __future__ import annotations

from ..redact import scrub


class UpstreamError(Exception):
    """A Citrix Cloud call failed; `status` is the HTTP status or None for no response."""

    def __init__(
        self, message: str, status: int | None = None, transaction_id: str | None = None
    ) -> None:
        if transaction_id:
            message = f"{message} (transaction id {transaction_id})"
        super().__init__(scrub(message))
        self.status = status
        self.transaction_id = transaction_id


class TokenError(UpstreamError):
    """No bearer token could be obtained."""


class NotEntitledError(UpstreamError):
    """404 from licensing: the customer is not entitled to this product."""


class ThrottledError(UpstreamError):
    """429 (or 503) and the upstream asked us to wait longer than we wait inside one poll."""
