"""Report sections about agent loops: iteration laws, pathologies, loop budget, per variant.

Variants with different step caps, or different agents, are never pooled: iterations are
fitted per variant, right-censored at that variant's step cap where the source states it
(trace metadata ``step_cap``; tau2 and mini-swe-agent write it, a trace the source says
was stopped at its limit is censored too), and the section says where a cap is unknown.

Examples
--------
>>> import pandas as pd
>>> facts = pd.DataFrame({"iterations": [3, 8, 8], "success": [True, False, True],
...     "metadata": ['{"step_cap":8}', '{"step_cap":8}', '{"termination_reason":"max_steps"}']})
>>> loop_caps(facts)[["cap", "censored"]].values.tolist()
[[8.0, False], [8.0, True], [nan, True]]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aiscale.analysis.loops.calls import positions
from aiscale.report.context import (
    MIN_GROUP,
    Context,
    Section,
    cost_of,
    guarded,
    priced_facts,
    unknown_cost,
    why_not,
)
from aiscale.report.shared_calls import calls_of

STOPPED_AT_LIMIT = ("max_steps", "LimitsExceeded", "step_limit", "exit_cost", "exit_format")


def loop_caps(facts: pd.DataFrame) -> pd.DataFrame:
    """Each trace's step cap (NaN when unknown) and whether its loop was cut off (right-censored).

    A trace is censored when the source says it stopped at its limit (tau2's
    ``termination_reason`` max_steps, mini-swe-agent's ``LimitsExceeded``) or when it reached
    its cap without succeeding.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    meta = pa.array(facts["metadata"].astype("string") if "metadata" in facts else [None] * len(facts),
                    type=pa.string(), from_pandas=True)
    # one vectorised regex per key over each distinct JSON text (Arrow; metadata repeats, and a
    # hash pass costs less than a regex), then taken back to every trace
    if isinstance(meta, pa.ChunkedArray):  # a frame concatenated from parts
        meta = meta.combine_chunks()
    encoded = pc.dictionary_encode(meta)
    texts, at = encoded.dictionary, encoded.indices
    cap = pc.struct_field(pc.extract_regex(texts, r'"step_cap"\s*:\s*(?P<v>\d+)'), "v")  # null: no match
    cap = pc.cast(pc.take(cap, at), pa.float64()).to_numpy(zero_copy_only=False)
    reason = pc.take(pc.struct_field(pc.extract_regex(
        texts, r'"(?:termination_reason|exit_status)"\s*:\s*"(?P<v>[^"]*)"'), "v"), at)
    stopped = pc.is_in(reason, pa.array(STOPPED_AT_LIMIT)).fill_null(False).to_numpy(zero_copy_only=False)
    iters = pd.to_numeric(facts["iterations"], errors="coerce").astype(float).to_numpy()
    ok = facts["success"].astype("boolean").fillna(False).to_numpy(dtype=bool) if "success" in facts else False
    at_cap = (iters >= cap) & ~ok
    return pd.DataFrame({"cap": cap, "censored": stopped | at_cap}, index=facts.index)


def _variants(facts: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Variants with at least MIN_GROUP traces, largest first."""
    codes, labels = pd.factorize(facts["variant"].astype(str))  # one pass, then a take per variant
    sizes = np.bincount(codes, minlength=len(labels))
    order = np.argsort(-sizes, kind="stable")  # largest first, ties in order of appearance
    at = np.argsort(codes, kind="stable")
    ends = np.cumsum(sizes)
    return [(labels[j], facts.iloc[at[ends[j] - sizes[j]:ends[j]]]) for j in order if sizes[j] >= MIN_GROUP]


def _llm_spans_by_variant(spans: pd.DataFrame, facts: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The LLM spans of each variant's traces in ``facts``: one lookup of every span's trace,
    then one take per variant (not a scan of every span per variant)."""
    keep = ["trace_id", "kind", "start_time", "input_tokens", "output_tokens", "cost_usd", "status"]
    keep = keep if set(keep) <= set(spans.columns) else list(spans.columns)  # unpriced: all, to price
    is_llm = (spans["kind"] == "llm").to_numpy(dtype=bool, na_value=False)
    llm = spans[keep] if is_llm.all() else spans.loc[is_llm, keep]  # the kept calls: no take
    at = positions(llm["trace_id"], facts["trace_id"])
    codes, labels = pd.factorize(facts["variant"].astype(str))
    of_span = np.where(at >= 0, codes[at], -1)
    return {label: llm.iloc[np.flatnonzero(of_span == j)] for j, label in enumerate(labels)}


def _llm_calls(ctx: Context) -> pd.DataFrame:
    """The context's priced LLM calls as LLM spans (the columns the loop analyses read)."""
    columns = ["trace_id", "start_time", "input_tokens", "output_tokens", "cost_usd", "status"]
    calls = calls_of(ctx, prices=ctx.prices)
    calls = calls[columns] if calls is not None else pd.DataFrame({c: [] for c in columns})
    return calls.assign(kind="llm")


def _llm_source(ctx: Context) -> pd.DataFrame | None:
    """A store's kept priced calls as LLM spans (None when its traces have no spans), else the
    context's spans."""
    from aiscale.report.loop_table import loops_of

    kept = loops_of(ctx)
    return ctx.spans if kept is None else None if kept.empty else _llm_calls(ctx)


@guarded("Iteration fit")
def iteration_fit(ctx: Context) -> Section:
    """Loop-iteration law per variant: count families ranked by AIC, censored at the variant's cap."""
    import aiscale

    facts = ctx.facts.loc[ctx.facts["iterations"].fillna(0) > 0]
    groups = _variants(facts[["variant", "iterations"]])  # what the fits read: a narrow take
    if not groups:
        return why_not(f"No variant has {MIN_GROUP} or more traces with iterations: no count law is fitted.")
    caps = loop_caps(facts)
    fixed = [(v, g) for v, g in groups if g["iterations"].nunique() < 2]
    groups = [(v, g) for v, g in groups if g["iterations"].nunique() >= 2]
    if not groups:
        shown = "; ".join(f"{v}: {int(g['iterations'].iloc[0])}" for v, g in fixed[:4])
        return why_not(f"Every trace of a variant takes the same number of iterations ({shown}): there "
                       "is no spread to fit a count law to.")
    rows, figure = [], None
    for variant, group in groups:
        censored = caps.loc[group.index, "censored"].to_numpy()
        fit = aiscale.fit_iterations(group, censored=censored)
        best = fit.summary().iloc[0]
        cap = caps.loc[group.index, "cap"].dropna().unique()
        rows.append({"variant": variant, "traces": len(group), "mean": group["iterations"].astype(float).mean(),
                     "median": group["iterations"].astype(float).median(),
                     "step_cap": ", ".join(f"{c:,.0f}" for c in sorted(cap)) or "unknown",
                     "censored": int(censored.sum()), "best_family": best["family"], "aic": best["aic"]})
        figure = figure if figure is not None else fit.plot()
    table = pd.DataFrame(rows)
    top = table.iloc[0]
    finding = (f"Fitted per variant (never pooled across caps or agents): {top['variant']} takes "
               f"{top['mean']:.1f} iterations on average (median {top['median']:.0f}), best law "
               f"{top['best_family']}, {top['censored']} of {top['traces']} traces censored at its cap")
    unknown = table.loc[table["step_cap"] == "unknown", "variant"].tolist()
    if unknown:
        which = unknown[0] if len(unknown) == 1 else f"{len(unknown)} variants (see the table)"
        finding += f"; step cap unknown for {which} (only stops the source reports are censored)"
    if figure is not None:
        figure.set_title(f"{top['variant']}", fontsize="small")
    note = f"Variants with fewer than {MIN_GROUP} traces are not fitted."
    if fixed:
        note += " Not fitted, every trace taking the same number of iterations: " + "; ".join(
            f"{v} ({int(g['iterations'].iloc[0])})" for v, g in fixed) + "."
    return Section(finding + ".", figure=figure, table=table.round(3), note=note,
                   data={"headline_n": int(top["traces"]), "min_group": MIN_GROUP})


@guarded("Loop pathologies")
def pathologies(ctx: Context) -> Section:
    """Stuck loops (identical tool call repeated) and wasted spend."""
    import aiscale
    from aiscale.report.loop_table import loops_of

    kept = loops_of(ctx)  # a store's kept loop table and priced calls: no span is read
    if (ctx.spans is None) if kept is None else kept.empty:
        return why_not("Loop pathologies need spans; this source has per-trace rows only.")
    facts = priced_facts(ctx.facts)
    spans, runs = _llm_source(ctx), None if kept is None else kept.set_index("trace_id")
    stuck = aiscale.stuck_loops(spans, facts=facts, cost="cost_usd", runs=runs)
    row = stuck.summary().iloc[0]
    finding = (f"{row['n_stuck']:,} of {row['n_traces']:,} traces ({row['share']:.1%}) repeat an identical "
               "call 3+ times in a row")
    if unknown_cost(ctx, "Wasted spend") is not None:
        return Section(finding + "; their spend is unknown (no cost).", table=stuck.summary())
    wasted = aiscale.wasted_spend(facts, spans=spans, stuck=stuck).summary()
    finding += (f", holding {row['spend_share']:.1%} of spend; {wasted['share'].iloc[0]:.0%} of spend "
                f"went to {wasted['category'].iloc[0]}.")
    spend = dict(zip(wasted["category"], wasted["spend"], strict=True))
    return Section(finding, table=wasted, data={"cost_total": cost_of(ctx.facts)[0].sum(min_count=1),
                                                "wasted": spend})


@guarded("Loop budget")
def budget(ctx: Context) -> Section:
    """What a loop cap would save or lose, per variant: success and cost per cap, the knee."""
    import aiscale

    facts = ctx.facts.loc[ctx.facts["success"].notna()] if "success" in ctx.facts else ctx.facts.iloc[:0]
    if facts.empty:
        return why_not("A loop budget needs outcomes (success); none are known in this window.")
    if (unknown := unknown_cost(ctx, "A loop budget")) is not None:
        return unknown
    # what loop_budget and the cost read: no JSON text taken per variant
    groups = _variants(facts.drop(columns=["metadata", "user_id", "session_id"], errors="ignore"))
    if not groups:
        return why_not(f"No variant has {MIN_GROUP} or more traces with outcomes: no loop budget.")
    rows, figure, unpriced = [], None, []
    source = _llm_source(ctx)
    calls = _llm_spans_by_variant(source, facts) if source is not None else {}
    for variant, group in groups:
        label = cost_of(group)[1]
        if label == "none":
            unpriced.append(variant)
            continue
        by_call = label == "cost_usd" and source is not None  # spans carry the same prices
        spans = calls.get(variant, source.iloc[:0]) if by_call else None
        result = aiscale.loop_budget(priced_facts(group), spans=spans, cost="cost_usd", n_boot=200)
        points = result.summary().set_index("point")
        rows.append({"variant": variant, "traces": len(group), "knee_cap": int(points.loc["knee", "cap"]),
                     "success_at_knee": points.loc["knee", "success_rate"],
                     "cost_at_knee": points.loc["knee", "mean_cost"],
                     "best_successes_per_dollar_cap": result.best_cap})
        figure = figure if figure is not None else result.plot()
    if not rows:
        return why_not("A loop budget needs cost, and cost is unknown for every variant with "
                       f"{MIN_GROUP}+ traces. It is not zero.")
    table = pd.DataFrame(rows)
    top = table.iloc[0]
    finding = (f"Per variant: capping {top['variant']} at {top['knee_cap']} iterations (the knee) keeps a "
               f"success rate of {top['success_at_knee']:.0%} at ${top['cost_at_knee']:.4f} per trace")
    if unpriced:
        finding += f"; cost unknown (not zero) for {len(unpriced)} variant(s), left out"
    return Section(finding + ".", figure=figure, table=table.round(4),
                   note=f"Variants with fewer than {MIN_GROUP} traces with outcomes are left out.",
                   data={"headline_n": int(top["traces"]), "min_group": MIN_GROUP})
