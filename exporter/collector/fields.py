"""Tolerant access to fields of upstream JSON: odd values are reported, never raised.

Citrix responses sometimes carry nulls, numbers as strings or timestamps with seven fractional
digits. Every collector reads fields through this class so that each oddity is handled the
same way: skipped (or mapped to `unknown`), counted and logged once via DataIssues.

It is also the one place that decides what an upstream value may become in our metrics:
- a label value is valid UTF-8 (lone surrogates, which Python's json accepts from `"\\ud800"`,
  become U+FFFD) of at most LABEL_LIMIT characters; the exposition cannot encode a surrogate,
  so one unrepaired value would fail every scrape of every customer;
- a count is a finite number, not negative, at most MAX_COUNT (json accepts NaN and Infinity);
- a timestamp lies between 2000 and 2100 (see `timeutil`).
A value repaired or left out is a data issue (`repaired_label`, `not_finite`, `negative`,
`out_of_range`), so a series that is missing or cut short can be explained.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

from ..metrics import DataIssues
from ..timeutil import OutOfRangeError, parse_timestamp

LABEL_LIMIT = 256
# Above any real count, and low enough that sums of counts stay exact and finite.
MAX_COUNT = float(2**53)
_SURROGATES = re.compile("[\ud800-\udfff]")
_SPACE_RE = re.compile(r"\s+")


def valid_text(value: str) -> str:
    """`value` as text that encodes to UTF-8: lone surrogates become U+FFFD."""
    return _SURROGATES.sub("\ufffd", value)


def tidy_text(value: str) -> str:
    """Free text as a label: printable characters only (others become spaces), whitespace
    runs collapsed, trimmed."""
    printable = "".join(ch if ch.isprintable() else " " for ch in value)
    return _SPACE_RE.sub(" ", printable).strip()


def repair_label(value: str, limit: int = LABEL_LIMIT, *, tidy: bool = False) -> tuple[str, bool]:
    """A valid label value made from `value`, and whether it had to be repaired.

    The text is made valid (`valid_text`), tidied if `tidy` (`tidy_text`) and cut to `limit`
    characters, never more than LABEL_LIMIT. Only invalid text and a cut at LABEL_LIMIT are
    repairs; tidying and a tighter `limit` are the documented shape of that label.
    """
    valid = valid_text(value)
    text = tidy_text(valid) if tidy else valid
    cut = text[: min(limit, LABEL_LIMIT)]
    return cut.rstrip() if tidy else cut, valid != value or len(text) > LABEL_LIMIT


def check_count(value: float) -> str | None:
    """The data issue that keeps `value` from being exported as a count, else None."""
    if not math.isfinite(value):
        return "not_finite"
    if value < 0:
        return "negative"
    if value > MAX_COUNT:
        return "out_of_range"
    return None


class Fields:
    def __init__(self, issues: DataIssues) -> None:
        self.issues = issues

    def label(self, data: dict[str, Any], key: str, path: str | None = None) -> str:
        """A non-empty string for a label value (repaired if need be), else `unknown`."""
        value = data.get(key)
        if isinstance(value, str) and value:
            return self.label_text(value, path or key)
        self.issues.report("null" if value is None else "bad_type", path or key)
        return "unknown"

    def label_text(
        self, value: str, path: str, limit: int = LABEL_LIMIT, *, tidy: bool = False
    ) -> str:
        """`value` made a label value by `repair_label`; a change is reported as
        `repaired_label`."""
        repaired, changed = repair_label(value, limit, tidy=tidy)
        if changed:
            self.issues.report("repaired_label", path, f"{len(value)} characters")
        return repaired

    def count(self, data: dict[str, Any], key: str, path: str | None = None) -> float | None:
        """A count (numeric strings accepted): finite, 0 <= count <= MAX_COUNT, else None."""
        value = data.get(key)
        if isinstance(value, bool) or value is None:
            self.issues.report("null" if value is None else "bad_type", path or key)
            return None
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            self.issues.report("bad_number", path or key, _short(value))
            return None
        issue = check_count(number)
        if issue is not None:
            self.issues.report(issue, path or key, _short(value))
            return None
        return number

    def object(
        self,
        data: dict[str, Any],
        key: str,
        null_expected: bool = False,
        path: str | None = None,
    ) -> dict[str, Any] | None:
        """A nested object, else None (a documented null is not an issue)."""
        value = data.get(key)
        if isinstance(value, dict):
            return value
        if value is None and null_expected:
            return None
        self.issues.report("null" if value is None else "bad_type", path or key)
        return None

    def timestamp(self, data: dict[str, Any], key: str, path: str | None = None) -> float | None:
        """Seconds since the epoch from an ISO 8601 string between 2000 and 2100, else None."""
        moment = self.moment(data, key, path)
        return None if moment is None else moment.timestamp()

    def moment(self, data: dict[str, Any], key: str, path: str | None = None) -> datetime | None:
        """An aware UTC datetime from an ISO 8601 string between 2000 and 2100, else None."""
        value = data.get(key)
        if value is None:
            self.issues.report("null", path or key)
            return None
        try:
            return parse_timestamp(str(value))
        except OutOfRangeError:
            self.issues.report("out_of_range", path or key, _short(value))
        except ValueError:
            self.issues.report("bad_timestamp", path or key, _short(value))
        return None


def _short(value: object) -> str:
    """A bounded repr of an odd value for the log."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
