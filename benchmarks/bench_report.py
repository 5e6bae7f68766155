"""Time the overview report on 100k simulated traces: kernel start, analysis, export.

Usage::

    .venv/bin/python benchmarks/bench_report.py [--traces 100000] [--seed 11]

Simulates the traces (canonical Parquet, under benchmarks/out/, reused when present), loads
them into a store, then times: a papermill run of a one-cell notebook (kernel start and
imports), the overview notebook's execution minus that floor (the analyses), and the
nbconvert export, and each section's time from the report's progress lines. Prints a Markdown
table and puts it on top of benchmarks/RESULTS-report.md, keeping every earlier run there.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat

import aiscale
from aiscale.report import render as report
from aiscale.sim.simulate import simulate_to

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import with_earlier  # noqa: E402 - the results file keeps every earlier run, as make bench's

OUT = Path(__file__).resolve().parent / "out"


def _timed(fn, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - started, value


class _Tee(io.StringIO):
    """Echo the report's progress lines to stderr and keep them for the table."""

    def write(self, text: str) -> int:
        sys.stderr.write(text)
        return super().write(text)


def section_times(progress: str) -> list[tuple[str, float]]:
    """(section, seconds) from the report's progress lines, summed per section."""
    times: dict[str, float] = {}
    for label, seconds in re.findall(r"^  (.+?)\s+([0-9.]+) s", progress, flags=re.MULTILINE):
        times[label] = times.get(label, 0.0) + float(seconds)
    return list(times.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    data = OUT / f"report-{args.traces}"
    if not data.exists():
        simulate_to(data, args.traces, seed=args.seed, format="parquet")
    store_dir = OUT / f"report-{args.traces}.store"
    load_s, store = _timed(aiscale.load, [data], store=store_dir)
    n_spans = int(store.sql("SELECT count(*) FROM spans").iloc[0, 0])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        floor = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                  "display_name": "Python 3"}})
        floor.cells = [nbformat.v4.new_code_cell("import aiscale")]
        nbformat.write(floor, tmp / "floor.ipynb")
        kernel_s, _ = _timed(report._execute, tmp / "floor.ipynb", tmp / "floor-out.ipynb", {}, tmp)
        source = report.available_notebooks()["overview"]
        progress = _Tee()
        execute_s, _ = _timed(report._execute, source, tmp / "overview.ipynb",
                              {"store": str(store_dir.resolve())}, tmp, progress)
        export_s, body = _timed(report._export_html, tmp / "overview.ipynb", False)
    rows = [("traces", f"{args.traces:,}"), ("spans", f"{n_spans:,}"),
            ("load into the store (s)", f"{load_s:.1f}"),
            ("kernel start + import aiscale (s)", f"{kernel_s:.1f}"),
            ("analyses: overview execution minus kernel start (s)", f"{execute_s - kernel_s:.1f}"),
            ("export to HTML (s)", f"{export_s:.1f}"),
            ("report total (s)", f"{execute_s + export_s:.1f}"),
            ("HTML size (KB)", f"{len(body.encode()) / 1024:.0f}")]
    rows += [(f"section: {label}", f"{seconds:.1f}") for label, seconds in section_times(progress.getvalue())]
    table = "| measure | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)
    print(table)
    results = Path(__file__).resolve().parent / "RESULTS-report.md"
    title = f"# Overview report on {args.traces:,} simulated traces"
    results.write_text(with_earlier(f"{title}\n\n{table}\n", results, f"{time.strftime('%Y-%m-%d')}, commit {_commit()}",
                                    title=title, command=f"`bench_report.py --traces {args.traces}`"))


def _commit() -> str:
    """The checked-out commit (short), or "unknown" outside a repository."""
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    main()
