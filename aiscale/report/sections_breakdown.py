"""Report section: spend per model, per project and per day, from the priced LLM calls.

Coding-agent users ask where their money went the way ccusage answers it: which model, which
project (repository), which day. :func:`spend_by` answers one of the three as a table (traces,
calls, tokens, cost, share, unpriced calls) with a one-line finding. A call whose model has no
price is counted and its cost shown as unknown, never as $0; a group with no priced call has
an unknown cost. The groups sum to the trace facts' ``cost_usd`` total; where a trace mixes
priced and unpriced calls (its cost is then unknown), the section says how much priced spend
those traces hold beside the total.

Examples
--------
>>> import pandas as pd
>>> from aiscale.report.context import Context
>>> spans = pd.DataFrame({"trace_id": ["a", "b"], "span_id": ["1", "1"], "kind": "llm",
...     "provider": "openai", "model": ["gpt-4o-2024-08-06", "my-llama"],
...     "start_time": pd.to_datetime(["2025-01-01", "2025-01-02"], utc=True),
...     "input_tokens": [1_000_000, 5], "output_tokens": [0, 5]})
>>> facts = pd.DataFrame({"trace_id": ["a", "b"], "variant": ["v", "v"], "cost_usd": [2.5, None]})
>>> spend_by(Context(facts=facts, spans=spans, store=None), by="model").finding
'gpt-4o-2024-08-06 took $2.50 (100%) of $2.50 over 2 models. 1 call has no price (my-llama): its cost is unknown, not $0.'
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from aiscale.analysis._result import check_choice, fmt_usd
from aiscale.report.context import Context, Section, empty_section, guarded, why_not
from aiscale.report.cost_bounds import bounds_note
from aiscale.report.shared_calls import calls_of

Breakdown = Literal["model", "project", "day"]
_UNLABELLED = {"model": "(model unknown)", "project": "(no project)", "day": "(time unknown)"}


def spend_breakdowns(ctx: Context, *, prices=None) -> list[Section]:
    """Spend per model, per project and per UTC day: three sections, the priced calls read once."""
    if (empty := empty_section(ctx)) is not None:
        return [empty]
    calls = calls_of(ctx, prices=prices)
    return [spend_by(ctx, by=by, prices=prices, calls=calls) for by in ("model", "project", "day")]


@guarded("Spend breakdown")
def spend_by(ctx: Context, *, by: Breakdown = "model", prices=None,
             calls: pd.DataFrame | None = None) -> Section:
    """Spend per model, per project or per UTC day, with unpriced calls counted, never $0.

    ``calls`` are the context's priced calls when already read (:func:`calls_of`).
    """
    check_choice("by", by, list(_UNLABELLED))
    calls = calls if calls is not None else calls_of(ctx, prices=prices)
    if calls is None:
        return why_not(f"Spend per {by} needs LLM spans; this source has per-trace rows only.")
    if by == "project" and ("project" not in calls or calls["project"].isna().all()):
        return why_not("Spend per project is not shown: these traces record no project (Claude Code and "
                       "Codex sessions do, in their metadata; other sources can put `project` in the "
                       "trace metadata).")
    table = breakdown(calls, by)
    facts_total = (ctx.facts["cost_usd"].astype(float).sum(min_count=1)
                   if "cost_usd" in ctx.facts else np.nan)
    priced_total = table["cost_usd"].sum(min_count=1)
    if np.isnan(priced_total):
        return why_not(f"Spend per {by} is unknown: none of the {int(table['calls'].sum()):,} calls has a "
                       "price. It is not zero; add a price sheet.")
    finding = _headline(table, by, priced_total)
    mixed = priced_total - (0.0 if np.isnan(facts_total) else facts_total)
    if abs(mixed) >= 0.005:
        finding += (f" {_usd(mixed)} of it is in traces that also have unpriced calls, so their cost "
                    f"(and the facts' total, {_usd(facts_total)}) leaves it out.")
    finding += _unpriced(calls, table, by)
    data = {"by": by, "total_usd": priced_total, "facts_total_usd": facts_total,
            "groups": dict(zip(table[by].astype(str), table["cost_usd"], strict=True)),
            "unpriced_calls": int(table["unpriced_calls"].sum()), "calls": int(table["calls"].sum())}
    return Section(finding, table=table.round({"cost_usd": 4, "share": 4}), data=data, note=bounds_note(ctx),
                   columns=(by, "traces", "calls", "cost_usd", "share", "unpriced_calls"))


def breakdown(calls: pd.DataFrame, by: Breakdown) -> pd.DataFrame:
    """One row per model, project or UTC day of priced calls: traces, calls, tokens, cost, share.

    ``cost_usd`` sums the priced calls (null when a group has none); ``share`` is of the
    priced total; ``unpriced_calls`` counts calls whose cost is unknown.
    """
    from aiscale.analysis.spend.over_time import group_sums
    from aiscale.facts.window import utc_day_labels

    if by == "day":
        key = utc_day_labels(calls["start_time"])
    else:
        key = calls[by].astype("string")
    work = calls.assign(**{by: key.fillna(_UNLABELLED[by]), "_n": 1})
    table = group_sums(work, [by], count="_n", traces="trace_id",
                       unpriced=(~calls["priced"].astype(bool)).astype(int))
    table.insert(table.columns.get_loc("unpriced_calls"), "share",
                 table["cost_usd"] / table["cost_usd"].sum(min_count=1))
    if by != "day":
        table = table.sort_values(["cost_usd", "calls"], ascending=False, na_position="last")
    return table.reset_index(drop=True)


def _headline(table: pd.DataFrame, by: str, total: float) -> str:
    priced = table.loc[table["cost_usd"].notna()]
    top = priced.loc[priced["cost_usd"].idxmax()]
    labelled = int((table[by] != _UNLABELLED[by]).sum())
    if by == "day":
        return (f"{_usd(total)} over {labelled:,} day(s) with calls (UTC); the costliest day was "
                f"{top['day']} ({_usd(top['cost_usd'])}, {top['share']:.0%}), the median day "
                f"{_usd(priced['cost_usd'].median())}.")
    return (f"{top[by]} took {_usd(top['cost_usd'])} ({top['share']:.0%}) of {_usd(total)} over "
            f"{labelled:,} {by}s.")


def _unpriced(calls: pd.DataFrame, table: pd.DataFrame, by: str) -> str:
    unpriced = int(table["unpriced_calls"].sum())
    if not unpriced:
        return ""
    models = calls.loc[~calls["priced"].astype(bool), "model"].astype("string").fillna("model unknown")
    names = sorted(models.unique())
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    if unpriced == 1:
        return f" 1 call has no price ({shown}): its cost is unknown, not $0."
    return f" {unpriced:,} calls have no price ({shown}): their cost is unknown, not $0."


def _usd(value: float) -> str:
    """Dollars with cents; amounts under a cent with two significant digits (never '$0.00')."""
    if pd.notna(value) and 0 < abs(value) < 0.01:
        return f"${value:.2g}"
    return fmt_usd(value)
