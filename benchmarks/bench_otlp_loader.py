"""Time the OTLP loader against DuckDB's bare conversion of the same file (wall, CPU, peak RSS).

Usage::

    .venv/bin/python benchmarks/make_otlp_bench.py /tmp/otlp_1m.jsonl --spans 1000000
    .venv/bin/python benchmarks/bench_otlp_loader.py /tmp/otlp_1m.jsonl

Each path runs in its own process (``os.wait4`` gives that process's CPU time and peak RSS):

``aiscale``   ``aiscale.load`` into a fresh store, then ``store.facts()``;
``loader``    the OTLP loader's chunks alone (no validation, no Parquet);
``bare``      ``COPY (SELECT * FROM read_json(FILE)) TO 'x.parquet'``, DuckDB's own floor.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

SCRIPTS = {
    "aiscale": "import aiscale, sys; s = aiscale.load([sys.argv[1]], store=sys.argv[2]); "
               "f = s.facts(); print(s.last_load.rows_loaded, len(f))",
    "loader": "import sys; from aiscale.loaders import otlp; "
              "print(sum(len(c.spans) for c in otlp.read(sys.argv[1])))",
    "bare": "import duckdb, sys; duckdb.connect().execute(f\"COPY (SELECT * FROM read_json('{sys.argv[1]}'))"
            " TO '{sys.argv[2]}/bare.parquet' (FORMAT parquet)\"); print('done')",
}


def run(name: str, path: str) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", SCRIPTS[name], path, scratch + "/store"
                                  if name == "aiscale" else scratch], stdout=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        out = child.stdout.read().decode().strip()
    if status:
        raise RuntimeError(f"{name} failed with status {status}")
    return {"path": name, "wall_s": round(wall, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_rss_mb": usage.ru_maxrss // 1024, "output": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--paths", nargs="+", default=["aiscale", "loader", "bare"])
    args = parser.parse_args()
    for name in args.paths:
        print(run(name, args.file), flush=True)


if __name__ == "__main__":
    main()
