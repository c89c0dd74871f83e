"""Parsing of the timestamps Citrix Cloud returns.

Citrix writes .NET round-trip timestamps with seven fractional digits
(`2021-12-19T02:56:22.0215469Z`), which `datetime.fromisoformat` rejects before Python 3.11
and which other parsers silently misread; this module trims them to microseconds.

Only times between 2000-01-01 and 2100-01-01 are accepted: .NET's `DateTime.MinValue`
(`0001-01-01T00:00:00`) stands for "never" in some answers, and an expiry in year 1 or 9999
exported as a `_timestamp_seconds` value would fire "expires soon" alerts or hide real ones.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import TypeVar

_ISO = re.compile(
    r"^(?P<base>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)"
    r"(?:\.(?P<frac>\d+))?"
    r"(?P<tz>Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)

Day = TypeVar("Day", bound=date)


def add_months(moment: Day, months: int) -> Day:
    """`moment` moved by whole calendar months (negative: back), day and time kept.

    Licence figures are monthly, so callers pass the first of a month, which every month has;
    another day may not exist in the target month (ValueError).
    """
    index = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=index // 12, month=index % 12 + 1)


class OutOfRangeError(ValueError):
    """A well-formed timestamp outside EARLIEST..LATEST."""


def parse_timestamp(value: str) -> datetime:
    """Parse an ISO 8601 timestamp with any number of fractional digits; naive means UTC.

    Raises ValueError for anything else, OutOfRangeError (a ValueError) for a time outside
    EARLIEST..LATEST.
    """
    match = _ISO.match(value.strip())
    if not match:
        raise ValueError(f"not an ISO 8601 timestamp: {value[:64]!r}")
    frac = (match["frac"] or "")[:6].ljust(6, "0")
    tz = match["tz"] or "Z"
    tz = "+00:00" if tz.upper() == "Z" else tz
    if len(tz) == 5:
        tz = f"{tz[:3]}:{tz[3:]}"
    try:
        parsed = datetime.fromisoformat(f"{match['base']}.{frac}{tz}").astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
        raise OutOfRangeError(f"timestamp out of range: {value[:64]!r}") from None
    if not EARLIEST <= parsed < LATEST:
        raise OutOfRangeError(f"timestamp out of range: {value[:64]!r}")
    return parsed


def to_epoch(value: str) -> float:
    """Seconds since the epoch, the unit of every `_timestamp_seconds` metric."""
    return parse_timestamp(value).timestamp()
