"""The scale benchmark (`make bench`): aiscale against DuckDB's floor and naive pandas, in one run.

Usage::

    .venv/bin/python benchmarks/run.py [--sizes 1M,10M] [--rounds 3] [--out benchmarks/out] [--no-analyses]

For each size it writes OTLP JSON with the simulator (``aiscale simulate --format otlp``,
~17 spans a trace; kept under ``benchmarks/out/`` and reused), then on the same file, each
step its own process under ``/usr/bin/time -v`` (wall time, CPU time, peak RSS), the steps
interleaved in ``--rounds`` rounds (median reported, so a busy moment on a shared machine
hits every path alike):

(a) ``aiscale load`` into a fresh store, then ``aiscale facts``;
(e) the pyarrow flatten (``pyarrow_flatten.py``): Arrow's JSON reader with an explicit
    schema, flattened with Arrow compute into the same flat span table, written to Parquet:
    the floor the loader is set against (load + facts ≤ 1.5× its time);
(b) DuckDB's bare conversion ``COPY (SELECT * FROM read_json(FILE)) TO ... (FORMAT parquet)``;
(c) the naive pandas path (first round only, not at 10 M; see ``baselines.py``);
(d) the rollup from the store (``store.facts()``) against a hand-written DuckDB query over the
    same Parquet (median of 3, in-process, after the load).

Then 1 M trace facts through the overview analyses (``analyses_at_scale.py``). Prints a
Markdown report and writes it to ``benchmarks/RESULTS.md`` (raw figures in
``benchmarks/out/results.json``; sizes not measured in a run are carried over from it, each
with its own date and commit, unless ``--fresh``).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import report  # benchmarks/report.py

HERE = Path(__file__).resolve().parent
SIZES = {"TINY": (150, 3), "0.1M": (5_950, 2), "1M": (59_500, 1), "10M": (595_000, 10)}  # traces, seed (~17 spans each)
PY = sys.executable


def timed(command: list[str]) -> dict:
    """Run ``command`` under /usr/bin/time -v; wall/cpu seconds, peak RSS (GB), last stdout line."""
    with tempfile.NamedTemporaryFile(suffix=".time") as stats:
        done = subprocess.run(["/usr/bin/time", "-v", "-o", stats.name, *command],
                              capture_output=True, text=True)
        text = Path(stats.name).read_text()
    out = {"ok": done.returncode in (0, 1), "returncode": done.returncode,
           "wall_s": _wall(text), "cpu_s": _field(text, "User time") + _field(text, "System time"),
           "rss_gb": _field(text, "Maximum resident set size") / 1e6,
           "last_line": (done.stdout.strip().splitlines() or [""])[-1]}
    if not out["ok"]:
        out["error"] = done.stderr.strip()[-500:]
        print(f"  failed ({done.returncode}): {out['error']}", file=sys.stderr)
    return out


def _field(text: str, name: str) -> float:
    match = re.search(rf"{re.escape(name)}[^:]*: ([\d.]+)", text)
    return float(match.group(1)) if match else float("nan")


def _wall(text: str) -> float:
    match = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
    if not match:
        return float("nan")
    seconds = 0.0
    for part in match.group(1).split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def generate(size: str, out: Path) -> Path:
    """The OTLP file of one size (written by the simulator once, then reused)."""
    traces, seed = SIZES[size]
    folder = out / f"data-{size.lower()}"
    if not (folder / "truth.json").exists():
        print(f"[{size}] simulating {traces:,} traces into {folder}", file=sys.stderr)
        subprocess.run([PY, "-m", "aiscale.cli", "simulate", "-o", str(folder), "--traces",
                        str(traces), "--seed", str(seed), "--format", "otlp"], check=True)
    return folder / "otlp-traces.jsonl"


def _commands(size: str, path: Path, store: Path, out: Path) -> dict[str, list[str]]:
    low = size.lower()
    return {"load": [PY, "-m", "aiscale.cli", "load", str(path), "--store", str(store)],
            "facts": [PY, "-m", "aiscale.cli", "facts", "--store", str(store),
                      "-o", str(out / f"facts-{low}.parquet")],
            "pyarrow": [PY, str(HERE / "pyarrow_flatten.py"), str(path), str(out / f"pa-{low}.parquet")],
            "bare": [PY, str(HERE / "baselines.py"), "bare", str(path), str(out / f"bare-{low}.parquet")],
            "pandas": [PY, str(HERE / "baselines.py"), "pandas", str(path)]}


def measure(size: str, out: Path, rounds: int = 3) -> dict:
    """Steps (a)-(e) on one size's file, (a)-(c) and (e) interleaved over ``rounds`` rounds."""
    path = generate(size, out)
    store = out / f"store-{size.lower()}"
    commands = _commands(size, path, store, out)
    per_round = []
    for number in range(rounds):
        shutil.rmtree(store, ignore_errors=True)
        steps = {}
        for name, command in commands.items():
            if name == "pandas" and (size == "10M" or number > 0):  # once; 10 M does not fit
                continue
            print(f"[{size}] round {number + 1}/{rounds}: {name}", file=sys.stderr)
            steps[name] = timed(command)
        steps["combined"] = _sum(steps["load"], steps["facts"])
        per_round.append(steps)
    for name in ("pa", "bare"):
        (out / f"{name}-{size.lower()}.parquet").unlink(missing_ok=True)
    print(f"[{size}] (d) rollup: store.facts() vs hand-written SQL", file=sys.stderr)
    steps = _medians(per_round)
    steps["rollup"] = timed([PY, str(HERE / "baselines.py"), "rollup", str(store)])
    manifest = json.loads((store / "manifest.json").read_text()) if store.exists() else {"files": {}}
    spans = sum(entry["rows_loaded"] for entry in manifest["files"].values())
    return {"size": size, "file_bytes": path.stat().st_size, "spans": spans,
            "traces": SIZES[size][0], "rounds": rounds, "steps": steps,
            "pyarrow_rows": _rows(steps.get("pyarrow")), "commit": _commit(),
            "when": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _sum(a: dict, b: dict) -> dict:
    return {"ok": a["ok"] and b["ok"], "returncode": max(a["returncode"], b["returncode"]),
            "wall_s": a["wall_s"] + b["wall_s"], "cpu_s": a["cpu_s"] + b["cpu_s"],
            "rss_gb": max(a["rss_gb"], b["rss_gb"]), "last_line": b["last_line"]}


def _medians(per_round: list[dict]) -> dict:
    """Per step: the median wall and CPU time over the rounds, the largest peak RSS."""
    steps = {}
    for name in per_round[0]:
        runs = [r[name] for r in per_round if name in r]
        steps[name] = {**runs[-1], "ok": all(r["ok"] for r in runs),
                       "wall_s": statistics.median(r["wall_s"] for r in runs),
                       "cpu_s": statistics.median(r["cpu_s"] for r in runs),
                       "rss_gb": max(r["rss_gb"] for r in runs),
                       "rounds_wall_s": [r["wall_s"] for r in runs]}
    return steps


def _rows(step: dict | None) -> int | None:
    try:
        return json.loads(step["last_line"])["rows"] if step and step["ok"] else None
    except (json.JSONDecodeError, KeyError):
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1M,10M", help="comma-separated, from tiny (a smoke test), 0.1M, 1M, 10M")
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds of each step (median reported)")
    parser.add_argument("--no-analyses", action="store_true", help="skip the 1 M facts analyses")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--fresh", action="store_true",
                        help="drop earlier results of sizes not measured in this run")
    args = parser.parse_args(argv)
    sizes = [s.strip().upper() for s in args.sizes.split(",") if s.strip()]
    if unknown := [s for s in sizes if s not in SIZES]:
        raise SystemExit(f"--sizes must be from {list(SIZES)}, but {unknown} was passed.")
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": f"{platform.machine()}, {_cores()} cores, {_memory_gb():.0f} GB RAM",
               "commit": _commit(),
               "runs": [measure(size, args.out, args.rounds) for size in sizes]}
    if not args.no_analyses:
        print("[analyses] 1 M trace facts through the overview analyses", file=sys.stderr)
        step = timed([PY, str(HERE / "analyses_at_scale.py"), "--out", str(args.out)])
        results["analyses"] = {**step, **(json.loads(step["last_line"]) if step["ok"] else {})}
    _keep_earlier(results, args.out / "results.json", sizes, fresh=args.fresh)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    text = report.markdown(results)
    args.results.write_text(with_earlier(text, args.results, f"{results['when'][:10]}, commit {results['commit']}"))
    print(text)


def with_earlier(text: str, path: Path, run: str, *, title: str = "# Scale benchmark",
                 command: str = "`make bench`") -> str:
    r"""The results file's new text: its title, this run's report as the first section (headed
    with ``command`` and ``run``), then every section the file held before (earlier runs and the
    notes written beside them; a report left at the top without a heading of its own gets one).

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "RESULTS.md"
    >>> _ = path.write_text(with_earlier("# Scale benchmark\n\nold table\n", path, "day 1"))
    >>> _ = path.write_text(path.read_text() + "\n## A note\n\nby hand\n")
    >>> print(with_earlier("# Scale benchmark\n\nnew table\n", path, "day 2"))
    # Scale benchmark
    <BLANKLINE>
    ## `make bench`, day 2
    <BLANKLINE>
    new table
    <BLANKLINE>
    ## `make bench`, day 1
    <BLANKLINE>
    old table
    <BLANKLINE>
    ## A note
    <BLANKLINE>
    by hand
    <BLANKLINE>
    """
    sections = f"## {command}, {run}\n\n{text.removeprefix(title).strip()}\n"
    old = path.read_text().removeprefix(title).strip() if path.exists() else ""
    if old and not old.startswith("## "):
        old = f"## An earlier {command}\n\n{old}"
    return f"{title}\n\n{sections}" + (f"\n{old}\n" if old else "")


def _keep_earlier(results: dict, path: Path, sizes: list[str], *, fresh: bool) -> None:
    """Carry over earlier runs of the sizes (and analyses) not measured this time."""
    if fresh or not path.exists():
        return
    earlier = json.loads(path.read_text())
    kept = [run for run in earlier.get("runs", []) if run["size"] not in sizes]
    results["runs"] = sorted(kept + results["runs"], key=lambda run: SIZES[run["size"]][0])
    if "analyses" not in results and "analyses" in earlier:
        results["analyses"] = earlier["analyses"]


def _commit() -> str:
    """The git commit measured (with ``+changes`` when the working tree differs from it)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=HERE, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "aiscale"],
                               capture_output=True, text=True, cwd=HERE).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def _cores() -> int:
    import os

    return os.cpu_count() or 0


def _memory_gb() -> float:
    try:
        return int(Path("/proc/meminfo").read_text().split()[1]) / 1e6
    except (OSError, ValueError, IndexError):
        return float("nan")


if __name__ == "__main__":
    main()
