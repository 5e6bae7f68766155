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


def test_a_bench_run_goes_on_top_of_the_results_file_and_keeps_what_was_there(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH.parent))  # run.py imports its sibling report.py
    import run as bench

    results = tmp_path / "RESULTS.md"
    results.write_text("# Scale benchmark\n\n`make bench` (old machine)\n\n| a | b |\n\n## A note by hand\n\ntext\n")
    first = bench.with_earlier("# Scale benchmark\n\n`make bench` (x)\n\n| new | table |\n", results, "2026-12-02, commit abc")
    results.write_text(first)
    second = bench.with_earlier("# Scale benchmark\n\n| newer |\n", results, "2026-12-03, commit def")
    headings = [line for line in second.splitlines() if line.startswith("#")]
    assert headings == ["# Scale benchmark", "## `make bench`, 2026-12-03, commit def",
                        "## `make bench`, 2026-12-02, commit abc", "## An earlier `make bench`",
                        "## A note by hand"]
    for kept in ("| newer |", "| new | table |", "`make bench` (old machine)", "text"):
        assert second.count(kept) == 1
    assert bench.with_earlier("# Scale benchmark\n\nonly\n", tmp_path / "new.md", "d") == \
        "# Scale benchmark\n\n## `make bench`, d\n\nonly\n"
