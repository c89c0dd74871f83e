"""The few upstream-controlled strings our error messages repeat, each bounded and scrubbed.

An error body may echo what we sent (the token form with its client secret, the Authorization
header), and headers are whatever the server chose. So messages never copy a body: they keep
only the documented human fields (`detail`, the JSON-in-JSON `Message` of `error_description`,
an OAuth `error` code), the transaction id and a redirect's host, each passed through the
redactor and cut to `MAX_DETAIL_CHARS`. Messages built from these are safe to show anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..redact import scrub

MAX_DETAIL_CHARS = 200
# Headers are already bounded by aiohttp (8 KiB); a transaction id is a GUID.
MAX_TRANSACTION_ID_CHARS = 64
# Bodies of error answers are read only this far; a documented one is a few hundred bytes.
MAX_ERROR_BODY_BYTES = 64 * 1024


def safe_text(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """`text` on one line, scrubbed of secrets, then cut to `limit` characters.

    Scrubbing comes first so a secret is never half-shown by the cut.
    """
    text = " ".join(scrub(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def transaction_id(headers: Mapping[str, str]) -> str | None:
    """The id Citrix support asks for; the header name differs between services."""
    raw = headers.get("Citrix-TransactionId") or headers.get("CC-TransactionId")
    if not raw:
        return None
    return safe_text(raw, MAX_TRANSACTION_ID_CHARS) or None


def is_redirect(status: int) -> bool:
    """A 3xx answer: refused, never followed, by API and token requests alike."""
    return 300 <= status < 400


def redirect_host(headers: Mapping[str, str]) -> str:
    """The host a redirect points to (never its path or query, which may carry anything)."""
    location = headers.get("Location", "")
    try:
        host = urlsplit(location).hostname or ""
    except ValueError:
        host = ""
    return safe_text(host, 100) or "an unnamed location"


def _loads(body: bytes | str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def error_detail(body: bytes) -> str:
    """The human part of a Citrix error body (`detail`, or the JSON-in-JSON `error_description`
    `Message`, or an `error` code), safe to show; "" if there is none."""
    data = _loads(body[:MAX_ERROR_BODY_BYTES])
    if not isinstance(data, dict):
        return ""
    detail = data.get("detail")
    if isinstance(detail, str) and detail:
        return safe_text(detail)
    description = data.get("error_description")
    if isinstance(description, str) and description:
        inner = _loads(description)
        if isinstance(inner, dict) and isinstance(inner.get("Message"), str):
            return safe_text(inner["Message"])
        return safe_text(description)
    code = data.get("error")
    return safe_text(code) if isinstance(code, str) else ""


def oauth_reason(body: bytes) -> str:
    """`error: error_description` of an OAuth error answer, safe to show; "" if absent."""
    data = _loads(body[:MAX_ERROR_BODY_BYTES])
    if not isinstance(data, dict):
        return ""
    code = data.get("error")
    if not isinstance(code, str) or not code:
        return ""
    description = data.get("error_description")
    if isinstance(description, str) and description:
        return safe_text(f"{code}: {description}")
    return safe_text(code)


def exception_reason(err: BaseException) -> str:
    """`TimeoutError` or `ClientConnectorError: Cannot connect ...`: the type, then the text if
    any (a bare timeout has none, and "TimeoutError: " would read like a cut-off message)."""
    return f"{type(err).__name__}: {err}".rstrip(": ")
