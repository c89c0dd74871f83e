"""Conventions of the test suite itself, which nothing else would notice breaking."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
# Skipping by hand hides a missing tool in CI, where every test must run.
_DIRECT_SKIP = re.compile(r"pytest\.skip\(|\bskipif\b|importorskip|mark\.skip\b|mark\.xfail\b")


def test_every_skip_goes_through_the_shared_helper():
    """tests/support/helpers.py `missing()` (and require_*) skip locally but fail under CI=true."""
    offenders = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(TESTS.rglob("*.py"))
        if path.name not in {"helpers.py", Path(__file__).name}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _DIRECT_SKIP.search(line)
    ]
    assert not offenders, "skip with tests.support.helpers.missing()/require_*:\n" + "\n".join(
        offenders
    )
