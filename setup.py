"""Build hook: write the git commit into the built package, for citrix_exporter_build_info.

Everything else about the package is in pyproject.toml. See exporter/build.py for where the
commit comes from (CITRIX_EXPORTER_REVISION, else `git rev-parse HEAD` here, else `unknown`).
"""

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SOURCE_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(SOURCE_DIR))  # exporter.build uses only the standard library

from exporter.build import REVISION_FILE, source_revision  # noqa: E402


class BuildPyWithRevision(build_py):
    """build_py that also writes exporter/_revision.txt into the build."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "exporter" / REVISION_FILE
        target.write_text(source_revision(SOURCE_DIR) + "\n")


setup(cmdclass={"build_py": BuildPyWithRevision})
