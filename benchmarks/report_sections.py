"""Time each overview section in one process: wall and CPU seconds, peak memory.

Usage::

    .venv/bin/python benchmarks/report_sections.py benchmarks/out/report-100000.store

The store is the one ``benchmarks/bench_report.py`` builds. Each section is called as the
overview notebook calls it, in the notebook's order (later sections reuse what earlier ones
read, as in the report). CPU seconds count every thread of the process, so on a machine
shared with other work they are the figure to compare; wall seconds include waiting for a
core. Prints a Markdown table.
"""

from __future__ import annotations

import resource
import sys
import time
import warnings

import matplotlib

matplotlib.use("Agg")


def main() -> None:
    import matplotlib.pyplot as plt

    from aiscale.report import context as sections
    from aiscale.report import sections_analysis as analysis
    from aiscale.report import sections_core as core
    from aiscale.report import sections_loops as loops
    from aiscale.report import sections_money as money
    from aiscale.report import sections_spend as spend

    warnings.filterwarnings("ignore")
    store = sys.argv[1]
    rows = []

    def timed(name, fn):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        rows.append((name, time.perf_counter() - wall, time.process_time() - cpu))
        plt.close("all")
        return out

    ctx = timed("open the store (facts, spans)", lambda: sections.open_context(store))
    steps = [
        ("Spend over time", lambda: spend.spend_over_time(ctx)),
        ("Spend", lambda: core.spend(ctx)),
        ("Cost distribution and tails", lambda: money.cost_distribution(ctx)),
        ("Cost attribution", lambda: money.attribution(ctx)),
        ("Cache savings", lambda: spend.cache(ctx)),
        ("Reported versus computed cost", lambda: spend.reported_vs_computed(ctx, threshold=0.01)),
        ("Token distribution", lambda: money.token_distribution(ctx)),
        ("Iterations", lambda: loops.iteration_fit(ctx)),
        ("Loop pathologies", lambda: loops.pathologies(ctx)),
        ("Loop budget", lambda: loops.budget(ctx)),
        ("Reliability", lambda: analysis.reliability(ctx)),
        ("Cost, reliability and latency frontier", lambda: analysis.frontier(ctx)),
        ("Latency", lambda: analysis.latency(ctx)),
        ("Latency per call", lambda: spend.call_latency(ctx)),
        ("Spend forecast", lambda: analysis.forecast(ctx, traffic_per_day=None, horizon_days=30,
                                                     budget_usd=None)),
        ("What-if re-pricing", lambda: spend.whatif(ctx)),
        ("Drift", lambda: analysis.drift(ctx, alpha=0.05)),
    ]
    for name, fn in steps:
        timed(name, fn)
    rows.append(("total", sum(r[1] for r in rows), sum(r[2] for r in rows)))
    print("| section | wall s | CPU s |\n|---|---|---|")
    for name, wall, cpu in rows:
        print(f"| {name} | {wall:.1f} | {cpu:.1f} |")
    print(f"\npeak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")


if __name__ == "__main__":
    main()
