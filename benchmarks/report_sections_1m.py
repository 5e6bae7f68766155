"""Time the overview's facts-only sections on 1 M traces: a store's facts, ten copies.

Usage::

    .venv/bin/python benchmarks/report_sections_1m.py benchmarks/out/report-100000.store [--copies 10]

The store's trace facts (100,000 simulated traces for the store ``bench_report.py`` builds) are
repeated ``--copies`` times with fresh trace and task ids and each cost multiplied by
lognormal(0, 0.05) noise (so every value is distinct, as in a real million). There are no
spans (17 M of them would not fit this benchmark's point): attribution is by outcome, the loop
budget takes its linear approximation and latency has no busy-time shares. Each section is
called as the overview calls it; prints a Markdown table of CPU seconds (every thread).
"""

from __future__ import annotations

import argparse
import time
import warnings

import matplotlib

matplotlib.use("Agg")


def main() -> None:
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    from aiscale.report import context as sections
    from aiscale.report import sections_analysis as analysis
    from aiscale.report import sections_loops as loops
    from aiscale.report import sections_money as money

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument("--copies", type=int, default=10)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    base = sections.open_context(args.store, with_spans=False).facts
    rng = np.random.default_rng(0)
    facts = pd.concat([base.assign(trace_id=base["trace_id"].astype(str) + f"-{r}",
                                   task_id=base["task_id"].astype(str) + f"-{r}",
                                   cost_usd=base["cost_usd"] * rng.lognormal(0, 0.05, len(base)))
                       for r in range(args.copies)], ignore_index=True)
    ctx = sections.Context(facts=facts, spans=None, store=None)
    steps = [("Cost distribution and tails", lambda: money.cost_distribution(ctx)),
             ("Cost attribution (by outcome)", lambda: money.attribution(ctx)),
             ("Token distribution", lambda: money.token_distribution(ctx)),
             ("Iterations", lambda: loops.iteration_fit(ctx)),
             ("Loop budget (no spans)", lambda: loops.budget(ctx)),
             ("Reliability", lambda: analysis.reliability(ctx)),
             ("Frontier", lambda: analysis.frontier(ctx)),
             ("Latency (no spans)", lambda: analysis.latency(ctx)),
             ("Spend forecast", lambda: analysis.forecast(ctx, traffic_per_day=None, horizon_days=30,
                                                          budget_usd=None)),
             ("Drift", lambda: analysis.drift(ctx, alpha=0.05))]
    print(f"{len(facts):,} traces\n\n| section | CPU s |\n|---|---|")
    total = 0.0
    for name, fn in steps:
        cpu = time.process_time()
        fn()
        total += (spent := time.process_time() - cpu)
        plt.close("all")
        print(f"| {name} | {spent:.1f} |", flush=True)
    print(f"| total | {total:.1f} |")


if __name__ == "__main__":
    main()
