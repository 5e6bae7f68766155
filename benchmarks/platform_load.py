"""Rows per second of the platform loaders (LangSmith, Langfuse, Phoenix JSONL), end to end.

Usage::

    .venv/bin/python benchmarks/platform_load.py [--rows 100000] [--out benchmarks/out]

Each file is made from the bundled fixtures (``tests/fixtures/platforms``) by replication:
copy ``k`` of every record gets every id of the fixture rewritten to ``<id>-k`` (so traces
stay separate and parents stay linked). Then, each path in its own process (``os.wait4``
gives its CPU time and peak RSS), median of ``--rounds``, interleaved:

``aiscale``  ``aiscale.load`` of the file into a fresh store (read, map, validate, write Parquet);
             "load" is that call alone (wall, and CPU of all its threads; the store and the
             loaders imported before), "process" adds Python start-up and the imports;
``duckdb``   DuckDB's bare ``read_json`` of the same file to Parquet (the floor the issue names),
             whole process.

``--trees A,B`` times ``aiscale.load`` from each source tree in turn (the child's ``PYTHONPATH``),
so a branch and ``main`` are compared in the same rounds, interleaved. The load average is
printed beside each row (other work on the machine inflates wall and CPU seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIX = HERE.parent / "tests" / "fixtures" / "platforms"
ID_FIELDS = {"langsmith": ("id", "trace_id", "parent_run_id"),
             "phoenix": ("context.span_id", "context.trace_id", "parent_id"),
             "langfuse": ("id", "traceId", "parentObservationId")}
SCRIPTS = {
    "aiscale": "import sys, time; import aiscale, aiscale.store.trace_store, aiscale.loaders;"
               " aiscale.loaders.formats(); t, c = time.perf_counter(), time.process_time();"
               " s = aiscale.load([sys.argv[1]], store=sys.argv[2] + '/store');"
               " print(s.last_load.rows_loaded, time.perf_counter() - t, time.process_time() - c)",
    "duckdb": "import duckdb, sys; duckdb.connect().execute(\"COPY (SELECT * FROM read_json(?)) TO '\""
              " + sys.argv[2] + \"/bare.parquet' (FORMAT parquet)\", [sys.argv[1]]).fetchall(); print('ok')",
}


def fixture_records(name: str) -> list[str]:
    """The fixture records of one platform, one JSON text a record."""
    if name == "langfuse":
        data = json.loads((FIX / "langfuse_observations_api.json").read_text())["data"]
        return [json.dumps(r) for r in data]
    file = {"langsmith": "langsmith_sdk_runs.jsonl", "phoenix": "phoenix_spans.jsonl"}[name]
    return [line for line in (FIX / file).read_text().splitlines() if line.strip()]


def replicate(name: str, rows: int, out: Path) -> Path:
    """Write ``rows`` records of platform ``name`` to ``out`` (copies of the fixture, new ids)."""
    records = fixture_records(name)
    ids = sorted({str(json.loads(r).get(f)) for r in records for f in ID_FIELDS[name]
                  if json.loads(r).get(f)}, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(i) for i in ids))
    path = out / f"{name}_{rows}.jsonl"
    if path.exists():
        return path
    with open(path, "w") as handle:
        for k in range(-(-rows // len(records))):
            for record in records[: rows - k * len(records)]:
                handle.write(pattern.sub(lambda m, k=k: f"{m.group(0)}-{k}", record) + "\n")
    return path


def timed(script: str, path: Path, tree: str | None = None) -> dict:
    """Run one path in its own process (``aiscale`` from ``tree`` when given): wall and CPU
    seconds, peak RSS (GB), and the load average when it ended."""
    env = {**os.environ, "PYTHONPATH": tree} if tree else None
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", SCRIPTS[script], str(path), scratch],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        out = child.stdout.read().decode().split()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) not in (0, 1):
            raise RuntimeError(f"{script} on {path} failed: {child.stderr.read().decode()[-500:]}")
    cpu = usage.ru_utime + usage.ru_stime
    load, load_cpu = (float(out[1]), float(out[2])) if script == "aiscale" else (wall, cpu)
    return {"wall_s": wall, "load_s": load, "load_cpu_s": load_cpu, "cpu_s": cpu, "rss_gb": usage.ru_maxrss / 1e6,
            "load_average": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--platforms", default="langsmith,langfuse,phoenix")
    parser.add_argument("--trees", default="", help="source trees to time aiscale from, in turn (default: this one)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    files = {name: replicate(name, args.rows, args.out) for name in args.platforms.split(",")}
    trees = [t for t in args.trees.split(",") if t] or [None]
    paths = [("aiscale", tree) for tree in trees] + [("duckdb", None)]
    results: dict[tuple[str, str, str | None], list[dict]] = {}
    for _ in range(args.rounds):
        for name, path in files.items():
            for script, tree in paths:
                results.setdefault((name, script, tree), []).append(timed(script, path, tree))
    print(f"| platform ({args.rows:,} JSONL rows) | path | process wall s | process CPU s | load wall s | "
          "load CPU s | rows/s (load wall) | peak RSS GB | load average |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (name, script, tree), runs in results.items():
        wall, cpu, load, load_cpu = (statistics.median(r[k] for r in runs)
                                     for k in ("wall_s", "cpu_s", "load_s", "load_cpu_s"))
        rss = max(r["rss_gb"] for r in runs)
        busy = f"{min(r['load_average'] for r in runs):.1f}–{max(r['load_average'] for r in runs):.1f}"
        label = "DuckDB bare `read_json` → Parquet" if script == "duckdb" else \
            "`aiscale.load`" + (f" ({Path(tree).name})" if tree else "")
        print(f"| {name} | {label} | {wall:.2f} | {cpu:.2f} | {load:.2f} | {load_cpu:.2f} | "
              f"{args.rows / load:,.0f} | {rss:.2f} | {busy} |")


if __name__ == "__main__":
    main()
