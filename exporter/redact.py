"""One place that knows every secret, so no outward channel can show one.

Logs, the landing page, `--once` output and error messages all pass text through
:data:`REDACTOR` before it leaves the process. It knows two kinds of secret:

* exact values registered as they appear: every customer's client secret (at config load and
  reload) and every bearer token as it is issued;
* shapes that are secrets whatever their value, for text that repeats a request we made (an
  upstream error body echoing our form or headers): ``client_secret=...``,
  ``"access_token": "..."``, ``Bearer=...`` / ``Bearer ...`` and JSON Web Tokens.

Tokens are remembered for a bounded number of issues (a long-running partner exporter issues
one per customer per hour); an older token has expired long before it is forgotten, and the
shapes above still catch one that reappears.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable

REDACTED = "<redacted>"
# Shorter values would mangle ordinary words; real secrets and tokens are much longer.
MIN_SECRET_LENGTH = 6
MAX_REMEMBERED_TOKENS = 50_000

_SHAPES = re.compile(
    r"(?P<key>(?:client_secret|access_token|refresh_token|id_token|password|clientsecret)"
    r"[\"']?\s*[:=]\s*[\"']?)(?P<value>[^\"'&\s,;}]+)"
    r"|(?P<scheme>\bbearer\s*[=:]?\s*)(?P<bearer>[A-Za-z0-9._~+/=-]{16,})"
    r"|(?P<jwt>\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)",
    re.IGNORECASE,
)


def _replace_shape(match: re.Match[str]) -> str:
    if match["key"] is not None:
        return match["key"] + REDACTED
    if match["scheme"] is not None:
        return match["scheme"] + REDACTED
    return REDACTED


class Redactor:
    """Replaces known secret values and secret-shaped text with ``<redacted>``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # log records may come from other threads
        self._secrets: set[str] = set()
        self._tokens: OrderedDict[str, None] = OrderedDict()
        self._pattern: re.Pattern[str] | None = None

    def add_secrets(self, values: Iterable[str]) -> None:
        """Register long-lived secrets (client secrets); kept for the life of the process."""
        with self._lock:
            for value in values:
                if value and len(value) >= MIN_SECRET_LENGTH and value not in self._secrets:
                    self._secrets.add(value)
                    self._pattern = None

    def add_token(self, value: str) -> None:
        """Register a freshly issued bearer token (the oldest is forgotten past the bound)."""
        if not value or len(value) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            self._tokens[value] = None
            self._tokens.move_to_end(value)
            while len(self._tokens) > MAX_REMEMBERED_TOKENS:
                self._tokens.popitem(last=False)
            self._pattern = None

    def _compiled(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._pattern is None and (self._secrets or self._tokens):
                # Values that match at one position are prefixes of each other; reverse order
                # puts each before its own prefixes, so the longest one is replaced whole.
                values = sorted({*self._secrets, *self._tokens}, reverse=True)
                self._pattern = re.compile("|".join(map(re.escape, values)))
            return self._pattern

    def scrub(self, text: str) -> str:
        """``text`` with every known secret and secret-shaped substring redacted."""
        if not text:
            return text
        pattern = self._compiled()
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        return _SHAPES.sub(_replace_shape, text)


REDACTOR = Redactor()


def scrub(text: str) -> str:
    """Shorthand for ``REDACTOR.scrub``: the call every outward channel makes."""
    return REDACTOR.scrub(text)
