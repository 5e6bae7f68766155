"""Report sections read straight from the trace facts: spend, iterations, latency.

Examples
--------
>>> import pandas as pd
>>> from aiscale.report.context import Context
>>> facts = pd.DataFrame({"variant": ["a", "a", "b"], "cost_usd": [1.0, 3.0, 2.0],
...                       "iterations": [2, 4, 3], "repeated_calls": [0, 5, 0],
...                       "latency_s": [1.0, 2.0, 3.0], "llm_latency_s": [0.5, 1.0, 2.0],
...                       "tool_latency_s": [0.1, 0.2, 0.3], "unpriced_llm_calls": [0, 0, 0],
...                       "n_llm_calls": [2, 4, 3]})
>>> spend(Context(facts=facts, spans=None, store=None)).finding.startswith("3 traces cost $6.00")
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aiscale.analysis._result import drawn_points
from aiscale.report.context import Context, Section, cost_of, empty_section, why_not
from aiscale.report.cost_bounds import cost_bounds

STUCK_REPEATS = 3


def spend(ctx: Context) -> Section:
    """Total spend, its spread per trace (p50, p90, p99, p99/p50) and the unpriced share."""
    if (empty := empty_section(ctx)) is not None:
        return empty
    import matplotlib.pyplot as plt

    facts = ctx.facts
    cost, column = cost_of(facts)
    if cost.notna().sum() == 0:
        calls = int(facts["n_llm_calls"].fillna(0).sum())
        detail = f" ({calls:,} LLM calls)" if calls else ""
        return why_not(f"Cost is unknown: none of the {len(facts):,} traces{detail} has a price or a "
                       "reported cost. It is not zero; add a price sheet or token counts.")
    table = (facts.assign(cost=cost).groupby("variant", dropna=False)["cost"]
             .agg(traces="size", priced="count", total=lambda s: s.sum(min_count=1), mean="mean",
                  p50="median", p90=lambda s: s.quantile(0.9), p99=lambda s: s.quantile(0.99))
             .reset_index())
    table.insert(3, "unknown", table["traces"] - table["priced"])
    table["p99/p50"] = table["p99"] / table["p50"]
    p50, p99 = cost.quantile(0.5), cost.quantile(0.99)
    unpriced = int((cost.isna()).sum())
    bounds = cost_bounds(ctx)
    total = f"{bounds.qualifier() if bounds else ''}${cost.sum():,.2f}"
    finding = (f"{len(facts):,} traces cost {total} ({column}); per trace the median is "
               f"${p50:,.4f} and p99 is {p99 / p50:,.1f}× the median" if p50 > 0 else
               f"{len(facts):,} traces cost {total} ({column})")
    finding += f"; {unpriced:,} traces are unpriced and not counted." if unpriced else "."
    fig, ax = plt.subplots(figsize=(7, 3.5))
    above = (cost > 0).to_numpy()
    survival_lines(ax, cost.to_numpy(float)[above], facts["variant"].to_numpy()[above], title="variant")
    ax.set(xlabel=f"cost per trace (USD, {column})", ylabel="share of traces above")
    data = {"cost_total": cost.sum(min_count=1), "cost_source": column, "priced": int(cost.notna().sum()),
            "unknown": unpriced, "variant_totals": dict(zip(table["variant"].astype(str), table["total"],
                                                           strict=True)),
            "cost_bounds": bounds.data() if bounds else None}
    return Section(finding, figure=fig, table=table, data=data, note=bounds.note() if bounds else "")


def survival_lines(ax, values: np.ndarray, labels: np.ndarray, *, title: str):
    """Share of values above x per label, as steps on log-log axes (seaborn's complementary
    ``ecdfplot`` with ``hue`` and ``log_scale=(True, True)``, drawn with matplotlib alone).

    Labels take the colour cycle in order of first appearance and are drawn last first, with
    a legend titled ``title``, as seaborn draws them.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> ax = survival_lines(plt.subplots()[1], np.array([1.0, 2.0, 4.0]), np.array(["a", "a", "b"]), title="v")
    >>> [line.get_ydata().tolist() for line in ax.get_lines()]
    [[1.0, 0.0], [1.0, 0.5, 0.0]]
    """
    from matplotlib.lines import Line2D

    codes, levels = pd.factorize(pd.Series(labels), sort=False)
    colors = [f"C{i % 10}" for i in range(len(levels))]
    for i in reversed(range(len(levels))):
        x = np.sort(values[codes == i])
        if not len(x):
            continue
        x, y = np.r_[-np.inf, x], 1.0 - np.r_[0.0, np.arange(1, len(x) + 1) / len(x)]
        drawn = drawn_points(x, y, log_x=True, log_y=True)  # what the figure can show of 25,000 steps
        line, = ax.plot(x[drawn], y[drawn], drawstyle="steps-post", color=colors[i])
        line.sticky_edges.y[:] = 0, 1
    ax.set_xscale("log", nonpositive="mask")  # as seaborn: no step drawn down to 0
    ax.set_yscale("log", nonpositive="mask")
    ax.legend([Line2D([], [], color=c) for c in colors], [str(v) for v in levels], title=title)
    return ax


def iterations(ctx: Context) -> Section:
    """Loop iterations per variant and traces that repeat the same tool call."""
    if (empty := empty_section(ctx)) is not None:
        return empty
    import matplotlib.pyplot as plt
    import seaborn as sns

    facts = ctx.facts.assign(iterations=ctx.facts["iterations"].astype(float))
    cost, _ = cost_of(facts)
    stuck = facts["repeated_calls"].fillna(0).astype(float) >= STUCK_REPEATS
    table = facts.groupby("variant", dropna=False)["iterations"].agg(
        traces="size", mean="mean", p50="median", p90=lambda s: s.quantile(0.9), max="max").reset_index()
    table["repeating traces"] = stuck.groupby(facts["variant"], dropna=False).mean().to_numpy()
    stuck_spend = cost[stuck].sum() / cost.sum() if cost.sum() > 0 else np.nan
    finding = (f"Traces take {facts['iterations'].median():.0f} iterations at the median and "
               f"{facts['iterations'].quantile(0.9):.0f} at p90; {stuck.mean():.1%} repeat an identical "
               f"tool call {STUCK_REPEATS}+ times")
    finding += f", holding {stuck_spend:.1%} of spend." if np.isfinite(stuck_spend) else "."
    fig, ax = plt.subplots(figsize=(7, 3.5))
    sns.histplot(data=facts, x="iterations", hue="variant", element="step", stat="density",
                 common_norm=False, discrete=True, ax=ax)
    return Section(finding, figure=fig, table=table)


def latency(ctx: Context) -> Section:
    """End-to-end latency percentiles per variant and the LLM vs tool share of time."""
    if (empty := empty_section(ctx)) is not None:
        return empty
    facts = ctx.facts
    if facts["latency_s"].notna().sum() == 0:
        return why_not("Latency is unknown: the source has no timestamps.")
    table = facts.groupby("variant", dropna=False)["latency_s"].agg(
        traces="count", p50="median", p95=lambda s: s.quantile(0.95), p99=lambda s: s.quantile(0.99)
    ).reset_index()
    llm, tool = facts["llm_latency_s"].sum(), facts["tool_latency_s"].sum()
    share = llm / (llm + tool) if llm + tool > 0 else np.nan
    finding = (f"Median trace latency is {facts['latency_s'].median():,.1f} s, p95 "
               f"{facts['latency_s'].quantile(0.95):,.1f} s")
    finding += f"; LLM calls take {share:.0%} of the time spent in calls and tools." if np.isfinite(share) else "."
    return Section(finding, table=table)
