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
    MIN_GROUP,
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

    def spans() -> pd.DataFrame | None:  # read when a section needs them, as the context's
        return None if ctx.spans is None else ctx.spans.loc[ctx.spans["trace_id"].isin(facts["trace_id"])]
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
               f"{ranked['trace_id'].iloc[0]}, cost ${ranked['cost'].iloc[0]:,.4f}")
    loops_of = ranked["iterations"].iloc[0]
    finding += f" over {int(loops_of)} iterations." if pd.notna(loops_of) else " (iterations unknown)."
    figure = None
    if ctx.spans is not None and "cost_usd" in ctx.spans and column == "cost_usd":
        calls = ctx.spans.loc[(ctx.spans["kind"] == "llm") & ctx.spans["trace_id"].isin(ranked["trace_id"])]
        if len(calls):
            priced = calls.sort_values(["trace_id", "start_time", "span_id"])
            priced["iteration"] = priced.groupby("trace_id").cumcount() + 1
            priced["cumulative_cost"] = priced.groupby("trace_id")["cost_usd"].cumsum()
            fig, ax = plt.subplots(figsize=(7, 3.5))
            rank = {t: i + 1 for i, t in enumerate(ranked["trace_id"])}
            for trace_id, calls_of in priced.groupby("trace_id"):
                ax.plot(calls_of["iteration"], calls_of["cumulative_cost"],
                        label=f"#{rank.get(trace_id, '?')} …{str(trace_id)[-10:]}")
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
    table = drift_tests(combined, at=at, alpha=alpha, pooled=True, models=main_models(store))
    return drift_section(table, since="versus the baseline, per variant (and per model within a "
                         "variant that used several) and over all variants", alpha=alpha)


def main_models(store: str) -> pd.Series:
    """Each trace's main model: the model of most of its LLM calls (ties: the first in order)."""
    from aiscale.store.trace_store import TraceStore

    rows = TraceStore(store).sql(
        "SELECT trace_id, arg_max(model, n) AS model FROM (SELECT trace_id, model, count(*) AS n "
        "FROM spans WHERE kind = 'llm' AND model IS NOT NULL GROUP BY trace_id, model) GROUP BY trace_id")
    return rows.set_index("trace_id")["model"]


def default_pair(facts: pd.DataFrame) -> tuple[str, str, str] | None:
    """The two variants that matter: the two best on success among those with enough traces.

    Among variants with at least :data:`MIN_GROUP` traces with an outcome (else all), the two
    with the highest success rate; ties go to the larger. A is the runner-up, B the best.
    Returns (a, b, the rule in words), or None with fewer than two variants.
    """
    rates = facts.groupby("variant")["success"].agg(["mean", "size"])
    big = rates.loc[rates["size"] >= MIN_GROUP]
    pool = big if len(big) >= 2 else rates
    if len(pool) < 2:
        return None
    top = pool.sort_values(["mean", "size"], ascending=False).index[:2].tolist()
    rule = (f"the two best on success among variants with at least {MIN_GROUP} traces with an outcome"
            if pool is big else "the two best on success (no two variants have "
            f"{MIN_GROUP} traces with an outcome)")
    return str(top[1]), str(top[0]), rule


@guarded("Paired comparison")
def comparison(ctx: Context, *, a: str | None = None, b: str | None = None, effect: float = 0.05,
               alpha: float = 0.05) -> Section:
    """B versus A on shared tasks: difference with CI, cost ratio, latency; runs needed.

    Without ``a`` and ``b``, :func:`default_pair` picks them and the note says by which rule.
    """
    import aiscale

    facts = ctx.facts.loc[ctx.facts["success"].notna()]
    rule = "as asked (parameters a and b)"
    if a is None or b is None:
        pair = default_pair(facts)
        if pair is None:
            return why_not(f"A comparison needs two variants with outcomes; this window has "
                           f"{facts['variant'].nunique()}.")
        a, b, rule = (a or pair[0]), (b or pair[1]), pair[2]
    shared = set(facts.loc[facts["variant"] == a, "task_id"]) & set(facts.loc[facts["variant"] == b, "task_id"])
    if not shared:
        return why_not(f"{a!r} and {b!r} ran no task in common: a paired comparison needs shared tasks.")
    result = aiscale.compare(facts, a=a, b=b, level=1 - alpha)
    note = f"A = {a}, B = {b}: {rule}."
    try:
        power = aiscale.runs_needed(facts, a=a, b=b, effect=effect, alpha=alpha).summary()
        first = power.dropna(subset=["tasks_needed"]).head(1)
        if len(first):
            row = first.iloc[0]
            note += (f" To detect a {effect:.0%} difference: {int(row['tasks_needed']):,} tasks at "
                     f"{int(row['trials'])} trial(s) per task.")
    except ValueError as exc:
        note += f" Runs needed not computed: {exc}"
    return Section(result.sentence, figure=result.plot(), table=result.summary().T.reset_index()
                   .set_axis(["quantity", "value"], axis=1), note=note,
                   data={"a": a, "b": b, "rule": rule, "headline_n": len(shared), "min_group": MIN_GROUP}
                   if len(shared) >= MIN_GROUP else {"a": a, "b": b, "rule": rule})
