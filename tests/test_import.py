"""`import aiscale` and the command line's start-up import nothing heavy; every public name resolves.

Behaviour, not timing: the time is measured by `benchmarks/bench_import.py`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import aiscale

HEAVY = ("pandas", "numpy", "scipy", "statsmodels", "ibis", "duckdb", "pyarrow", "matplotlib",
         "seaborn", "papermill", "nbconvert", "genai_prices")
ENV_PATH = str(Path(aiscale.__file__).resolve().parents[1])


def imported_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nimport json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": ENV_PATH, "PATH": "/usr/bin:/bin"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_aiscale_imports_no_heavy_library():
    modules = imported_after("import aiscale")
    assert [m for m in HEAVY if m in modules] == []


def test_the_command_line_parser_imports_no_heavy_library():
    modules = imported_after("from aiscale.cli.main import build_parser\nbuild_parser()")
    assert [m for m in HEAVY if m in modules] == []


def test_every_public_name_resolves_and_is_listed():
    for name in aiscale.__all__:
        assert getattr(aiscale, name) is not None, name
    assert set(aiscale.__all__) <= set(dir(aiscale))
    assert aiscale.TraceStore.__module__ == "aiscale.store.trace_store"


def test_an_unknown_name_is_an_attribute_error():
    try:
        aiscale.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("no AttributeError")
