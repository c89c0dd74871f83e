"""Parsing of the timestamps Citrix Cloud returns.

Citrix writes .NET round-trip timestamps with seven fractional digits
(`2021-12-19T02:56:22.0215469Z`), which `datetime.fromisoformat` rejects before Python 3.11
and which other parsers silently misread; this module trims them to microseconds.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_ISO = re.compile(
    r"^(?P<base>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)"
    r"(?:\.(?P<frac>\d+))?"
    r"(?P<tz>Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)


def parse_timestamp(value: str) -> datetime:
    """Parse an ISO 8601 timestamp with any number of fractional digits; naive means UTC."""
    match = _ISO.match(value.strip())
    if not match:
        raise ValueError(f"not an ISO 8601 timestamp: {value!r}")
    frac = (match["frac"] or "")[:6].ljust(6, "0")
    tz = match["tz"] or "Z"
    tz = "+00:00" if tz.upper() == "Z" else tz
    if len(tz) == 5:
        tz = f"{tz[:3]}:{tz[3:]}"
    parsed = datetime.fromisoformat(f"{match['base']}.{frac}{tz}")
    return parsed.astimezone(UTC)


def to_epoch(value: str) -> float:
    """Seconds since the epoch, the unit of every `_timestamp_seconds` metric."""
    return parse_timestamp(value).timestamp()
