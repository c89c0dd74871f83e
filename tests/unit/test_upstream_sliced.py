"""sliced.py: a large body parsed in slices gives the same result and errors as parse_json,
and gives the event loop turns while it parses."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.upstream.body import parse_json
from exporter.upstream.errors import UpstreamError
from exporter.upstream.sliced import SLICED_ABOVE, parse_json_yielding


def nested(levels: int, inside: bytes = b"") -> bytes:
    return b"[" * levels + inside + b"]" * levels


def outcome(parse: Any) -> tuple[str, Any]:
    """("ok", value) or ("error", message), so both parsers compare in one assertion."""
    try:
        return "ok", parse()
    except UpstreamError as err:
        return "error", (str(err), err.status, err.transaction_id)


async def both(body: bytes) -> tuple[tuple[str, Any], tuple[str, Any]]:
    """parse_json's outcome and the sliced one's, slicing forced (every item a slice)."""
    sync = outcome(lambda: parse_json(body, "ep", 200, "tx"))
    try:
        sliced = (
            "ok",
            await parse_json_yielding(body, "ep", 200, "tx", sliced_above=0, slice_seconds=0),
        )
    except UpstreamError as err:
        sliced = "error", (str(err), err.status, err.transaction_id)
    return sync, sliced


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values, indent=st.sampled_from([None, 0, 2]), ascii=st.booleans())
def test_any_document_parses_as_parse_json_parses_it(value: Any, indent: int | None, ascii: bool):
    body = json.dumps(value, indent=indent, ensure_ascii=ascii).encode()
    sync, sliced = asyncio.run(both(body))
    assert sliced == sync == ("ok", json.loads(body))


@pytest.mark.parametrize(
    "body",
    [
        b' {"value" : [ {"a": 1} , {"b": [1, {"c": null}]} ] , "@odata.nextLink": "x"} ',
        b"{}", b"[]", b'"text"', b"3", b"NaN", b'{"a": 1, "a": 2}',
        b"\xef\xbb\xbf{\"a\": 1}",  # UTF-8 BOM
        '{"é": ["ü"]}'.encode("utf-16"),  # json.loads detects UTF-16 too
        b'{"a": "\xfe"}',  # invalid UTF-8: repaired
        b'{"a": "\xed\xa0\x80"}',  # a lone surrogate in UTF-8: json.loads passes it
        '{"a": 1}'.encode("utf-16-le") + b"\x00",  # UTF-16 cut short: repaired as UTF-8
        b"", b"[1,]", b'{"a": 1,}', b'{"a" 1}', b"[1 2]", b"[1", b'{"a": 1} x', b"{1: 2}",
        b'{"a": tru}', nested(64), nested(65), b'{"v": [' + nested(62) + b"]}",
        b'{"v": [' + nested(63) + b"]}", nested(100_000),
    ],
    ids=lambda body: repr(body[:30]),
)  # fmt: skip
async def test_edge_documents_parse_or_fail_as_parse_json_does(body: bytes):
    sync, sliced = await both(body)
    assert sliced == sync


async def test_invalid_utf8_is_repaired_and_reported_once():
    repairs: list[int] = []
    body = b'{"value": ["\xfe", "ok"]}'
    data = await parse_json_yielding(
        body, "ep", on_repair=lambda: repairs.append(1), sliced_above=0
    )
    assert data == {"value": ["\ufffd", "ok"]}
    assert repairs == [1]


async def test_a_small_body_is_parsed_in_one_step_a_large_one_gives_the_loop_turns():
    turns = 0

    async def ticker() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    rows = [
        {"SessionKey": f"{n:036d}", "ConnectionState": 5, "Machine": {"Id": n}} for n in range(3000)
    ]
    large = json.dumps({"value": rows}).encode()
    small = json.dumps({"value": rows[:10]}).encode()
    assert len(small) <= SLICED_ABOVE < len(large)
    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        before = turns
        assert await parse_json_yielding(small, "ep", slice_seconds=0) == json.loads(small)
        assert turns == before
        assert await parse_json_yielding(large, "ep", slice_seconds=0) == json.loads(large)
        assert turns - before >= len(rows)  # a turn after every row, at least
    finally:
        task.cancel()
