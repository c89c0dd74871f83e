"""The incrementally kept document says exactly what joining everything again would say.

`document.Document` rejoins only the families that changed; whatever the sequence of updates
(new members, changed samples, families appearing and going, members removed, a family twice
in one member), its parts must be the bytes `blocks.join` gives for the head and then the
members in sorted order. The change log must name exactly the customers touched after a cursor.
"""

from __future__ import annotations

import random

from exporter.exposition.blocks import Block, join
from exporter.exposition.changes import ChangeLog
from exporter.exposition.document import Document

FAMILIES = [b"# TYPE a gauge\n", b"# TYPE b counter\n", b"# TYPE c gauge\n"]


def blocks_of(rng: random.Random, member: str) -> tuple[Block, ...]:
    keys = rng.sample(FAMILIES, rng.randint(0, 3))
    if keys and rng.random() < 0.1:
        keys.append(keys[0])  # the same family twice in one result
    return tuple(
        (key, b"# HELP " + member.encode() + b"\n" + key, f"{member} {rng.random()}\n".encode())
        for key in keys
    )


async def test_the_parts_are_what_a_whole_join_gives_after_any_updates() -> None:
    rng = random.Random(12)
    head = tuple((key, b"# HELP head\n" + key, b"") for key in FAMILIES[1:])
    document = Document(head)
    members: dict[str, tuple[Block, ...]] = {}
    for _ in range(400):
        member = f"c{rng.randint(0, 12):02d}"
        if member in members and rng.random() < 0.15:
            document.remove(member)
            del members[member]
        else:
            keep = member in members and rng.random() < 0.5
            blocks = members[member] if keep else blocks_of(rng, member)
            if keep:  # same families, new samples: the in-place path
                blocks = tuple((k, h, s + b"x 1\n") for k, h, s in blocks)
            document.update(member, blocks)
            members[member] = blocks
        if rng.random() < 0.3:
            expected = join([head, *(members[m] for m in sorted(members))])
            assert b"".join(await document.parts()) == expected


async def test_an_unchanged_document_reuses_its_parts() -> None:
    document = Document()
    document.update("acme", ((FAMILIES[0], b"# HELP a\n" + FAMILIES[0], b"a 1\n"),))
    first = await document.parts()
    document.update("acme", ((FAMILIES[0], b"# HELP a\n" + FAMILIES[0], b"a 1\n"),))
    assert all(x is y for x, y in zip(await document.parts(), first, strict=True))


def test_the_change_log_names_the_customers_touched_after_a_cursor() -> None:
    log = ChangeLog()
    assert log.since(0) == (0, [])
    for customer in ("acme", "globex", "acme", "initech"):
        log.touch(customer)
    cursor, changed = log.since(0)
    assert (cursor, sorted(changed)) == (4, ["acme", "globex", "initech"])
    assert log.since(cursor) == (4, [])
    log.touch("globex")
    assert log.since(cursor) == (5, ["globex"])
    assert sorted(log.since(2)[1]) == ["acme", "globex", "initech"]  # acme again at 3
