"""`make bench` on a tiny simulated file: every path runs, and the pyarrow floor and aiscale
read the same spans from it (the timings themselves are measured by `make bench`, not here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


def test_bench_runs_every_path_on_a_tiny_file(tmp_path):
    results = tmp_path / "RESULTS.md"
    subprocess.run([sys.executable, str(BENCH), "--sizes", "tiny", "--rounds", "1",
                    "--no-analyses", "--fresh", "--out", str(tmp_path), "--results", str(results)],
                   check=True, capture_output=True, text=True, timeout=600)
    run = json.loads((tmp_path / "results.json").read_text())["runs"][0]
    for name in ("load", "facts", "combined", "pyarrow", "bare", "pandas", "rollup"):
        assert run["steps"][name]["ok"], (name, run["steps"][name])
    assert run["spans"] > 1000 and run["pyarrow_rows"] == run["spans"]
    assert json.loads(run["steps"]["rollup"]["last_line"])["agree"] is True
    text = results.read_text()
    assert "load + facts ÷ pyarrow flatten" in text and "(e) pyarrow flatten" in text
