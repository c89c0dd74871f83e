"""One exposition document kept current member by member, rejoined only where it changed.

`blocks.join` builds a document from every result's blocks at once; at thousands of customers
that is tens of thousands of blocks walked in Python at every change. Here the document is
kept per family: each family holds its members' samples in member order and its joined bytes,
so an update rejoins only the families whose bytes changed (one C-level `bytes.join` each),
and a scrape with nothing changed reuses every family's bytes. The parts are the same bytes,
in the same order, as `blocks.join` of the head and then the members in sorted order: each
family once, under the first header seen, families in order of first appearance.

A new member, a member gone, or a member whose families differ changes the document's shape:
then the families are rebuilt, in slices that give the event loop a turn between them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable, Sequence
from typing import Any

from .blocks import Block

SLICE_SECONDS = 0.002  # rebuilding between two yields to the event loop
_HEAD: Hashable = object()  # the member key of the head blocks, always first

Samples = tuple[bytes, bytes]  # (the member's header of the family, its sample lines)


class Document:
    """The blocks of many members (and a head before them) as one document's parts."""

    def __init__(self, head: Sequence[Block] = ()) -> None:
        self._head = tuple(head)
        self._members: dict[Any, tuple[Block, ...]] = {}
        self._families: dict[bytes, dict[Hashable, Samples]] | None = None  # None: rebuild
        self._joined: dict[bytes, bytes] = {}

    def update(self, member: Hashable, blocks: Sequence[Block]) -> None:
        """Set `member`'s blocks; only the families whose samples changed are joined again."""
        new = tuple(blocks)
        old = self._members.get(member)
        if old == new:
            return
        self._members[member] = new
        if self._families is None:
            return
        keys = [block[0] for block in new]
        if old is None or keys != [block[0] for block in old] or len(set(keys)) != len(keys):
            self._families = None  # a new member or new families: the shape changed
            return
        for before, after in zip(old, new, strict=True):
            if before != after:
                self._families[after[0]][member] = (after[1], after[2])
                self._joined.pop(after[0], None)

    def blocks(self) -> list[tuple[Block, ...]]:
        """The head, then every member's blocks in member order: what `parts` joins."""
        return [self._head] + [self._members[m] for m in sorted(self._members)]

    def remove(self, member: Hashable) -> None:
        if self._members.pop(member, None) is not None:
            self._families = None

    async def parts(self) -> list[bytes]:
        """The document's bytes, one part per family, in order."""
        families = self._families
        if families is None:
            families = await self._rebuild()
        parts = []
        for key, samples in families.items():
            joined = self._joined.get(key)
            if joined is None:
                header = next(iter(samples.values()))[0]
                joined = b"".join([header, *(lines for _, lines in samples.values())])
                self._joined[key] = joined
            parts.append(joined)
        return parts

    async def _rebuild(self) -> dict[bytes, dict[Hashable, Samples]]:
        """Every family's members in order, sliced; updates wait (the caller holds a lock)."""
        families: dict[bytes, dict[Hashable, Samples]] = {}
        deadline = time.perf_counter() + SLICE_SECONDS
        members = [(_HEAD, self._head)] + [(m, self._members[m]) for m in sorted(self._members)]
        for index, (member, blocks) in enumerate(members):
            for key, header, lines in blocks:
                samples = families.setdefault(key, {})
                seen = samples.get(member)
                samples[member] = (header, lines) if seen is None else (seen[0], seen[1] + lines)
            if index % 64 == 0 and time.perf_counter() > deadline:
                await asyncio.sleep(0)
                deadline = time.perf_counter() + SLICE_SECONDS
        self._families = families
        self._joined.clear()
        return families
