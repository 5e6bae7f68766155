"""Sections of the cost-investigation and compare notebooks.

Examples
--------
>>> import pandas as pd
>>> from aiscale.report.context import Context
>>> facts = pd.DataFrame({"trace_id": ["a", "b"], "variant": ["v", "w"], "user_id": ["u1", "u2"]})
>>> narrow(Context(facts=facts, spans=None, store=None), users=["u2"]).facts.trace_id.tolist()
['b']
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from aiscale.report.context import (
    Context,
    Section,
    cost_of,
    guarded,
    open_context,
    why_not,
)
from aiscale.report.sections_analysis import drift_section, drift_tests


def narrow(ctx: Context, *, models: list[str] | None = None, users: list[str] | None = None,
           tools: list[str] | None = None, trace_ids: list[str] | None = None) -> Context:
    """Keep the traces that match every filter given (model or tool used, user, trace id)."""
    keep = pd.Series(True, index=ctx.facts.index)
    if users:
        keep &= ctx.facts["user_id"].isin(users)
    if trace_ids:
        keep &= ctx.facts["trace_id"].isin(trace_ids)
    for column, wanted in (("model", models), ("tool_name", tools)):
        if wanted and ctx.spans is not None:
            hits = ctx.spans.loc[ctx.spans[column].isin(wanted), "trace_id"].unique()
            keep &= ctx.facts["trace_id"].isin(hits)
    facts = ctx.facts.loc[keep].reset_index(drop=True)
    spans = None if ctx.spans is None else ctx.spans.loc[ctx.spans["trace_id"].isin(facts["trace_id"])]
    filters = {k: v for k, v in dict(models=models, users=users, tools=tools, trace_ids=trace_ids).items() if v}
    notes = ctx.notes + ([f"filters: {filters}"] if filters else [])
    return replace(ctx, facts=facts, spans=spans, notes=notes)


@guarded("Most expensive traces")
def expensive_traces(ctx: Context, *, top: int = 10) -> Section:
    """The costliest traces and their cost iteration by iteration (cumulative, per LLM call)."""
    import matplotlib.pyplot as plt


    cost, column = cost_of(ctx.facts)
    if column == "none":
        return why_not("Cost is unknown for every trace in this selection; it is not zero.")
    ranked = ctx.facts.assign(cost=cost).sort_values("cost", ascending=False).head(top)
    table = ranked[["trace_id", "variant", "task_id", "success", "iterations", "n_tool_calls",
                    "repeated_calls", "cost", "latency_s"]]
    share = ranked["cost"].sum() / cost.sum() if cost.sum() > 0 else float("nan")
    finding = (f"The {len(ranked)} costliest traces hold {share:.0%} of spend; the costliest, "
               f"{ranked['trace_id'].iloc[0]}, cost ${ranked['cost'].iloc[0]:,.4f} over "
               f"{int(ranked['iterations'].iloc[0])} iterations.")
    figure = None
    if ctx.spans is not None and "cost_usd" in ctx.spans and column == "cost_usd":
        calls = ctx.spans.loc[(ctx.spans["kind"] == "llm") & ctx.spans["trace_id"].isin(ranked["trace_id"])]
        if len(calls):
            priced = calls.sort_values(["trace_id", "start_time", "span_id"])
            priced["iteration"] = priced.groupby("trace_id").cumcount() + 1
            priced["cumulative_cost"] = priced.groupby("trace_id")["cost_usd"].cumsum()
            fig, ax = plt.subplots(figsize=(7, 3.5))
            for trace_id, calls_of in priced.groupby("trace_id"):
                ax.plot(calls_of["iteration"], calls_of["cumulative_cost"], label=str(trace_id)[:24])
            ax.set(xlabel="iteration (LLM call)", ylabel="cumulative cost (USD)")
            ax.legend(fontsize="x-small", ncols=2)
            figure = fig
    data = {"cost_total": cost.sum(min_count=1),
            "listed": dict(zip(ranked["trace_id"].astype(str), ranked["cost"], strict=True))}
    return Section(finding, figure=figure, table=table, data=data)


@guarded("Change versus baseline")
def versus_baseline(ctx: Context, *, store: str, baseline_since: str | None,
                    baseline_until: str | None, alpha: float = 0.05) -> Section:
    """What changed between a baseline window and the selected window, per variant, then pooled.

    Pooling variants hides a change in one of them (the demo's output tokens x1.6 on one
    variant); each variant is tested on its own and all variants together, BH-adjusted together.
    """
    if not baseline_since and not baseline_until:
        return why_not("No baseline window given (set baseline_since / baseline_until).")
    base = open_context(store, since=baseline_since, until=baseline_until, with_spans=False).facts
    base = base.loc[base["variant"].isin(ctx.facts["variant"].unique())]
    if base.empty:
        return why_not("The baseline window has no traces of the selected variants.")
    combined = pd.concat([base.assign(_window="baseline"), ctx.facts.assign(_window="window")],
                         ignore_index=True)
    combined["started_at"] = pd.to_datetime(combined["started_at"], utc=True)
    at = combined.loc[combined["_window"] == "window", "started_at"].min()
    combined.loc[combined["_window"] == "baseline", "started_at"] = combined["started_at"].where(
        combined["started_at"] < at, at - pd.Timedelta(seconds=1))
    table = drift_tests(combined, at=at, alpha=alpha, pooled=True)
    return drift_section(table, since="versus the baseline, per variant and over all variants",
                         alpha=alpha)


@guarded("Paired comparison")
def comparison(ctx: Context, *, a: str | None = None, b: str | None = None, effect: float = 0.05,
               alpha: float = 0.05) -> Section:
    """B versus A on shared tasks: difference with CI, cost ratio, latency; runs needed.

    Without ``a`` and ``b``, the two variants with the most traces (the larger is A).
    """
    import aiscale

    facts = ctx.facts.loc[ctx.facts["success"].notna()]
    if a is None or b is None:
        common = facts["variant"].value_counts().index.tolist()
        if len(common) < 2:
            return why_not(f"A comparison needs two variants with outcomes; this window has {len(common)}.")
        a, b = (a or common[0]), (b or next(v for v in common if v != (a or common[0])))
    result = aiscale.compare(facts, a=a, b=b, level=1 - alpha)
    table = result.summary()
    try:
        power = aiscale.runs_needed(facts, a=a, b=b, effect=effect, alpha=alpha)
        table = pd.concat([table, power.summary()], ignore_index=True)
        extra = f" {power!r}"
    except ValueError as exc:
        extra = f" Runs needed not computed: {exc}"
    return Section(result.sentence, figure=result.plot(), table=table, note=extra.strip())
