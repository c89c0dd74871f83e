"""Build metadata for `citrix_exporter_build_info`: version, revision (git commit) and Python.

The revision is the commit the package was built from. Installed packages carry it in
`exporter/_revision.txt`, which setup.py's build step writes into the wheel from the environment
variable `CITRIX_EXPORTER_REVISION` (the Dockerfile's `REVISION` build argument) or else from
`git rev-parse HEAD` in the source tree (`pip install .` from a checkout). Run from a checkout
(`python -m exporter`, the tests), the checkout's own HEAD is used. Otherwise: `unknown`.

Only the standard library here: setup.py imports this module in a bare build environment.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from functools import cache
from pathlib import Path

__all__ = ["ENV_REVISION", "REVISION_FILE", "UNKNOWN", "python_version", "revision"]

ENV_REVISION = "CITRIX_EXPORTER_REVISION"
REVISION_FILE = "_revision.txt"
UNKNOWN = "unknown"
_REVISION_RE = re.compile(r"[0-9a-f]{7,64}")
_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def revision() -> str:
    """The commit this code was built from, or `unknown` (looked up once per process)."""
    try:
        packaged = (_PACKAGE_DIR / REVISION_FILE).read_text().strip()
    except OSError:
        packaged = ""
    return checked(packaged) if packaged else git_revision(_PACKAGE_DIR.parent)


def source_revision(source_dir: Path, environ: dict[str, str] | None = None) -> str:
    """What setup.py writes into a build: the environment variable, else the source's HEAD."""
    given = (os.environ if environ is None else environ).get(ENV_REVISION, "").strip()
    return checked(given) if given else git_revision(source_dir)


def git_revision(source_dir: Path) -> str:
    """HEAD of the git checkout at `source_dir` (a worktree's `.git` is a file), or `unknown`."""
    if not (source_dir / ".git").exists():
        return UNKNOWN
    try:
        done = subprocess.run(
            ["git", "-C", str(source_dir), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    return checked(done.stdout.strip()) if done.returncode == 0 else UNKNOWN


def checked(value: str) -> str:
    """A commit id (hex, lower case) or `unknown`: nothing else reaches a label."""
    value = value.lower()
    return value if _REVISION_RE.fullmatch(value) else UNKNOWN


def python_version() -> str:
    return platform.python_version()
