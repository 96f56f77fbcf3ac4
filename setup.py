"""Build hook: a wheel carries compiled message catalogs (.mo), which git does not.

Everything else about the package is in pyproject.toml. `make setup` compiles the catalogs
for a working tree (an editable install reads them from there); this hook does the same
for `pip wheel .` and `pip install .` (the Docker image), so no build ships without them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithCatalogs(build_py):
    """build_py that first compiles every .po into its .mo (package data)."""

    def run(self) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from qualmon.l10n.compile import compile_catalogs

        compile_catalogs()
        super().run()


setup(cmdclass={"build_py": BuildWithCatalogs})
