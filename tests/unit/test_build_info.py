"""citrix_exporter_build_info: version, revision (git commit) and Python version."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from exporter import __version__
from exporter.build import UNKNOWN, checked, git_revision, revision, source_revision
from exporter.metrics import build_info
from tests.support.helpers import value

ROOT = Path(__file__).resolve().parents[2]


def test_build_info_labels() -> None:
    registry = CollectorRegistry()
    registry.register(build_info())
    labels = {
        "version": __version__,
        "revision": revision(),  # looked up once per process
        "python_version": platform.python_version(),
    }
    assert value(generate_latest(registry).decode(), "citrix_exporter_build_info", **labels) == 1


def test_a_checkout_reports_its_head() -> None:
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    assert git_revision(ROOT) == (head or UNKNOWN)  # a copy without .git reports unknown


def test_the_build_argument_wins_over_git() -> None:
    assert source_revision(ROOT, {"CITRIX_EXPORTER_REVISION": "ABCDEF1"}) == "abcdef1"
    assert source_revision(ROOT, {"CITRIX_EXPORTER_REVISION": "not a commit"}) == UNKNOWN


def test_without_git_the_revision_is_unknown(tmp_path: Path) -> None:
    assert git_revision(tmp_path) == UNKNOWN
    assert source_revision(tmp_path, {}) == UNKNOWN


def test_only_commit_ids_reach_the_label() -> None:
    assert checked("0" * 40) == "0" * 40
    for junk in ("", "abc", 'x"}\n', "g" * 40):
        assert checked(junk) == UNKNOWN
