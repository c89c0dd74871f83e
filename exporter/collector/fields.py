"""Tolerant access to fields of upstream JSON: odd values are reported, never raised.

Citrix responses sometimes carry nulls, numbers as strings or timestamps with seven fractional
digits. Every collector reads fields through this class so that each oddity is handled the
same way: skipped (or mapped to `unknown`), counted and logged once via DataIssues.
"""

from __future__ import annotations

from typing import Any

from ..metrics import DataIssues
from ..timeutil import parse_timestamp


class Fields:
    def __init__(self, issues: DataIssues) -> None:
        self.issues = issues

    def label(self, data: dict[str, Any], key: str, path: str | None = None) -> str:
        """A non-empty string for a label value, else `unknown`."""
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
        self.issues.report("null" if value is None else "bad_type", path or key)
        return "unknown"

    def number(self, data: dict[str, Any], key: str, path: str | None = None) -> float | None:
        """A number (numeric strings accepted), else None."""
        value = data.get(key)
        if isinstance(value, bool) or value is None:
            self.issues.report("null" if value is None else "bad_type", path or key)
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            self.issues.report("bad_number", path or key, repr(value))
            return None

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
        """Seconds since the epoch from an ISO 8601 string, else None."""
        value = data.get(key)
        if value is None:
            self.issues.report("null", path or key)
            return None
        try:
            return parse_timestamp(str(value)).timestamp()
        except ValueError:
            self.issues.report("bad_timestamp", path or key, repr(value))
            return None
