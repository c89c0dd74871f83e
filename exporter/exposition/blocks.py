"""One result's exposition text cut into per-family blocks; many results joined as one document.

A (customer, collector) result is rendered once, when it is published, by prometheus_client
itself (so every escaping and number-formatting rule is exactly the library's), in both formats
Prometheus negotiates. The text is cut at each family's header, so a scrape only joins bytes.
Several customers report the same families and a document may carry a family's HELP/TYPE only
once, so the join puts every result's samples of a family under the first header seen for it
(one family per name and type, as prometheus_client's registry would have it).

Cutting by lines is safe: both formats escape newlines in HELP text and label values, so a raw
newline only ever ends a line, and only header lines start with '#'.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from prometheus_client import generate_latest
from prometheus_client.core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import Collector

EOF_LINE = b"# EOF\n"  # ends an OpenMetrics document, and only the document

# A family's header: HELP, then TYPE (its identity in a document), then UNIT in OpenMetrics.
_HEADER = re.compile(rb"^# HELP .*\n(# TYPE .*\n)(?:# UNIT .*\n)?", re.MULTILINE)


class Format(enum.Enum):
    TEXT = "text"
    OPENMETRICS = "openmetrics"


# One family of one result, as rendered: (key, header, samples), where key is the
# "# TYPE name type" line (a document has one header per key), header its HELP/TYPE(/UNIT)
# lines and samples its sample lines. A plain tuple of bytes on purpose: the garbage collector
# stops tracking exact tuples of untracked items, and at 1,000 customers there are tens of
# thousands of blocks that every full collection would otherwise walk on the event loop.
Block = tuple[bytes, bytes, bytes]


@dataclass(frozen=True, slots=True)
class Rendered:
    """One result in both formats."""

    text: tuple[Block, ...]
    openmetrics: tuple[Block, ...]

    def blocks(self, fmt: Format) -> tuple[Block, ...]:
        return self.openmetrics if fmt is Format.OPENMETRICS else self.text


class _Families(Collector):
    """A throwaway registry collector that yields one result's families."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def split(document: bytes) -> tuple[Block, ...]:
    """Cut a prometheus_client document (either format) into its families' blocks."""
    if document.endswith(EOF_LINE):
        document = document[: -len(EOF_LINE)]
    headers = list(_HEADER.finditer(document))
    if not headers:
        if document:
            raise ValueError("exposition text without a family's HELP line")
        return ()
    if headers[0].start():
        raise ValueError("exposition text does not start with a family's HELP line")
    ends = [match.start() for match in headers[1:]] + [len(document)]
    return tuple(
        (match.group(1), match.group(0), document[match.end() : end])
        for match, end in zip(headers, ends, strict=True)
    )


def generate(source: Collector, fmt: Format) -> bytes:
    """prometheus_client's document of `source` in `fmt` (OpenMetrics ends in `# EOF`)."""
    if fmt is Format.OPENMETRICS:
        document: bytes = generate_openmetrics(source)  # type: ignore[no-untyped-call]
        return document
    return generate_latest(source)


def render_format(families: Sequence[Metric], fmt: Format) -> tuple[Block, ...]:
    """Render `families` in one format, cut into blocks."""
    return split(generate(_Families(families), fmt))


def render(families: Sequence[Metric]) -> Rendered:
    """Render one result in both formats; raises whatever prometheus_client raises on it."""
    return Rendered(
        render_format(families, Format.TEXT), render_format(families, Format.OPENMETRICS)
    )


def join(results: Iterable[Sequence[Block]]) -> bytes:
    """One document body (no `# EOF`) from many results' blocks, in the order given: each
    family once, under the first header seen, with the samples of every result that has it."""
    headers: dict[bytes, bytes] = {}
    samples: dict[bytes, list[bytes]] = {}
    for blocks in results:
        for key, header, sample_lines in blocks:
            parts = samples.get(key)
            if parts is None:
                headers[key] = header
                parts = samples[key] = []
            parts.append(sample_lines)
    chunks: list[bytes] = []
    for key, header in headers.items():
        chunks.append(header)
        chunks.extend(samples[key])
    return b"".join(chunks)
