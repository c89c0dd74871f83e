"""Parsing a large JSON body on the event loop in slices, so that no single step holds it long.

`json.loads` of a 32 MiB body (the default `poll.max_response_bytes`) holds the loop for most
of a second, and a worker thread does not help: the C parser holds the GIL for the whole
parse (bench/parse.py: a 1 ms ticker on the loop wakes ~460 ms late). Upstream answers are an
object or array of many small items (OData's `value` rows, licensing's `skus`), so the top
`OPEN_LEVELS` containers are walked here and every item below them is parsed by the C decoder
(`raw_decode`), with the loop given back whenever a slice has run `SLICE_SECONDS`. The text is
decoded in chunks the same way. Each item's nesting is checked against what is left of
`MAX_JSON_DEPTH`, so the result and the errors are those of `body.parse_json`.

Bodies up to `SLICED_ABOVE` bytes are parsed in one go: a 1000-row page of the columns the
Monitor collector selects is 90-180 KB and parses in ~1-2 ms.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import re
import time
from collections.abc import Callable
from typing import Any

from .body import MAX_JSON_DEPTH, TooDeep, json_codec, json_errors, parse_json, too_deep

# Above this size a body is parsed in slices (about 3 ms of parsing at once below it).
SLICED_ABOVE = 256 * 1024
# The longest a slice runs before the loop gets a turn.
SLICE_SECONDS = 0.004
# Containers walked in Python (the body itself and its direct children): below them, items
# go to the C decoder whole. One item larger than a slice is still parsed in one step.
OPEN_LEVELS = 2
# Bytes decoded to text at once.
DECODE_CHUNK = 1024 * 1024

_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")


class _Slices:
    """Gives the loop a turn when the current slice has run its time."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._started = time.perf_counter()

    async def check(self) -> None:
        if time.perf_counter() - self._started >= self._seconds:
            await asyncio.sleep(0)
            self._started = time.perf_counter()


class _Walker:
    """Recursive descent over the top levels of a JSON text; leaves to the C decoder."""

    def __init__(self, text: str, slices: _Slices) -> None:
        self.text = text
        self.pos = 0
        self.slices = slices

    def skip_whitespace(self) -> str:
        """Skip to the next token and return its first character ('' at the end)."""
        match = _WHITESPACE.match(self.text, self.pos)
        assert match is not None  # `*` matches the empty string
        self.pos = match.end()
        return self.text[self.pos : self.pos + 1]

    def fail(self, expected: str) -> ValueError:
        return json.JSONDecodeError(f"Expecting {expected}", self.text, self.pos)

    async def document(self) -> Any:
        value = await self.value(0)
        if self.skip_whitespace():
            raise json.JSONDecodeError("Extra data", self.text, self.pos)
        return value

    async def value(self, depth: int) -> Any:
        first = self.skip_whitespace()
        if depth < OPEN_LEVELS and first == "{":
            return await self.members(depth + 1)
        if depth < OPEN_LEVELS and first == "[":
            return await self.elements(depth + 1)
        start = self.pos
        item, self.pos = _DECODER.raw_decode(self.text, start)
        if (first == "{" or first == "[") and too_deep(
            self.text[start : self.pos].encode(), MAX_JSON_DEPTH - depth
        ):
            raise TooDeep
        await self.slices.check()
        return item

    async def elements(self, depth: int) -> list[Any]:
        self.pos += 1  # "["
        items: list[Any] = []
        if self.skip_whitespace() == "]":
            self.pos += 1
            return items
        while True:
            items.append(await self.value(depth))
            if self.separator("]"):
                return items

    async def members(self, depth: int) -> dict[str, Any]:
        self.pos += 1  # "{"
        members: dict[str, Any] = {}
        if self.skip_whitespace() == "}":
            self.pos += 1
            return members
        while True:
            if self.skip_whitespace() != '"':
                raise self.fail("property name enclosed in double quotes")
            key, self.pos = _DECODER.raw_decode(self.text, self.pos)
            if self.skip_whitespace() != ":":
                raise self.fail("':' delimiter")
            self.pos += 1
            members[key] = await self.value(depth)
            if self.separator("}"):
                return members

    def separator(self, closing: str) -> bool:
        """Past the `,` or `closing` after an item; True at the end of the container."""
        found = self.skip_whitespace()
        if found != "," and found != closing:
            raise self.fail("',' delimiter")
        self.pos += 1
        return found == closing


async def decode_text(body: bytes, slices: _Slices, repair: bool) -> str:
    """`body` as text as `body.json_codec` says, decoded a chunk at a time."""
    encoding, errors = json_codec(body, repair)
    decoder = codecs.getincrementaldecoder(encoding)(errors)
    parts = []
    for start in range(0, len(body), DECODE_CHUNK):
        parts.append(decoder.decode(body[start : start + DECODE_CHUNK]))
        await slices.check()
    parts.append(decoder.decode(b"", final=True))
    return "".join(parts)


async def parse_json_yielding(
    body: bytes,
    what: str,
    status: int | None = None,
    txid: str | None = None,
    on_repair: Callable[[], None] | None = None,
    *,
    sliced_above: int = SLICED_ABOVE,
    slice_seconds: float = SLICE_SECONDS,
) -> Any:
    """What `body.parse_json` returns or raises for `body`; in slices if it is large."""
    if len(body) <= sliced_above:
        return parse_json(body, what, status, txid, on_repair)
    slices = _Slices(slice_seconds)
    with json_errors(what, status, txid):
        try:
            text = await decode_text(body, slices, repair=False)
        except UnicodeDecodeError:
            text = await decode_text(body, slices, repair=True)
            if on_repair is not None:
                on_repair()
        return await _Walker(text, slices).document()
