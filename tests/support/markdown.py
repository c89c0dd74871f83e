"""What GitHub makes of the project's Markdown: heading anchors and link targets.

The alert rules link into docs/runbooks.md by anchor, and the docs link to each other by
relative path. GitHub renders neither a broken anchor nor a missing file as an error, so the
tests compute both here the way GitHub does and check that every link lands.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# Where every repository link in the rules and dashboards points (issue 14 may move it).
BLOB_URL = "https://github.com/citrix-cloud-exporter/citrix-cloud-exporter/blob/main"

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_LINK = re.compile(r"\[([^\]]*)\]\(([^()\s]*(?:\([^()\s]*\)[^()\s]*)*)\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(\S+)")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")


def prose_lines(text: str) -> Iterator[str]:
    """The lines outside fenced code blocks (a `# comment` in a shell block is no heading)."""
    fence = ""
    for line in text.splitlines():
        match = _FENCE.match(line)
        if match and (not fence or match.group(1) == fence):
            fence = "" if fence else match.group(1)
            continue
        if not fence:
            yield line


def headings(text: str) -> list[str]:
    """The text of every ATX heading (`## Title`), in order."""
    return [m.group(2) for m in map(_HEADING.match, prose_lines(text)) if m]


def slug(heading: str) -> str:
    """The anchor GitHub gives one heading: the rendered text (link text for links, code
    without its backticks) lower-cased, punctuation dropped, each space a hyphen."""
    rendered = _LINK.sub(r"\1", heading)
    rendered = re.sub(r"<[^>]+>", "", rendered)
    return re.sub(r"[^\w\- ]", "", rendered.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor of a document; a repeated heading gets `-1`, `-2`, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for heading in headings(text):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(text: str) -> list[str]:
    """The target of every inline link and link reference definition outside code."""
    lines = list(prose_lines(text))
    found = [m.group(1) for m in map(_REFERENCE.match, lines) if m]
    prose = _INLINE_CODE.sub("", "\n".join(lines))  # link text may wrap onto the next line
    found.extend(m.group(2) for m in _LINK.finditer(prose))
    return found


def is_external(target: str) -> bool:
    return re.match(r"[a-z][a-z0-9+.-]*:", target, flags=re.IGNORECASE) is not None
