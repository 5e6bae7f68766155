"""Time the overview analyses on 1 M trace facts (one row per trace), each call on its own.

Usage::

    python benchmarks/analyses_at_scale.py [--traces 1000000] [--out benchmarks/out]

The facts come from the simulator's laws: :func:`aiscale.sim.simulate.iter_chunks` draws every
trace (task, variant, trial, outcome, iterations, tokens, cost, latencies) and its per-trace
truth is exactly what the rollup of its spans gives (``tests/test_simulate.py`` checks that on
smaller runs), so 1 M facts are built without rolling up 17 M spans. They are cached as
Parquet. Each analysis is called as the overview report calls it, with its default settings;
prints one JSON line ``{"traces": n, "analyses": [{"name", "seconds", "note"}]}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import aiscale
from aiscale import schema
from aiscale.facts.frame import to_pandas
from aiscale.sim.simulate import iter_chunks

TRACE_ONLY = ["score", "user_id", "session_id", "metadata"]


def simulated_facts(n_traces: int, path: Path, seed: int = 7) -> pd.DataFrame:
    """1 M trace facts from the simulator's per-trace truth (cached at ``path``)."""
    if not path.exists():
        tables = []
        for chunk in iter_chunks(n_traces, seed=seed, chunk_traces=50_000):
            frame = chunk.truth.merge(chunk.traces[["trace_id", *TRACE_ONLY]], on="trace_id")
            frame = frame.assign(unpriced_llm_calls=0, reported_cost_usd=float("nan"))
            tables.append(schema.conform(frame, "facts"))
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.concat_tables(tables), path, compression="zstd")
    return to_pandas(pq.read_table(path))


def calls(facts: pd.DataFrame) -> list[tuple[str, object, str]]:
    """(name, thunk, note) per overview analysis, called as a user would."""
    started = pd.to_datetime(facts["started_at"], utc=True)
    per_day = len(facts) / max((started.max() - started.min()).total_seconds() / 86400, 1.0)
    cost = facts["cost_usd"].to_numpy(dtype=float, na_value=float("nan"))
    positive = cost[cost > 0]
    return [
        ("fit_distribution", lambda: aiscale.fit_distribution(positive, gof_bootstrap=49, seed=0),
         "cost per trace, every family, 49 GOF bootstrap draws"),
        ("predictability", lambda: aiscale.predictability(facts), "cost_usd by variant"),
        ("fit_iterations", lambda: aiscale.fit_iterations(facts), "11 count families"),
        ("success_rate", lambda: aiscale.success_rate(facts), "by variant"),
        ("pass_hat_k", lambda: aiscale.pass_hat_k(facts), "by variant"),
        ("frontier", lambda: aiscale.frontier(facts), "cost, success, latency by variant"),
        ("latency", lambda: aiscale.latency(facts), "p50/p95/p99 by variant"),
        ("forecast", lambda: aiscale.forecast(facts, traffic=per_day, days=30), "30 days"),
        ("drift", lambda: aiscale.drift(facts, at=started.median()), "halves at the median"),
        ("loop_budget", lambda: aiscale.loop_budget(facts), "no spans (linear)"),
    ]


def run(n_traces: int, out: Path) -> dict:
    facts = simulated_facts(n_traces, out / f"facts-sim-{n_traces}.parquet")
    rows = []
    for name, thunk, note in calls(facts):
        started = time.perf_counter()
        try:
            result = thunk()
            summary = result.summary()
            error = None
        except Exception as exc:  # reported in the table, the others still run
            summary, error = None, f"{type(exc).__name__}: {exc}"[:200]
        rows.append({"name": name, "seconds": time.perf_counter() - started, "note": note,
                     "error": error, "summary_rows": None if summary is None else len(summary)})
    return {"traces": len(facts), "analyses": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = parser.parse_args()
    print(json.dumps(run(args.traces, args.out)))


if __name__ == "__main__":
    main()
