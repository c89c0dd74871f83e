"""timeutil.add_months: the one month arithmetic of the licensing history and the backfill."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from exporter.collector.licensing import months_back
from exporter.timeutil import add_months


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2026, 1, 1), 1, date(2026, 2, 1)),
        (date(2026, 12, 1), 1, date(2027, 1, 1)),
        (date(2026, 1, 1), -1, date(2025, 12, 1)),
        (date(2026, 3, 1), -11, date(2025, 4, 1)),
        (date(2026, 3, 1), -24, date(2024, 3, 1)),
        (date(2026, 3, 1), 0, date(2026, 3, 1)),
    ],
)
def test_add_months_crosses_years_both_ways(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected


def test_add_months_keeps_day_time_and_zone() -> None:
    moment = datetime(2025, 12, 15, 6, 30, tzinfo=UTC)
    assert add_months(moment, 1) == datetime(2026, 1, 15, 6, 30, tzinfo=UTC)


def test_months_back_is_any_day_of_the_month() -> None:
    last_day = datetime(2026, 3, 31, 23, 59, tzinfo=UTC)  # no 31 February or 30 February
    assert [months_back(last_day, k) for k in (0, 1, 3, 12)] == [
        "2026-03", "2026-02", "2025-12", "2025-03",
    ]  # fmt: skip
