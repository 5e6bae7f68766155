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

import numpy as np
import pandas as pd

from aiscale.report.context import (
    MIN_GROUP,
    Context,
    Section,
    guarded,
    priced_facts,
    unknown_cost,
    why_not,
)
from aiscale.report.cost_bounds import bounds_note


def _known_outcomes(facts: pd.DataFrame) -> pd.DataFrame:
    return facts.loc[facts["success"].notna()] if "success" in facts else facts.iloc[:0]


@guarded("Reliability")
def reliability(ctx: Context) -> Section:
    """Success rate per variant with an honest interval, and pass^k where tasks repeat."""
    import aiscale

    facts = _known_outcomes(ctx.facts)
    if facts.empty:
        return why_not("Reliability is unknown: no trace has an outcome (success) in this window.")
    rates = aiscale.success_rate(facts)
    summary = rates.summary()
    table = summary[["variant", "rate", "lower", "upper", "interval", "n_tasks", "n_trials", "n_unknown"]]
    note = "Intervals: " + ", ".join(f"{kind} ({(summary['interval'] == kind).sum()} variants)"
                                      for kind in sorted(set(summary["interval"].astype(str))))
    note += (". Clustered intervals account for repeated trials of a task; Wilson intervals treat one "
             "trial per task as independent")
    big = summary.loc[summary["n_trials"] >= MIN_GROUP]
    rule = f"Headlines use variants with at least {MIN_GROUP} traces with an outcome."
    if big.empty:
        finding = (f"No variant has {MIN_GROUP} or more traces with an outcome "
                   f"(largest: {int(summary['n_trials'].max())}): no headline; the table shows each.")
        return Section(finding, figure=rates.plot(), table=table.round(4), note=rule,
                       data={"headline_n": None, "min_group": MIN_GROUP})
    best = big.sort_values("rate", ascending=False).iloc[0]
    finding = (f"{best['variant']} succeeds {best['rate']:.0%} of the time "
               f"(95% CI {best['lower']:.0%}–{best['upper']:.0%}, {best['interval']}, "
               f"{int(best['n_trials'])} traces)")
    note = f"{note}. {rule}"
    data = {"headline_n": int(best["n_trials"]), "min_group": MIN_GROUP}
    if facts.groupby(["variant", "task_id"]).size().max() <= 1:
        return Section(finding + ".", figure=rates.plot(), table=table.round(4), note=note, data=data)
    passk_result = aiscale.pass_hat_k(facts, n_boot=500)
    passk = passk_result.summary()
    finding += _pass_hat_k_clause(passk.loc[passk["variant"] == best["variant"]])
    wide = passk.pivot_table(index="variant", columns="k", values="estimate").add_prefix("pass^")
    table = table.merge(wide.reset_index(), on="variant", how="left")
    return Section(finding + ".", figure=passk_result.plot(),
                   table=table.round(4), note=note, data=data)


def _pass_hat_k_clause(rows: pd.DataFrame) -> str:
    """The largest k (2 or more) whose pass^k is known for a variant, or why it is unknown."""
    known = rows.loc[rows["estimate"].notna() & (rows["k"] >= 2)]
    if known.empty:
        return "; pass^k is unknown for it: none of its tasks has 2 or more trials with an outcome"
    last = known.iloc[-1]
    return (f"; all {int(last['k'])} trials succeed for only {last['estimate']:.0%} of its "
            f"{int(last['n_tasks'])} tasks with {int(last['k'])} or more trials (pass^k)")


@guarded("Frontier")
def frontier(ctx: Context) -> Section:
    """Cost–success(–latency) Pareto frontier with bootstrap frontier probabilities."""
    import aiscale

    facts = _known_outcomes(ctx.facts)
    if facts.empty:
        return why_not("The frontier needs outcomes (success); none are known in this window.")
    if (unknown := unknown_cost(ctx, "The cost–success frontier")) is not None:
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
    return Section(finding + ".", figure=result.plot(), table=table.round(4), data=data,
                   columns=("variant", "success", "mean_cost", "on_frontier", "p_frontier", "priced"))


@guarded("Latency")
def latency(ctx: Context) -> Section:
    """Latency percentiles per variant with CIs, and the LLM vs tool share of time."""
    import aiscale

    if ctx.facts["latency_s"].notna().sum() == 0:
        return why_not("Latency is unknown: the source has no timestamps.")
    from aiscale.report.loop_table import busy_frame, loops_of

    kept = loops_of(ctx)  # a store's kept busy times: no span is read
    spans, busy = (ctx.spans, None) if kept is None else (None, busy_frame(kept) if len(kept) else None)
    result = aiscale.latency(ctx.facts, spans=spans, busy=busy)
    table = result.summary()
    sizes = ctx.facts.loc[ctx.facts["latency_s"].notna()].groupby("variant").size()
    big = table.loc[table["variant"].map(sizes).fillna(0).to_numpy() >= MIN_GROUP]
    rule = f"Headlines use variants with at least {MIN_GROUP} timed traces."
    rule += (" LLM and tool shares are of the time at least one such call was running (parallel calls "
             "count once)." if spans is not None or busy is not None else
             " LLM and tool shares are summed call time over latency: parallel calls can exceed 1.")
    shares = (dict(zip(table["variant"].astype(str), table["llm_share"], strict=True))
              if "llm_share" in table else {})
    if big.empty:
        return Section(f"No variant has {MIN_GROUP} or more timed traces: no headline; the table shows each.",
                       figure=result.plot(), table=table.round(3), note=rule,
                       data={"headline_n": None, "min_group": MIN_GROUP, "llm_shares": shares})
    slow = big.sort_values("p95", ascending=False).iloc[0]
    finding = (f"{slow['variant']} is slowest at p95: {slow['p95']:,.1f} s (p50 {slow['p50']:,.1f} s, "
               f"{int(sizes[slow['variant']])} traces)")
    if np.isfinite(slow.get("llm_share", np.nan)):
        finding += f"; LLM calls take {slow['llm_share']:.0%} of its time"
    return Section(finding + ".", figure=result.plot(), table=table.round(3), note=rule,
                   data={"headline_n": int(sizes[slow["variant"]]), "min_group": MIN_GROUP,
                         "llm_shares": shares})


@guarded("Forecast")
def forecast(ctx: Context, *, traffic_per_day: float | None, horizon_days: int,
             budget_usd: float | None) -> Section:
    """Spend at a given traffic over the horizon, with intervals and P(spend > budget)."""
    import aiscale

    if (unknown := unknown_cost(ctx, "A spend forecast")) is not None:
        return unknown
    if traffic_per_day is not None and not traffic_per_day > 0:
        return why_not(f"No spend forecast: traffic_per_day must be above 0 traces a day, but "
                       f"{traffic_per_day!r} was given.")
    started = pd.to_datetime(ctx.facts["started_at"], utc=True)
    if started.notna().sum() < 2 and traffic_per_day is None:
        return why_not("A spend forecast needs timestamps (for the current traffic) or traffic_per_day.")
    observed_days = max((started.max() - started.min()).total_seconds() / 86400, 1.0)
    active_days = started.dt.floor("D").nunique()
    if traffic_per_day is None and (active_days < 7 or len(ctx.facts) / observed_days < 1):
        return why_not(f"The current traffic cannot be read from these traces ({len(ctx.facts):,} traces on "
                       f"{active_days} days: a batch or benchmark run, not steady traffic); set "
                       "traffic_per_day to forecast spend.")
    traffic = traffic_per_day if traffic_per_day is not None else len(ctx.facts) / observed_days
    result = aiscale.forecast(priced_facts(ctx.facts), traffic=traffic, days=horizon_days, budget=budget_usd)
    row = result.summary().iloc[0]
    rate = f"{traffic:,.1f}" if traffic >= 0.95 else f"{traffic:.2g}"
    finding = (f"At {rate} traces a day, {horizon_days} days cost ${row['median']:,.2f} "
               f"(95% interval ${row['lower_95']:,.2f}–${row['upper_95']:,.2f})")
    if budget_usd is not None:
        finding += f"; P(spend > ${budget_usd:,.0f}) = {row['p_over_budget']:.0%}"
    return Section(finding + ".", figure=result.plot(), table=result.summary().round(2),
                   note=" ".join([*result.notes, bounds_note(ctx)]).strip())


DRIFT_METRICS = ("cost", "output_tokens_per_call", "input_tokens_per_call", "iterations",
                 "latency_s", "success")


def drift_tests(facts: pd.DataFrame, *, at: pd.Timestamp, alpha: float, pooled: bool = False,
                models: pd.Series | None = None) -> pd.DataFrame:
    """Drift tests per variant (and over all variants with ``pooled``), BH-adjusted together.

    With ``models`` (each trace's main model, indexed by trace_id), a variant whose traces ran
    on several models is also tested per model (``variant / model`` rows): a change on one
    model is not averaged away by the others.

    Per-call token counts are tested beside per-trace totals: they do not move with the
    number of iterations, so a change in what each call produces shows through. Rows that
    could not be tested (too few traces on a side) keep a null p-value.
    """
    import aiscale
    from aiscale.analysis._dists import bh_adjust

    facts = priced_facts(facts)
    calls = facts["n_llm_calls"].astype(float).where(lambda c: c > 0)
    for column in ("output_tokens", "input_tokens"):
        facts[f"{column}_per_call"] = facts[column].astype(float) / calls
    groups = list(facts.groupby("variant", dropna=False))
    if models is not None:
        model = facts["trace_id"].map(models)
        for variant, group in list(groups):
            inside = model.loc[group.index].dropna()
            if inside.nunique() > 1:
                groups += [(f"{variant} / {m}", group.loc[inside.index[inside == m]])
                           for m in sorted(inside.unique())]
    if pooled and len(groups) > 1:
        groups.append(("all variants", facts))
    tables = []
    for variant, group in groups:
        metrics = [m for m in DRIFT_METRICS if m == "cost" or group.get(m, pd.Series()).notna().any()]
        table = aiscale.drift(group, at=at, metrics=metrics, alpha=alpha).summary()
        tables.append(table.assign(variant=variant))
    table = pd.concat(tables, ignore_index=True)
    table["p_value"] = table["p_value"] if "p_value" in table else np.nan
    ok = table["p_value"].notna()
    table["q_value"] = np.nan
    if ok.any():
        table.loc[ok, "q_value"] = bh_adjust(table.loc[ok, "p_value"])
    table["significant"] = table["q_value"] < alpha
    return table


def drift_section(table: pd.DataFrame, *, since: str, alpha: float) -> Section:
    """The finding and table of :func:`drift_tests`: what changed, the tested rows only."""
    tested = table.loc[table["p_value"].notna()]
    if tested.empty:
        return why_not(f"Drift not tested ({since}): no variant has enough traces on both sides.")
    changed = tested.loc[tested["significant"]].sort_values("q_value")
    if changed.empty:
        finding = f"Nothing changed significantly {since} ({len(tested)} tests, FDR {alpha:.0%})."
    else:
        parts = [f"{r.variant} {r.metric} {r.relative_change:+.0%}" for r in changed.itertuples()][:5]
        finding = f"{since[0].upper()}{since[1:]}: " + ", ".join(parts) + f" (FDR {alpha:.0%})."
    columns = ["variant", "metric", "n_a", "n_b", "estimate_a", "estimate_b", "relative_change",
               "test", "p_value", "q_value", "significant"]
    shown = tested[[c for c in columns if c in tested]].sort_values("p_value").head(12).round(4)
    untested = len(table) - len(tested)
    note = f"The {len(shown)} smallest p-values of {len(tested)} tests"
    note += f"; {untested} metric–variant pairs had too few traces to test." if untested else "."
    return Section(finding, table=shown, note=note, data={"tests": len(tested), "untested": untested})


@guarded("Drift")
def drift(ctx: Context, *, alpha: float = 0.05) -> Section:
    """What changed in the last week (or the second half of the window), per variant.

    The p-values of every variant and metric are adjusted together (Benjamini–Hochberg).
    """
    started = pd.to_datetime(ctx.facts["started_at"], utc=True)
    if started.notna().sum() < 20:
        return why_not("Drift needs timestamps on at least 20 traces.")
    last = started.max()
    at = last - pd.Timedelta(days=7) if last - started.min() > pd.Timedelta(days=10) else started.median()
    table = drift_tests(ctx.facts, at=at, alpha=alpha)
    return drift_section(table, since=f"since {at:%Y-%m-%d %H:%M}", alpha=alpha)
