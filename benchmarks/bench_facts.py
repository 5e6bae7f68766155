"""Time ``aiscale facts`` of one store with one or more source trees, interleaved.

Each round runs, each in its own process, for every tree given: the CLI with an empty query
cache folder (``cold cache``: a fresh machine), the CLI again (the cache
warm) and ``store.facts()`` in-process (the call alone, after the imports); and once per
round the pyarrow flatten of the store's source file when ``--file`` is given. The facts a
store keeps (``STORE/cache``) are removed before each run, so each one rolls up. CPU seconds are user +
system of the process (DuckDB's threads included); RSS is the process's peak; wall seconds are the
process's, and the one-minute load average is read as each run ends (on a shared machine the
wall time is mostly waiting for a core: compare CPU). With the rollup's SQL shipped in the
package, a cold cache compiles only what a store's variant lacks.

    .venv/bin/python benchmarks/bench_facts.py --store S --tree before=../aiscale-main \\
        --tree after=. --file data-1m/otlp-traces.jsonl --rounds 3

A tree is a checkout of the revision to compare (``git worktree add ../aiscale-main main``).
Every facts export of every tree is compared with the first (``check_exact=True``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
IN_PROCESS = """
import resource, sys
from aiscale.store.trace_store import TraceStore
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
start = cpu()
TraceStore(sys.argv[1]).facts()
print(cpu() - start)
"""


def _run(command: list[str], env: dict) -> tuple[float, float, str, float, float]:
    """CPU seconds, peak RSS (GB), stdout, wall seconds and the load average after, of one child process.

    It runs in a neutral folder: ``python -m`` and ``-c`` put the working folder first on
    the path, which would shadow the tree named by PYTHONPATH when run from a checkout.
    """
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True, cwd=tempfile.gettempdir())
    printed = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{command} exited with {child.returncode}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024 ** 2, printed, wall, os.getloadavg()[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH of an aiscale source tree")
    parser.add_argument("--file", help="the OTLP file the store was loaded from (times the pyarrow flatten)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    trees = dict(item.split("=", 1) for item in args.tree)
    out = Path(tempfile.mkdtemp(prefix="bench-facts-"))
    rows, first = [], None
    for round_ in range(args.rounds):
        if args.file:
            cpu, rss, _, wall, load = _run([sys.executable, str(HERE / "pyarrow_flatten.py"),
                                            str(Path(args.file).resolve()), str(out / "flat.parquet")],
                                           dict(os.environ))
            rows.append(("pyarrow flatten", round_, cpu, rss, wall, load))
        for name, tree in trees.items():
            cache = out / f"cache-{name}-{round_}"  # empty: the first run compiles and keeps
            env = dict(os.environ, PYTHONPATH=str(Path(tree).resolve()), AISCALE_CACHE_DIR=str(cache))
            target = out / f"{name}-{round_}.parquet"
            store = str(Path(args.store).resolve())
            command = [sys.executable, "-m", "aiscale.cli", "facts", "--store", store, "-o", str(target)]
            for label in ("aiscale facts, cold cache", "aiscale facts"):
                shutil.rmtree(Path(store) / "cache", ignore_errors=True)  # facts kept by the store
                cpu, rss, _, wall, load = _run(command, env)
                rows.append((f"{name}: {label}", round_, cpu, rss, wall, load))
            shutil.rmtree(Path(store) / "cache", ignore_errors=True)
            cpu, rss, printed, _, load = _run([sys.executable, "-c", IN_PROCESS, store], env)
            rows.append((f"{name}: store.facts() call", round_, float(printed.strip()), rss, None, load))
            probe = "import aiscale, sys; print(aiscale.__file__)"
            assert _run([sys.executable, "-c", probe], env)[2].startswith(str(Path(tree).resolve()))
            facts = pd.read_parquet(target)
            if first is None:
                first = facts
            pd.testing.assert_frame_equal(first, facts, check_exact=True)
    table = pd.DataFrame(rows, columns=["path", "round", "cpu_s", "peak_rss_gb", "wall_s", "load"])
    summary = table.groupby("path", sort=False).agg(cpu_s_median=("cpu_s", "median"), cpu_s_min=("cpu_s", "min"),
                                                   cpu_s_max=("cpu_s", "max"), wall_s_median=("wall_s", "median"),
                                                   peak_rss_gb=("peak_rss_gb", "max"), load_min=("load", "min"),
                                                   load_max=("load", "max"), runs=("cpu_s", "size"))
    print(summary.round(2).to_string())
    print(f"every facts export equal to the first ({len(trees)} trees x {args.rounds} rounds)")


if __name__ == "__main__":
    main()
