"""Report sections about money: the cost and token distributions and where the money went.

Every figure here uses the report's one cost per trace (:func:`~aiscale.report.context.cost_of`)
and spans priced by the store with the same price sheet as the facts, so attribution sums to
the spend total and unknown cost is shown as unknown, never as $0.

Examples
--------
>>> import pandas as pd
>>> from aiscale.report.context import Context
>>> ctx = Context(facts=pd.DataFrame({"variant": ["a"], "cost_usd": [None], "n_llm_calls": [2]}),
...               spans=None, store=None)
>>> attribution(ctx).finding.endswith("It is not zero.")
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aiscale.report.context import (
    Context,
    Section,
    cost_of,
    guarded,
    kept_for,
    priced_facts,
    unknown_cost,
    why_not,
)
from aiscale.report.cost_bounds import bounds_note
from aiscale.report.shared_calls import calls_of

GOF_BOOTSTRAP_MAX_N = 5_000


@guarded("Cost distribution")
def cost_distribution(ctx: Context) -> Section:
    """Fitted per-trace cost distribution, tail index and predictability (p99/p50 with CI)."""
    import aiscale

    cost, column = cost_of(ctx.facts)
    values = cost[cost > 0]
    if len(values) < 10:
        return why_not(f"Too few priced traces ({len(values)}) to fit a cost distribution.")
    bootstrap = 49 if len(values) <= GOF_BOOTSTRAP_MAX_N else 0
    fits = aiscale.fit_distribution(values.to_numpy(), gof_bootstrap=bootstrap, seed=0)
    pred = aiscale.predictability(ctx.facts.assign(_cost=cost), column="_cost", by=None,
                                  metrics=["p50", "p99", "p99/p50"]).summary()
    ratio = pred.set_index("metric").loc["p99/p50"] if "p99/p50" in set(pred["metric"]) else None
    best = fits.summary().iloc[0]
    finding = f"The best-fitting family for cost per trace ({column}) is {best['family']}"
    if ratio is not None:
        finding += (f"; p99 is {ratio['estimate']:.1f}× the median "
                    f"(95% CI {ratio['ci_low']:.1f}–{ratio['ci_high']:.1f})")
    try:
        tail = aiscale.tail_index(values.to_numpy(), scan=()).summary().iloc[0]  # no stability refits
        finding += f"; tail index {tail['xi']:.2f}, finite variance: {tail['finite_variance']}"
    except ValueError:
        finding += "; too few large traces to estimate the tail"
    note = ("Goodness of fit: KS with a parametric-bootstrap p-value." if bootstrap else
            f"Goodness of fit: KS distance only; with {len(values):,} traces every family is rejected "
            "by a test, so the bootstrap p-value is skipped (AIC ranks the families).")
    figure = fits.plot()
    figure.set_xlabel(f"cost per trace (USD, {column})")
    return Section(finding + ".", figure=figure, table=fits.summary().round(4), note=f"{note} {bounds_note(ctx)}".strip())


@guarded("Token distribution")
def token_distribution(ctx: Context, *, max_output_tokens: int | None = None) -> Section:
    """Fitted distribution of output tokens per trace, right-censored at a ``max_tokens`` cap."""
    import aiscale

    values = ctx.facts["output_tokens"].astype(float)
    values = values[values > 0]
    if len(values) < 10:
        return why_not(f"Too few traces with output token counts ({len(values)}) to fit a distribution.")
    bootstrap = 49 if len(values) <= GOF_BOOTSTRAP_MAX_N else 0
    fits = aiscale.fit_distribution(values.to_numpy(), max_tokens=max_output_tokens,
                                    gof_bootstrap=bootstrap, seed=0)
    best = fits.summary().iloc[0]
    censored = int((values >= max_output_tokens).sum()) if max_output_tokens else 0
    finding = (f"Output tokens per trace: median {values.median():,.0f}, p99 {values.quantile(0.99):,.0f}; "
               f"best fit {best['family']}")
    if max_output_tokens:
        finding += (f", with the {censored:,} traces at the {max_output_tokens:,}-token cap treated as "
                    "right-censored (their true length is at least the cap)")
    figure = fits.plot()
    figure.set_xlabel("output tokens per trace")
    return Section(finding + ".", figure=figure, table=fits.summary().round(4))


@guarded("Cost attribution")
def attribution(ctx: Context) -> Section:
    """Where the money went: cost by model (from the priced LLM calls) and spend on failed traces.

    The model table covers exactly the traces the spend total counts: traces priced by
    aiscale are split by model from their LLM calls (priced with the report's price sheet,
    as the facts are); traces whose cost is the source's own are one row, not split; traces
    of unknown cost are listed with their calls and no cost. The table sums to the spend total.
    """
    import aiscale

    if (unknown := unknown_cost(ctx, "Cost attribution")) is not None:
        return unknown
    cost, _ = cost_of(ctx.facts)
    by_outcome = aiscale.cost_attribution(priced_facts(ctx.facts), by="outcome").summary()
    failed = by_outcome.set_index("outcome")["cost_usd"].get("failed", np.nan)
    total = cost.sum(min_count=1)
    table, finding = by_outcome, "Spend by outcome"
    calls = _llm_calls_of(ctx)
    if calls is not None and len(calls):
        table = model_attribution(ctx.facts, calls)
        known = table.dropna(subset=["cost_usd"])
        top = known.sort_values("cost_usd", ascending=False).iloc[0] if len(known) else None
        if top is not None:
            finding = f"{top['model']} takes the most spend (${top['cost_usd']:,.2f} of ${total:,.2f})"
    if total > 0 and np.isfinite(failed):
        finding += f"; {failed / total:.0%} of spend went to traces that failed"
    unknown_n = int(cost.isna().sum())
    note = (f"{unknown_n:,} traces of unknown cost are not counted (not zero). " if unknown_n else "") + bounds_note(ctx)
    data = {"cost_total": total, "attribution_total": table["cost_usd"].sum(min_count=1)}
    return Section(finding + ".", table=table, note=note, data=data)


def _llm_calls_of(ctx: Context) -> pd.DataFrame | None:
    """The priced LLM calls attribution splits: a store's kept calls (read once for every spend
    section, priced with the report's sheet, as the spans are), else the context's LLM spans."""
    if kept_for(ctx):
        return calls_of(ctx, prices=ctx.prices)
    if ctx.spans is None:
        return None
    return ctx.spans.loc[(ctx.spans["kind"] == "llm").to_numpy(dtype=bool, na_value=False)]


def model_attribution(facts: pd.DataFrame, spans: pd.DataFrame) -> pd.DataFrame:
    """Cost per model over the traces the spend total counts (see :func:`attribution`).

    ``spans`` are spans (their ``kind == "llm"`` rows are read) or priced LLM calls (no ``kind``).
    """
    from aiscale.analysis._result import trace_cost
    from aiscale.analysis.loops.calls import positions

    _, source = trace_cost(facts)
    columns = [c for c in ("trace_id", "model", "span_id", "cost_usd") if c in spans.columns]
    llm = (spans.loc[(spans["kind"] == "llm").to_numpy(dtype=bool, na_value=False), columns]
           if "kind" in spans.columns else spans[columns])
    # each call's trace source, by one hash lookup of its trace among the facts' traces
    at = positions(llm["trace_id"], facts["trace_id"])
    # each call's trace source as a small code (1 aiscale, 2 unknown, 0 other or no trace)
    code = np.append(np.select([source == "cost_usd", source == ""], [1, 2], 0), 0).astype(np.int8)[at]
    by_aiscale = llm if (code == 1).all() else llm.loc[code == 1]  # all of them: no copy
    rows = (by_aiscale.groupby("model", dropna=False)
            .agg(calls=("span_id", "size"), cost_usd=("cost_usd", lambda c: c.sum(min_count=1)))
            .reset_index().assign(priced_by="aiscale"))
    reported = facts.loc[(source == "reported_cost_usd")]
    if len(reported):
        rows.loc[len(rows)] = {"model": "(the source's reported cost, not split by model)",
                               "calls": int(reported["n_llm_calls"].fillna(0).sum()),
                               "cost_usd": float(reported["reported_cost_usd"].sum()), "priced_by": "source"}
    unknown = llm.loc[code == 2]
    if len(unknown):
        extra = unknown.groupby("model", dropna=False).size().rename("calls").reset_index()
        rows = pd.concat([rows, extra.assign(cost_usd=np.nan, priced_by="unknown (trace not counted)")],
                         ignore_index=True)
    rows["cost_share"] = rows["cost_usd"] / rows["cost_usd"].sum(min_count=1)
    return rows.sort_values("cost_usd", ascending=False, na_position="last").reset_index(drop=True)
