"""Benchmark: price 1 M LLM spans (rate table per distinct key + one Ibis join on DuckDB).

Run: ``.venv/bin/python benchmarks/bench_pricing.py [--spans 1000000]``. Prints the time to
build the rate table (genai-prices lookups, once per distinct (provider, model, day)) and
to join and compute every span's cost from a Parquet file, median of 3.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from aiscale.pricing.rates import price_spans, rate_table

MODELS = [("openai", "gpt-4o-2024-08-06"), ("anthropic", "claude-sonnet-4-6"),
          ("openrouter", "google/gemini-3-pro-preview"), ("openai", "gpt-4o-mini"),
          ("azure", "my-private-deployment")]


def make_spans(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(MODELS), n)
    start = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 90 * 86400, n), "s")
    inp = rng.lognormal(9, 1.5, n).astype("int64") + 1
    out = rng.lognormal(6, 1.0, n).astype("int64")
    return pa.table({
        "trace_id": pa.array((np.arange(n) // 20).astype(str)),
        "span_id": pa.array(np.arange(n).astype(str)),
        "kind": pa.array(["llm"] * n), "start_time": pa.array(start),
        "provider": pa.array([MODELS[i][0] for i in which]),
        "model": pa.array([MODELS[i][1] for i in which]),
        "input_tokens": inp, "output_tokens": out,
        "cache_read_tokens": (inp * rng.uniform(0, 0.8, n)).astype("int64"),
        "cache_write_tokens": pa.nulls(n, pa.int64()),
        "reasoning_tokens": (out * rng.uniform(0, 0.5, n)).astype("int64"),
    })


def run_once(path: Path) -> tuple[float, float, int, float]:
    con = ibis.duckdb.connect()
    con.raw_sql("SET TimeZone = 'UTC'")
    t0 = time.perf_counter()
    spans = con.read_parquet(path)
    spans = spans.filter(spans.kind == "llm").mutate(day=spans.start_time.date())
    keys = spans.select("provider", "model", "day").distinct().to_pandas()
    rates = rate_table(keys)
    t1 = time.perf_counter()
    rates_t = ibis.memtable(pa.Table.from_pandas(rates, preserve_index=False))
    priced = price_spans(spans, rates_t)
    totals = priced.aggregate(n=priced.count(), cost=priced.cost_usd.sum(),
                              unpriced=(~priced.priced).sum()).to_pandas()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, int(totals["unpriced"].iloc[0]), float(totals["cost"].iloc[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spans.parquet"
        pq.write_table(make_spans(args.spans), path)
        runs = [run_once(path) for _ in range(3)]
    rate_s = statistics.median(r[0] for r in runs)
    join_s = statistics.median(r[1] for r in runs)
    print(f"{args.spans:,} LLM spans, {len(MODELS)} models x 90 days: rate table {rate_s:.2f} s, "
          f"join + cost {join_s:.2f} s, total {rate_s + join_s:.2f} s (median of 3); "
          f"unpriced {runs[0][2]:,} spans, priced cost ${runs[0][3]:,.2f}")


if __name__ == "__main__":
    main()
