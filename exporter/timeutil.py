"""Parsing of the timestamps Citrix Cloud returns.

Citrix writes .NET round-trip timestamps with seven fractional digits
(`2021-12-19T02:56:22.0215469Z`); `datetime.fromisoformat` reads them, dropping the digit past
the microsecond. It also reads forms Citrix never writes (a bare date, a week date, the basic
format without dashes), so a value must first have the one shape accepted here: date, hours and
minutes, optional seconds and fraction, optional `Z` (either case) or offset. Naive means UTC.

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
    text = value.strip()
    if not _ISO.match(text):
        raise ValueError(f"not an ISO 8601 timestamp: {value[:64]!r}")
    if text[-1] in "zZ":  # fromisoformat reads "Z" but not "z"
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
        parsed = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
        raise OutOfRangeError(f"timestamp out of range: {value[:64]!r}") from None
    if not EARLIEST <= parsed < LATEST:
        raise OutOfRangeError(f"timestamp out of range: {value[:64]!r}")
    return parsed
