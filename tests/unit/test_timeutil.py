"""The timestamp shapes `timeutil.parse_timestamp` accepts and rejects, pinned one by one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exporter.timeutil import OutOfRangeError, parse_timestamp

MOMENT = datetime(2021, 12, 19, 2, 56, 22, 21546, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-12-19T02:56:22.0215469Z", MOMENT),  # .NET's seven digits: the seventh dropped
        ("2021-12-19T02:56:22.0215469999999z", MOMENT),  # any length, lower-case z
        (" 2021-12-19T02:56:22.021546 ", MOMENT),  # naive means UTC; blanks around are trimmed
        ("2021-12-19t02:56:22.021546+00:00", MOMENT),
        ("2021-12-19T03:56:22.021546+0100", MOMENT),  # an offset with or without its colon
        ("2021-12-19T01:26:22.021546-01:30", MOMENT),
        ("2021-12-19T02:56Z", datetime(2021, 12, 19, 2, 56, tzinfo=UTC)),  # no seconds
        ("2021-12-19T02:56:22.5", datetime(2021, 12, 19, 2, 56, 22, 500000, tzinfo=UTC)),
        ("2000-01-01T00:00:00Z", datetime(2000, 1, 1, tzinfo=UTC)),  # the earliest accepted
    ],
)
def test_accepted(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "2021-12-19",  # a bare date
        "2021-W50-7T02:56:22Z",  # a week date
        "20211219T025622Z",  # the basic format
        "2021-12-19 02:56:22Z",  # a space for the T
        "2021-12-19T02Z",  # hours only
        "2021-12-19T02:56:22.Z",  # a point without digits
        "2021-12-19T02:56:22+01",  # an offset without minutes
        "2021-12-19T02:56:22Z+01:00",
        "2021-12-19T02:56:22.1 Z",
        "2021-12-19T02:56:22.\u0661\u0662\u0663Z",  # digits of another script (Arabic-Indic)
        "2021-13-01T00:00:00Z",  # no such month
        "2021-12-19T24:00:00Z",
        "2021-12-19T02:56:22+24:00",  # no such offset
        "",
    ],
)
def test_rejected(text: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_timestamp(text)
    assert raised.type is ValueError  # a malformed value, not one out of range


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00",  # .NET's DateTime.MinValue, "never"
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC: cannot even be represented
        "9999-12-31T23:59:59-01:00",
        "1999-12-31T23:59:59.9999999Z",
        "2100-01-01T00:00:00Z",
        "2099-12-31T23:00:00-01:00",
    ],
)
def test_out_of_range(text: str) -> None:
    with pytest.raises(OutOfRangeError):
        parse_timestamp(text)
