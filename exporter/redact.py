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
from collections import Counter, OrderedDict
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


# RFC 6750's b64token alphabet: real bearer tokens are runs of these characters.
_TOKEN_RUN = re.compile(r"[A-Za-z0-9._~+/=-]+")
# Tokens outside the b64token alphabet (only a careless upstream issues them) are matched by a
# pattern instead; it is rebuilt when one is added, so it stays short.
MAX_ODD_TOKENS = 64
# Real tokens end in random signature bytes, so their last characters tell them apart; tokens
# sharing an ending (only a careless upstream issues those) are kept up to this many.
MAX_TOKENS_PER_ENDING = 16


class _TokenIndex:
    """Bounded, insertion-ordered set of issued tokens, found in text without a regex of them.

    One alternation of every token would be recompiled at each issue: at 1,000 customers that
    is a 0.6 s compile per token response on the event loop (measured with bench/scale.py).
    Tokens are found instead inside the b64token runs of the text that are long enough to hold
    one: each position is looked up by the MIN_SECRET_LENGTH characters that end there.
    """

    def __init__(self) -> None:
        self._order: OrderedDict[str, None] = OrderedDict()
        self._by_ending: dict[str, list[str]] = {}
        self._lengths: Counter[int] = Counter()
        self._odd: OrderedDict[str, None] = OrderedDict()
        self._odd_pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        if _TOKEN_RUN.fullmatch(value) is None:
            self._odd[value] = None
            self._odd.move_to_end(value)
            while len(self._odd) > MAX_ODD_TOKENS:
                self._odd.popitem(last=False)
            self._odd_pattern = _alternation(self._odd)
            return
        if value in self._order:
            self._order.move_to_end(value)
            return
        self._order[value] = None
        self._lengths[len(value)] += 1
        same_ending = self._by_ending.setdefault(value[-MIN_SECRET_LENGTH:], [])
        same_ending.append(value)
        if len(same_ending) > MAX_TOKENS_PER_ENDING:
            self._forget(same_ending[0])
        while len(self._order) > MAX_REMEMBERED_TOKENS:
            self._forget(next(iter(self._order)))

    def _forget(self, value: str) -> None:
        del self._order[value]
        self._lengths[len(value)] -= 1
        if not self._lengths[len(value)]:
            del self._lengths[len(value)]
        ending = value[-MIN_SECRET_LENGTH:]
        self._by_ending[ending].remove(value)
        if not self._by_ending[ending]:
            del self._by_ending[ending]

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where known tokens stand in `text` (possibly overlapping)."""
        found: list[tuple[int, int]] = []
        if self._odd_pattern is not None:
            found.extend(m.span() for m in self._odd_pattern.finditer(text))
        if not self._lengths:
            return found
        shortest = min(self._lengths)
        for run in _TOKEN_RUN.finditer(text):
            if run.end() - run.start() >= shortest:
                found.extend(self._in_run(text, run.start(), run.end()))
        return found

    def _in_run(self, text: str, start: int, end: int) -> list[tuple[int, int]]:
        found = []
        for stop in range(start + MIN_SECRET_LENGTH, end + 1):
            for token in self._by_ending.get(text[stop - MIN_SECRET_LENGTH : stop], ()):
                begin = stop - len(token)
                if begin >= start and text.startswith(token, begin):
                    found.append((begin, stop))
        return found


def _alternation(values: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern matching any of `values`, longest first (None for none)."""
    # Values that match at one position are prefixes of each other; reverse order puts each
    # before its own prefixes, so the longest one is replaced whole.
    ordered = sorted(set(values), reverse=True)
    return re.compile("|".join(map(re.escape, ordered))) if ordered else None


def _redact_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with each run of overlapping spans replaced by one ``<redacted>``."""
    parts: list[str] = []
    position = 0
    for start, end in sorted(spans):
        if end <= position:
            continue
        if start > position:
            parts.append(text[position:start])
            parts.append(REDACTED)
        elif not parts:
            parts.append(REDACTED)
        position = end
    parts.append(text[position:])
    return "".join(parts)


class Redactor:
    """Replaces known secret values and secret-shaped text with ``<redacted>``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # log records may come from other threads
        self._secrets: set[str] = set()
        self._secret_pattern: re.Pattern[str] | None = None
        self._tokens = _TokenIndex()

    def add_secrets(self, values: Iterable[str]) -> None:
        """Register long-lived secrets (client secrets); kept for the life of the process."""
        with self._lock:
            fresh = {v for v in values if v and len(v) >= MIN_SECRET_LENGTH} - self._secrets
            if fresh:
                self._secrets |= fresh
                self._secret_pattern = _alternation(self._secrets)

    def add_token(self, value: str) -> None:
        """Register a freshly issued bearer token (the oldest is forgotten past the bound)."""
        if not value or len(value) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            self._tokens.add(value)

    def scrub(self, text: str) -> str:
        """``text`` with every known secret and secret-shaped substring redacted."""
        if not text:
            return text
        with self._lock:
            spans = self._tokens.spans(text)
            if self._secret_pattern is not None:
                spans.extend(m.span() for m in self._secret_pattern.finditer(text))
        if spans:
            text = _redact_spans(text, spans)
        return _SHAPES.sub(_replace_shape, text)


REDACTOR = Redactor()


def scrub(text: str) -> str:
    """Shorthand for ``REDACTOR.scrub``: the call every outward channel makes."""
    return REDACTOR.scrub(text)
