"""Report sections built on the analyses: fits, loops, reliability, frontier, forecast, drift.

Each returns a :class:`~aiscale.report.context.Section` whose finding is computed from the result;
when the data cannot support an analysis (no outcomes, no cost, too few traces) the
section says why instead of failing the report.

Examples
--------
>>> import pandas as pd
>>> from aiscale.report.context import Context
>>> ctx = Context(facts=pd.DataFrame({"variant": ["a"], "success": [None]}), spans=None, store=None)
>>> reliability(ctx).finding
'Reliability is unknown: no trace has an outcome (success) in this window.'
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pandas as pd

from aiscale.report.context import Context, Section, cost_of, empty_section, priced_facts, why_not


def guarded(title: str) -> Callable:
    """Turn a section's ValueError into a section that states why it was not computed."""

    def wrap(fn: Callable[..., Section]) -> Callable[..., Section]:
        @functools.wraps(fn)
        def run(ctx: Context, *args, **kwargs) -> Section:
            if (empty := empty_section(ctx)) is not None:
                return empty
            try:
                return fn(ctx, *args, **kwargs)
            except ValueError as exc:
                return why_not(f"{title} not computed: {exc}")
        return run
    return wrap


def _unknown_cost(ctx: Context, what: str) -> Section | None:
    """A section saying cost is unknown (never zero) when no trace has a cost."""
    if cost_of(ctx.facts)[1] != "none":
        return None
    calls = int(ctx.facts["n_llm_calls"].fillna(0).sum()) if "n_llm_calls" in ctx.facts else 0
    detail = f" ({calls:,} LLM calls without a price or token counts)" if calls else ""
    return why_not(f"{what} needs cost, and cost is unknown for all {len(ctx.facts):,} traces"
                   f"{detail}. It is not zero.")


def _known_outcomes(facts: pd.DataFrame) -> pd.DataFrame:
    return facts.loc[facts["success"].notna()] if "success" in facts else facts.iloc[:0]


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
    pred = aiscale.predictability(ctx.facts.assign(_cost=cost), column="_cost", by=None).summary()
    ratio = pred.set_index("metric").loc["p99/p50"] if "p99/p50" in set(pred["metric"]) else None
    best = fits.summary().iloc[0]
    finding = f"The best-fitting family for cost per trace ({column}) is {best['family']}"
    if ratio is not None:
        finding += (f"; p99 is {ratio['estimate']:.1f}× the median "
                    f"(95% CI {ratio['ci_low']:.1f}–{ratio['ci_high']:.1f})")
    try:
        tail = aiscale.tail_index(values.to_numpy()).summary().iloc[0]
        finding += f"; tail index {tail['xi']:.2f}, finite variance: {tail['finite_variance']}"
    except ValueError:
        finding += "; too few large traces to estimate the tail"
    note = ("Goodness of fit: KS with a parametric-bootstrap p-value." if bootstrap else
            f"Goodness of fit: KS distance only; with {len(values):,} traces every family is rejected "
            "by a test, so the bootstrap p-value is skipped (AIC ranks the families).")
    return Section(finding + ".", figure=fits.plot(), table=fits.summary().round(4), note=note)


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
    return Section(finding + ".", figure=fits.plot(), table=fits.summary().round(4))


@guarded("Cost attribution")
def attribution(ctx: Context) -> Section:
    """Where the money went: cost by model (from the priced LLM calls) and spend on failed traces.

    The model table covers exactly the traces the spend total counts: traces priced by
    aiscale are split by model from their LLM calls (priced with the report's price sheet,
    as the facts are); traces whose cost is the source's own are one row, not split; traces
    of unknown cost are listed with their calls and no cost. The table sums to the spend total.
    """
    import aiscale

    if (unknown := _unknown_cost(ctx, "Cost attribution")) is not None:
        return unknown
    cost, _ = cost_of(ctx.facts)
    by_outcome = aiscale.cost_attribution(priced_facts(ctx.facts), by="outcome").summary()
    failed = by_outcome.set_index("outcome")["cost_usd"].get("failed", np.nan)
    total = cost.sum(min_count=1)
    table, finding = by_outcome, "Spend by outcome"
    if ctx.spans is not None and (ctx.spans["kind"] == "llm").any():
        table = model_attribution(ctx.facts, ctx.spans)
        known = table.dropna(subset=["cost_usd"])
        top = known.sort_values("cost_usd", ascending=False).iloc[0] if len(known) else None
        if top is not None:
            finding = f"{top['model']} takes the most spend (${top['cost_usd']:,.2f} of ${total:,.2f})"
    if total > 0 and np.isfinite(failed):
        finding += f"; {failed / total:.0%} of spend went to traces that failed"
    unknown_n = int(cost.isna().sum())
    note = (f"{unknown_n:,} traces of unknown cost are not counted (not zero)." if unknown_n else "")
    data = {"cost_total": total, "attribution_total": table["cost_usd"].sum(min_count=1)}
    return Section(finding + ".", table=table, note=note, data=data)


def model_attribution(facts: pd.DataFrame, spans: pd.DataFrame) -> pd.DataFrame:
    """Cost per model over the traces the spend total counts (see :func:`attribution`)."""
    from aiscale.analysis._result import trace_cost

    _, source = trace_cost(facts)
    ids = facts["trace_id"].astype(str)
    llm = spans.loc[spans["kind"] == "llm"].assign(trace_id=lambda s: s["trace_id"].astype(str))
    by_aiscale = llm.loc[llm["trace_id"].isin(ids[source == "cost_usd"])]
    rows = (by_aiscale.groupby("model", dropna=False)
            .agg(calls=("span_id", "size"), cost_usd=("cost_usd", lambda c: c.sum(min_count=1)))
            .reset_index().assign(priced_by="aiscale"))
    reported = facts.loc[(source == "reported_cost_usd")]
    if len(reported):
        rows.loc[len(rows)] = {"model": "(the source's reported cost, not split by model)",
                               "calls": int(reported["n_llm_calls"].fillna(0).sum()),
                               "cost_usd": float(reported["reported_cost_usd"].sum()), "priced_by": "source"}
    unknown = llm.loc[llm["trace_id"].isin(ids[source == ""])]
    if len(unknown):
        extra = unknown.groupby("model", dropna=False).size().rename("calls").reset_index()
        rows = pd.concat([rows, extra.assign(cost_usd=np.nan, priced_by="unknown (trace not counted)")],
                         ignore_index=True)
    rows["cost_share"] = rows["cost_usd"] / rows["cost_usd"].sum(min_count=1)
    return rows.sort_values("cost_usd", ascending=False, na_position="last").reset_index(drop=True)


@guarded("Iteration fit")
def iteration_fit(ctx: Context) -> Section:
    """Loop-iteration distribution: count families ranked by AIC, with a rootogram."""
    import aiscale

    facts = ctx.facts.loc[ctx.facts["iterations"].fillna(0) > 0]
    if len(facts) < 10:
        return why_not(f"Too few traces with iterations ({len(facts)}) to fit a count law.")
    fit = aiscale.fit_iterations(facts)
    best = fit.summary().iloc[0]
    finding = (f"Agents take {facts['iterations'].astype(float).mean():.1f} iterations on average "
               f"(median {facts['iterations'].astype(float).median():.0f}); the count law that fits best is "
               f"{best['family']} (AIC {best['aic']:.1f}).")
    return Section(finding, figure=fit.plot(), table=fit.summary().round(3))


@guarded("Loop pathologies")
def pathologies(ctx: Context) -> Section:
    """Stuck loops (identical tool call repeated) and wasted spend."""
    import aiscale

    if ctx.spans is None:
        return why_not("Loop pathologies need spans; this source has per-trace rows only.")
    facts = priced_facts(ctx.facts)
    stuck = aiscale.stuck_loops(ctx.spans, facts=facts, cost="cost_usd")
    row = stuck.summary().iloc[0]
    finding = (f"{row['n_stuck']:,} of {row['n_traces']:,} traces ({row['share']:.1%}) repeat an identical "
               "call 3+ times in a row")
    if _unknown_cost(ctx, "Wasted spend") is not None:
        return Section(finding + "; their spend is unknown (no cost).", table=stuck.summary())
    wasted = aiscale.wasted_spend(facts, spans=ctx.spans, stuck=stuck).summary()
    finding += (f", holding {row['spend_share']:.1%} of spend; {wasted['share'].iloc[0]:.0%} of spend "
                f"went to {wasted['category'].iloc[0]}.")
    spend = dict(zip(wasted["category"], wasted["spend"], strict=True))
    return Section(finding, table=wasted, data={"cost_total": cost_of(ctx.facts)[0].sum(min_count=1),
                                                "wasted": spend})


@guarded("Loop budget")
def budget(ctx: Context) -> Section:
    """What a loop cap would save or lose: success and cost per cap, knee, best cap."""
    import aiscale

    facts = _known_outcomes(ctx.facts)
    if facts.empty:
        return why_not("A loop budget needs outcomes (success); none are known in this window.")
    if (unknown := _unknown_cost(ctx, "A loop budget")) is not None:
        return unknown
    by_call = cost_of(facts)[1] == "cost_usd"  # spans carry the same prices; else per-trace costs
    result = aiscale.loop_budget(priced_facts(facts), spans=ctx.spans if by_call else None,
                                 cost="cost_usd", n_boot=300)
    points = result.summary().set_index("point")
    knee = points.loc["knee"]
    finding = (f"Capping the loop at {int(knee['cap'])} iterations (the knee) keeps a success rate of "
               f"{knee['success_rate']:.0%} at ${knee['mean_cost']:.4f} per trace.")
    return Section(finding, figure=result.plot(), table=result.summary().round(4))


@guarded("Reliability")
def reliability(ctx: Context) -> Section:
    """Success rate per variant with an honest interval, and pass^k where tasks repeat."""
    import aiscale

    facts = _known_outcomes(ctx.facts)
    if facts.empty:
        return why_not("Reliability is unknown: no trace has an outcome (success) in this window.")
    rates = aiscale.success_rate(facts)
    summary = rates.summary()
    best = summary.sort_values("rate", ascending=False).iloc[0]
    finding = (f"{best['variant']} succeeds {best['rate']:.0%} of the time "
               f"(95% CI {best['lower']:.0%}–{best['upper']:.0%}, {best['interval']})")
    table = summary[["variant", "rate", "lower", "upper", "interval", "n_tasks", "n_trials", "n_unknown"]]
    note = "Interval: " + "; ".join(sorted(set(summary["why"].astype(str))))
    if facts.groupby(["variant", "task_id"]).size().max() <= 1:
        return Section(finding + ".", figure=rates.plot(), table=table.round(4), note=note)
    passk_result = aiscale.pass_hat_k(facts, n_boot=500)
    passk = passk_result.summary()
    last = passk.loc[passk["variant"] == best["variant"]].iloc[-1]
    finding += f"; all {int(last['k'])} trials succeed for only {last['estimate']:.0%} of its tasks (pass^k)"
    wide = passk.pivot_table(index="variant", columns="k", values="estimate").add_prefix("pass^")
    table = table.merge(wide.reset_index(), on="variant", how="left")
    return Section(finding + ".", figure=passk_result.plot(),
                   table=table.round(4), note=note)


@guarded("Frontier")
def frontier(ctx: Context) -> Section:
    """Cost–success(–latency) Pareto frontier with bootstrap frontier probabilities."""
    import aiscale

    facts = _known_outcomes(ctx.facts)
    if facts.empty:
        return why_not("The frontier needs outcomes (success); none are known in this window.")
    if (unknown := _unknown_cost(ctx, "The cost–success frontier")) is not None:
        return unknown
    result = aiscale.frontier(priced_facts(facts), cost="cost_usd", n_boot=300)
    table = result.summary()
    members = table.loc[table["on_frontier"], "variant"].astype(str).tolist()
    finding = f"On the cost–success frontier: {', '.join(members) or 'no priced variant'}"
    dominated = table.loc[~table["on_frontier"] & table["priced"], "variant"].astype(str).tolist()
    if dominated:
        finding += f"; dominated: {', '.join(dominated)}"
    unpriced = table.loc[~table["priced"].astype(bool), "variant"].astype(str).tolist()
    if unpriced:
        finding += (f"; off the cost axis, cost unknown (unpriced, or a reported cost of 0 for calls "
                    f"that used tokens): {', '.join(unpriced)}")
    data = {"unpriced_variants": unpriced,
            "mean_cost": dict(zip(table["variant"].astype(str), table["mean_cost"], strict=True))}
    return Section(finding + ".", figure=result.plot(), table=table.round(4), data=data)


@guarded("Latency")
def latency(ctx: Context) -> Section:
    """Latency percentiles per variant with CIs, and the LLM vs tool share of time."""
    import aiscale

    if ctx.facts["latency_s"].notna().sum() == 0:
        return why_not("Latency is unknown: the source has no timestamps.")
    result = aiscale.latency(ctx.facts)
    table = result.summary()
    slow = table.sort_values("p95", ascending=False).iloc[0]
    finding = f"{slow['variant']} is slowest at p95: {slow['p95']:,.1f} s (p50 {slow['p50']:,.1f} s)"
    if np.isfinite(slow.get("llm_share", np.nan)):
        finding += f"; LLM calls take {slow['llm_share']:.0%} of its time"
    return Section(finding + ".", figure=result.plot(), table=table.round(3))


@guarded("Forecast")
def forecast(ctx: Context, *, traffic_per_day: float | None, horizon_days: int,
             budget_usd: float | None) -> Section:
    """Spend at a given traffic over the horizon, with intervals and P(spend > budget)."""
    import aiscale

    if (unknown := _unknown_cost(ctx, "A spend forecast")) is not None:
        return unknown
    started = pd.to_datetime(ctx.facts["started_at"], utc=True)
    if started.notna().sum() < 2 and traffic_per_day is None:
        return why_not("A spend forecast needs timestamps (for the current traffic) or traffic_per_day.")
    observed_days = max((started.max() - started.min()).total_seconds() / 86400, 1.0)
    traffic = traffic_per_day or len(ctx.facts) / observed_days
    result = aiscale.forecast(priced_facts(ctx.facts), traffic=traffic, days=horizon_days, budget=budget_usd)
    row = result.summary().iloc[0]
    finding = (f"At {traffic:,.0f} traces a day, {horizon_days} days cost ${row['median']:,.2f} "
               f"(95% interval ${row['lower_95']:,.2f}–${row['upper_95']:,.2f})")
    if budget_usd is not None:
        finding += f"; P(spend > ${budget_usd:,.0f}) = {row['p_over_budget']:.0%}"
    return Section(finding + ".", figure=result.plot(), table=result.summary().round(2))


DRIFT_METRICS = ("cost", "output_tokens_per_call", "input_tokens_per_call", "iterations",
                 "latency_s", "success")


@guarded("Drift")
def drift(ctx: Context, *, alpha: float = 0.05) -> Section:
    """What changed in the last week (or the second half of the window), per variant.

    Per-call token counts are tested beside per-trace totals: they do not move with the
    number of iterations, so a change in what each call produces shows through. The p-values
    of every variant and metric are adjusted together (Benjamini–Hochberg).
    """
    from scipy import stats

    import aiscale

    facts = priced_facts(ctx.facts)
    started = pd.to_datetime(facts["started_at"], utc=True)
    if started.notna().sum() < 20:
        return why_not("Drift needs timestamps on at least 20 traces.")
    calls = facts["n_llm_calls"].astype(float).where(lambda c: c > 0)
    for column in ("output_tokens", "input_tokens"):
        facts[f"{column}_per_call"] = facts[column].astype(float) / calls
    last = started.max()
    at = last - pd.Timedelta(days=7) if last - started.min() > pd.Timedelta(days=10) else started.median()
    tables = []
    for variant, group in facts.groupby("variant", dropna=False):
        metrics = [m for m in DRIFT_METRICS if m == "cost" or group.get(m, pd.Series()).notna().any()]
        table = aiscale.drift(group, at=at, metrics=metrics, alpha=alpha).summary()
        tables.append(table.assign(variant=variant))
    table = pd.concat(tables, ignore_index=True)
    ok = table["p_value"].notna()
    table["q_value"] = np.nan
    table.loc[ok, "q_value"] = stats.false_discovery_control(table.loc[ok, "p_value"])
    table["significant"] = table["q_value"] < alpha
    changed = table.loc[table["significant"]]
    if changed.empty:
        finding = (f"Nothing changed significantly since {at:%Y-%m-%d %H:%M} in any variant "
                   f"({len(table)} tests, FDR {alpha:.0%}).")
    else:
        parts = [f"{r.variant} {r.metric} {r.relative_change:+.0%}" for r in changed.itertuples()][:5]
        finding = f"Since {at:%Y-%m-%d %H:%M}: " + ", ".join(parts) + f" (FDR {alpha:.0%})."
    columns = ["variant", "metric", "n_a", "n_b", "estimate_a", "estimate_b", "relative_change",
               "test", "p_value", "q_value", "significant"]
    shown = table[columns].sort_values("p_value").head(12).round(4)
    return Section(finding, table=shown, note=f"The {len(shown)} smallest p-values of {len(table)} tests.")
