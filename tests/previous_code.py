"""Import modules as they were at an earlier commit, beside the current ones (equivalence tests).

The modules' source is taken from the repository's history with ``git show``, their imports of
each other rewritten to a package of their own, and imported from a temporary folder. A clone
without that commit (a shallow one) skips the test, saying why.

Examples
--------
>>> "previous_x.otlp" in _rewritten("from aiscale.loaders.otlp import read", "previous_x", ["otlp"])
True
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def _rewritten(text: str, package: str, names) -> str:
    return re.sub(r"\baiscale\.(loaders|store)\.(" + "|".join(names) + r")\b", package + r".\2", text)


def import_previous(root: Path, package: str, commit: str, sources: dict[str, str],
                    load: tuple[str, ...]) -> dict[str, ModuleType]:
    """Modules ``load`` of ``sources`` (name -> path in the repository) as they were at ``commit``.

    They are written to ``root/package`` and import each other there; the current modules of
    the same names are left as they are.
    """
    folder = root / package
    folder.mkdir()
    (folder / "__init__.py").write_text(f'"""aiscale\'s {", ".join(load)} at {commit}."""\n')
    for name, source in sources.items():
        shown = subprocess.run(["git", "-C", str(REPO), "show", f"{commit}:{source}"],
                               capture_output=True, text=True)
        if shown.returncode:
            # A shallow clone has no earlier commit to compare with; the modules' own tests
            # still run there. Every full clone (and this repository) runs the comparison.
            pytest.skip(f"needs the repository's git history (commit {commit}): {shown.stderr.strip()}")
        (folder / f"{name}.py").write_text(_rewritten(shown.stdout, package, sources))
    sys.path.insert(0, str(root))
    try:
        return {name: importlib.import_module(f"{package}.{name}") for name in load}
    finally:
        sys.path.remove(str(root))
