"""Report sections on money over time: spend per day, cache savings, why spend changed,
what-if re-pricing, reported versus computed cost, and latency per call.

Each reads the LLM calls of the report's traces (from the store, with their attributes, or
from the spans in the context) priced with the report's price sheet, and opens with a
one-line finding computed from the result.

Examples
--------
>>> import pandas as pd
>>> from aiscale.report.context import Context
>>> ctx = Context(facts=pd.DataFrame({"trace_id": ["a"], "variant": ["v"]}), spans=None, store=None)
>>> cache(ctx).finding
'Cache savings need LLM spans; this source has per-trace rows only.'
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aiscale.analysis._result import fmt_usd, named_models
from aiscale.report.context import Context, Section, guarded, open_context
from aiscale.report.cost_bounds import bound_words, bounds_note
from aiscale.report.shared_calls import calls_of


@guarded("Spend over time")
def spend_over_time(ctx: Context, *, prices=None, by: str | None = None) -> Section:
    """Spend per day (week when the window is long) by model, stacked; the busiest day."""
    import aiscale
    from aiscale.analysis.spend.calls import cache_reads_billed_as_input, short_output

    calls = calls_of(ctx, prices=prices, parts=True)  # with the rates: which costs are upper bounds
    data, group = (calls, "model") if calls is not None else (ctx.facts, "variant")
    started = pd.to_datetime(ctx.facts["started_at"], utc=True)
    days = (started.max() - started.min()) / pd.Timedelta(days=1) if started.notna().any() else 0
    by = by or ("day" if days <= 62 else "week")
    result = aiscale.spend(data, by=by, group=group, prices=prices, already_priced=calls is not None)
    table = result.summary()
    if table["cost_usd"].notna().sum() == 0:
        return Section(f"Spend over time is unknown: none of the {int(table['calls'].sum()):,} calls "
                       "has a price. It is not zero; add a price sheet.", table=table)
    per_period = table.groupby("period")["cost_usd"].sum(min_count=1)
    top = result.totals().iloc[0]
    total = table["cost_usd"].sum()
    over = calls is not None and bool(cache_reads_billed_as_input(calls).any())
    short = calls is not None and bool((short_output(calls) & calls["priced"].to_numpy(dtype=bool)).any())
    finding = (f"{bound_words(short, over)}${total:,.2f} over {len(per_period)} {by}(s); the costliest {by} was "
               f"{per_period.idxmax():%Y-%m-%d} (${per_period.max():,.2f}); {top[group]} took "
               f"{top['cost_usd'] / total:.0%} of spend")
    unpriced = int(table["unpriced_calls"].sum())
    finding += f"; {unpriced:,} calls have no price (unknown, not counted)." if unpriced else "."
    fig = result.plot(ax=_axes())
    return Section(finding[0].upper() + finding[1:], figure=fig, table=result.totals(), note=" ".join(result.notes))


@guarded("Cache savings")
def cache(ctx: Context, *, prices=None) -> Section:
    """Cache hit rate, dollars saved, what writes cost (5-minute vs 1-hour) and wasted writes."""
    import aiscale

    calls = calls_of(ctx, prices=prices, parts=True)
    if calls is None:
        return Section("Cache savings need LLM spans; this source has per-trace rows only.")
    if calls["input_tokens"].isna().all():
        return Section(f"Cache savings need token counts; none of the {len(calls):,} LLM calls reports "
                       "them (unknown, not zero).")
    result = aiscale.cache_savings(calls, by="model", prices=prices, already_priced=True)
    total = result.summary(by=()).iloc[0]
    if not (total["cache_read_tokens"] or 0) and not (total["cache_write_tokens"] or 0):
        return Section(f"No call in this window read or wrote a prompt cache ({int(total['calls']):,} "
                       "priced calls); caching saved nothing here.")
    writes_known = pd.notna(total["cache_write_tokens"])
    served = f"Prompt caching served {total['hit_rate']:.0%} of input tokens from cache"
    unknown = int(total["unknown_rate_calls"] or 0)
    listed_saved = 0.0  # what the calls at listed rates saved on reads, where some are not listed
    if unknown:  # some savings need a rate nobody lists: say what is known, never a partial total
        listed_saved = result.summary(by=(), known_only=True).iloc[0]["read_savings_usd"] or 0.0
        finding = (f"{served}; {unknown:,} of the {int(total['calls']):,} priced calls read or wrote "
                   "the cache at a model with no listed cache price, so what caching saved is unknown")
        if listed_saved > 0:
            finding += f" (the calls whose rates are listed saved {fmt_usd(listed_saved)} on reads)"
    elif writes_known:
        finding = (f"{served} and saved "
                   f"{fmt_usd(total['net_savings_usd'])} net ({fmt_usd(total['read_savings_usd'])} on reads "
                   f"minus {fmt_usd(total['write_premium_usd'])} paid for writes), "
                   f"{total['savings_share']:.0%} of what the calls would cost uncached")
    else:  # the source records no cache writes: their cost is unknown, not $0
        finding = (f"{served} and saved "
                   f"{fmt_usd(total['read_savings_usd'])} on reads; this source records no cache writes, "
                   "so what writes cost (and the net saving) is unknown")
    if total["wasted_writes"]:
        wasted_usd = total["wasted_write_usd"]
        finding += (f"; {int(total['wasted_writes']):,} writes were never read again in their trace"
                    + (f" ({fmt_usd(wasted_usd)})" if pd.notna(wasted_usd) else " (their cost unknown)"))
    columns = ["model", "calls", "hit_rate", "read_savings_usd", "write_5m_usd", "write_1h_usd",
               "write_premium_usd", "net_savings_usd", "wasted_writes", "wasted_write_usd",
               *(["unknown_rate_calls"] if unknown else [])]
    table = result.summary()
    unrecorded = table["cache_write_tokens"].isna()  # writes unknown: their dollars too
    write_columns = ["write_5m_usd", "write_1h_usd", "write_premium_usd", "net_savings_usd",
                     "wasted_writes", "wasted_write_usd"]
    table[write_columns] = table[write_columns].astype("float64").mask(unrecorded)
    fig = result.plot(ax=_axes()) if not unknown or listed_saved > 0 else None  # else nothing known to draw
    return Section(finding + ".", figure=fig, table=table[columns].round(4),
                   note=" ".join(result.notes))


@guarded("Why spend changed")
def why_spend_changed(ctx: Context, *, store=None, baseline_since=None, baseline_until=None,
                      prices=None) -> Section:
    """Decompose the change from a baseline (default: the window's first half) to the rest."""
    import aiscale

    calls = calls_of(ctx, prices=prices)
    if calls is None:
        return Section("Why spend changed needs LLM spans; this source has per-trace rows only.")
    started = pd.to_datetime(calls.groupby("trace_id")["start_time"].transform("min"), utc=True)
    if baseline_since or baseline_until:
        base = open_context(store, since=baseline_since, until=baseline_until, with_spans=False)
        base_calls = calls_of(base, prices=prices)
        if base_calls is None:
            return Section("The baseline window has no priced LLM calls.")
        calls = pd.concat([base_calls, calls], ignore_index=True).drop_duplicates(["trace_id", "span_id"])
        b_start = started.min()
        windows = ((pd.to_datetime(base_calls["start_time"], utc=True).min(), b_start),
                   (b_start, started.max() + pd.Timedelta(seconds=1)))
    else:
        first, last = started.min(), started.max()
        if last - first < pd.Timedelta(days=2):
            return Section("Why spend changed needs at least two days of traces (or a baseline window).")
        period = (last - first) / 2 if last - first < pd.Timedelta(days=14) else pd.Timedelta(days=7)
        at = last + pd.Timedelta(seconds=1) - period
        windows = ((at - period, at), (at, at + period))
    result = aiscale.spend_change(calls, windows=windows, prices=prices, n_boot=400)
    (a0, a1), (b0, b1) = result.windows
    table = result.summary().assign(group="all variants")
    if len(result.per_group):
        table = pd.concat([table, result.per_group.drop(columns=["cost_a", "cost_b"])], ignore_index=True)
    note = (f"Window a {a0:%Y-%m-%d %H:%M} to {a1:%Y-%m-%d %H:%M}, window b {b0:%Y-%m-%d %H:%M} to "
            f"{b1:%Y-%m-%d %H:%M} UTC. Terms are Shapley values in USD and sum to the change; work "
            "per call is its cost at fixed (first-seen) prices, price the change of rates alone. "
            + " ".join(result.notes))
    return Section(result.sentence(), figure=result.plot(ax=_axes()),
                   table=table[["group", "term", "usd", "lower", "upper", "share_of_change"]].round(4),
                   note=note)


@guarded("What-if re-pricing")
def whatif(ctx: Context, *, models: list[str] | None = None, prices=None) -> Section:
    """The window's calls re-priced as other models (default: each other model it used)."""
    import aiscale

    calls = calls_of(ctx, prices=prices, parts=True)
    if calls is None:
        return Section("What-if re-pricing needs LLM spans; this source has per-trace rows only.")
    used = calls["model"].dropna().value_counts().index.tolist()
    targets = list(models or [])
    if not targets and len(used) > 1:  # the other models used that have a price: re-priced as one, known
        listed = set(calls["model"].loc[calls["priced"].to_numpy(dtype=bool)].dropna().unique())
        targets = [model for model in used[1:] if model in listed][:3]
        if not targets:
            return Section(f"The other models this window used ({named_models(used[1:])}) have no price, so the window "
                           "cannot be re-priced as them; set `whatif_models` to re-price it on another "
                           "model.")
    if not targets:
        return Section(f"Every call used {used[0] if used else 'an unknown model'}; set `whatif_models` "
                       "to re-price the window on another model.")
    result = aiscale.whatif(calls, _as_used(calls, targets), prices=prices, n_boot=400, already_priced=True)
    t = result.summary()
    actual = t.iloc[0]
    best = t.iloc[1:].sort_values("total_usd").iloc[0]
    interval = (f" (95% CI {fmt_usd(best['total_lower'])}–{fmt_usd(best['total_upper'])})"
                if pd.notna(best["total_lower"]) else "")  # none around an unknown total
    finding = (f"The window's calls cost {fmt_usd(actual['total_usd'])}; priced as "
               f"{best['scenario'].removeprefix('as ')} they would cost {fmt_usd(best['total_usd'])}"
               f"{interval}, with token counts kept as they are.")
    columns = ["scenario", "unpriced_calls", "total_usd", "total_lower", "total_upper", "change_usd",
               "mean_usd", "p95_usd"]
    return Section(finding, figure=result.plot(ax=_axes()), table=t[columns].round(4),
                   note=" ".join([*result.notes, bounds_note(ctx)]).strip())


def _as_used(calls: pd.DataFrame, targets: list[str]) -> dict[str, dict]:
    """What-if scenarios re-pricing every call as each target; a target this window used with
    one provider is priced as that provider prices it here (as its own calls are)."""
    pairs = calls.loc[calls["model"].isin(targets), ["model", "provider"]].drop_duplicates()
    single = pairs.loc[~pairs["model"].duplicated(keep=False) & pairs["provider"].notna()]
    providers = dict(zip(single["model"], single["provider"], strict=True))
    return {f"as {model}": {"as": model, **({"provider": providers[model]} if model in providers else {})}
            for model in targets}


@guarded("Reported versus computed cost")
def reported_vs_computed(ctx: Context, *, threshold: float = 0.01, prices=None) -> Section:
    """Per model, the gap between the cost the source reported and aiscale's price, when large."""
    import aiscale

    calls = calls_of(ctx, prices=prices)
    if calls is None or calls["reported_cost_usd"].notna().sum() == 0:
        return Section("The source reports no cost of its own: nothing to reconcile.")
    table = aiscale.reconcile(calls, prices=prices, already_priced=True).summary()
    big = table.loc[table["gap_pct"].abs() > 100 * threshold]
    if big.empty:
        return Section(f"Reported and computed cost agree within {threshold:.0%} for every model "
                       f"({fmt_usd(table['reported_usd'].sum())} reported).", table=table.round(6))
    worst = big.reindex(big["gap_usd"].abs().sort_values(ascending=False).index).iloc[0]
    finding = (f"{len(big)} model(s) differ by more than {threshold:.0%}: {worst['model']} reported "
               f"{fmt_usd(worst['reported_usd'])} against {fmt_usd(worst['aiscale_usd'])} computed "
               f"({worst['gap_pct']:+.1f}%).")
    return Section(finding, table=big.round(6), note="Gap = reported minus aiscale's price from tokens.")


@guarded("Latency per call")
def call_latency(ctx: Context) -> Section:
    """Time to first token and output tokens per second per model."""
    import aiscale

    calls = calls_of(ctx)  # a store's calls carry their time to first token (ttft_s)
    if calls is None or calls["end_time"].notna().sum() == 0:
        return Section("Latency per call needs LLM spans with end times.")
    short = (calls["output_lower_bound"].to_numpy(dtype=bool, na_value=False)
             if "output_lower_bound" in calls else np.zeros(len(calls), dtype=bool))
    result = aiscale.call_latency(calls.loc[~short] if short.any() else calls, n_boot=300)
    notes = list(result.notes)
    if short.any():
        notes.append(f"{int(short.sum()):,} calls whose logged output token counts are lower bounds "
                     "(short of their content) are left out.")
    t = result.summary()
    enough = t.loc[(t["calls"] >= MIN_CALLS) & t["tokens_per_s_p50"].notna()]
    if enough.empty:  # too few calls of any model to say which is slowest
        return Section(f"No model has {MIN_CALLS} or more timed calls: no headline; the table shows each.",
                       figure=result.plot(ax=_axes()), table=t.round(3), note=" ".join(notes))
    slow = enough.sort_values("tokens_per_s_p50").iloc[0]
    rate = slow["tokens_per_s_p50"]
    shown = f"{rate:,.0f}" if rate >= 10 else f"{rate:.2g}"  # a slow rate keeps its digits
    finding = f"{slow['model']} is the slowest model: {shown} output tokens/s at the median ({slow['rate']})"
    if np.isfinite(slow["ttft_p50"]):
        finding += f", first token after {slow['ttft_p50']:.2f} s (p95 {slow['ttft_p95']:.2f} s)"
    if rate < 1:  # no model streams this slowly: the output counts are short of the output
        finding += ("; below 1 token/s, this source's output token counts look incomplete (e.g. the "
                    "count at the start of a streamed response), so rates and output costs are low")
    return Section(finding + ".", figure=result.plot(ax=_axes()), table=t.round(3),
                   note=" ".join(notes))


MIN_CALLS = 10
"""Calls a model needs before the latency section names it the slowest."""


def _axes():
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7, 3.5))[1]
