"""Time the Spark load against the local load of the same simulated OTLP file (local mode).

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_spark_load.py --traces 6000 --seed 20

Writes the simulator's OTLP (6,000 traces are ~100 k spans), loads it into a fresh store with
the local DuckDB loader and into another with ``load_on_spark`` (the SparkSession is started
before the clock runs), checks the facts are byte-identical and prints both wall times and
the CPU time of this process. Spark's local mode runs on the same cores; on a cluster the
executors share the work.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import aiscale
from aiscale.facts.spark import spark_session
from aiscale.sim.otlp import write_otlp
from aiscale.store.spark_load import load_on_spark
from aiscale.store.trace_store import TraceStore


def _cpu() -> float:
    self, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return self.ru_utime + self.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aiscale-spark-bench-"))
    sim = aiscale.simulate(args.traces, seed=args.seed)
    path = write_otlp(sim.spans, sim.traces, work / "sim.jsonl")
    spark_session()  # started before timing: a cluster keeps its session
    timings = {}
    for name, run in (("local", lambda s: s.load([path])),
                      ("spark", lambda s: load_on_spark(s, [path]))):
        store = TraceStore(work / name)
        wall, cpu = time.perf_counter(), _cpu()
        run(store)
        timings[name] = {"wall_s": round(time.perf_counter() - wall, 2),
                         "cpu_s_driver": round(_cpu() - cpu, 2)}
    same = (TraceStore(work / "local").export_facts(work / "a.csv").read_bytes()
            == TraceStore(work / "spark").export_facts(work / "b.csv").read_bytes())
    print(json.dumps({"spans": len(sim.spans), "bytes": path.stat().st_size, **timings,
                      "facts_identical": same}))


if __name__ == "__main__":
    main()
