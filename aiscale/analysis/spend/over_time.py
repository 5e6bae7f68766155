"""What was spent per day (week, month) and on what: a tidy table and a stacked-area figure.

:func:`spend` groups priced LLM calls (from a store or a spans frame) by period and by a
label (model, variant, session, project, user, provider), or trace facts by period and a
trace column. Each row counts traces, calls, the five token sums, the cost of the priced
calls and the unpriced calls. Unknown stays unknown: a group whose calls have no price
has a null cost (never $0) and its calls are counted as unpriced; a token kind no call
reported is null.

Examples
--------
>>> import pandas as pd
>>> spans = pd.DataFrame({"trace_id": ["a", "b", "c"], "kind": "llm", "provider": "openai",
...     "model": ["gpt-4o-2024-08-06", "gpt-4o-2024-08-06", "my-llama"],
...     "start_time": pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-02"], utc=True),
...     "input_tokens": [1_000_000, 2_000_000, 5], "output_tokens": [0, 0, 5]})
>>> spend(spans).summary()[["period", "model", "calls", "cost_usd", "unpriced_calls"]]
      period              model  calls  cost_usd  unpriced_calls
0 2025-01-01  gpt-4o-2024-08-06      1       2.5               0
1 2025-01-02  gpt-4o-2024-08-06      1       5.0               0
2 2025-01-02           my-llama      1       NaN               1
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from aiscale.analysis._result import (
    ResultDisplay,
    check_choice,
    check_columns,
    fmt_usd,
    named_models,
    new_axes,
)
from aiscale.analysis.spend.calls import (
    TOKENS,
    PriceSheet,
    cache_reads_billed_as_input,
    is_store,
    llm_calls,
    short_output,
)
from aiscale.facts.window import in_window

__all__ = ["Spend", "spend"]

Period = Literal["day", "week", "month"]
_FREQ = {"day": "D", "week": "W-SUN", "month": "M"}


@dataclass(frozen=True, eq=False, repr=False)
class Spend(ResultDisplay):
    """Spend per period and group: traces, calls, tokens by kind, cost, unpriced calls."""

    table: pd.DataFrame = field(repr=False)
    by: str
    group: str
    unit: str
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        t = self.table
        return (f"<aiscale.Spend: {len(t['period'].unique())} {self.by}s, {t[self.group].nunique()} "
                f"{self.group}s, {fmt_usd(t['cost_usd'].sum(min_count=1))} priced, "
                f"{int(t['unpriced_calls'].sum())} unpriced {self.unit}s>")

    def summary(self) -> pd.DataFrame:
        """One row per (period, group), in time order."""
        return self.table.copy()

    def frame(self) -> pd.DataFrame:
        """The same tidy table (the data behind the figure)."""
        return self.table.copy()

    def totals(self) -> pd.DataFrame:
        """One row per group over the whole window, costliest first."""
        t = self.table
        g = t.groupby(self.group, dropna=False)
        out = g[["calls", "unpriced_calls"]].sum()
        out["cost_usd"] = g["cost_usd"].sum(min_count=1)
        return out.sort_values("cost_usd", ascending=False).reset_index()

    def plot(self, ax=None, **kwargs):
        """Stacked area of priced cost per period, one layer per group (costliest at the bottom)."""
        ax = new_axes(ax)
        wide = self.table.pivot_table(index="period", columns=self.group, values="cost_usd",
                                      aggfunc="sum", dropna=False).fillna(0.0)
        wide = wide[wide.sum().sort_values(ascending=False).index]
        if len(wide):
            ax.stackplot(wide.index, wide.to_numpy().T, labels=[str(c) for c in wide.columns],
                         step="post" if len(wide) == 1 else None, **kwargs)
            ax.legend(fontsize="x-small", loc="upper left", ncols=2)
        ax.set(xlabel=self.by, ylabel="cost (USD, priced calls)")
        ax.tick_params(axis="x", rotation=30)
        return ax


def spend(data, *, by: Period = "day", group: str = "model", since=None, until=None,
          prices: PriceSheet = None, already_priced: bool = False) -> Spend:
    """Spend per period and group, with unpriced calls counted, never priced at $0.

    Parameters
    ----------
    data : TraceStore, spans DataFrame or facts DataFrame
        A store or LLM spans (one row per call; ``group`` may be any call column or a
        trace label: model, provider, variant, session_id, user_id, task_id, project), or
        trace facts (one row per trace; ``group`` a facts column such as variant).
    by : {"day", "week", "month"}, default="day"
        The period (UTC; weeks start on Monday).
    group : str, default="model"
        What to split spend by; "session" means ``session_id``, "user" ``user_id``.
    since, until : str or Timestamp, optional
        The window ``[since, until)``.
    prices : path or DataFrame, optional
        A price sheet that wins over genai-prices (spans and stores only).
    already_priced : bool, default=False
        ``data`` holds calls :func:`~aiscale.analysis.spend.calls.llm_calls` already priced
        with the same ``prices``: they are not priced again (same result, faster).

    Returns
    -------
    Spend
        ``summary()`` tidy table; ``totals()`` per group; ``plot()`` stacked area.
    """
    check_choice("by", by, list(_FREQ))
    group = {"session": "session_id", "user": "user_id", "task": "task_id"}.get(group, group)
    if isinstance(data, pd.DataFrame) and "started_at" in data.columns and "model" not in data.columns:
        return _from_facts(data, by, group, since, until)
    if not (is_store(data) or isinstance(data, pd.DataFrame)):
        raise TypeError(f"`data` must be a TraceStore or a DataFrame, but {type(data).__name__} "
                        "was passed.")
    calls = llm_calls(data, prices=prices, since=since, until=until, parts=True, already_priced=already_priced)
    check_columns(calls, [group], "calls")
    table = _aggregate(calls.assign(n=1), "start_time", by, group, count="n", traces="trace_id",
                       unpriced=(~calls["priced"]).astype(int))
    return Spend(table, by, group, "call",
                 (*_notes(table, "call"), *_short_output_note(calls), *_billed_as_input_note(calls)))


def _from_facts(facts: pd.DataFrame, by, group, since, until) -> Spend:
    check_columns(facts, ["started_at", "cost_usd", group])
    facts = facts.loc[in_window(facts["started_at"], since, until)]
    calls = pd.to_numeric(facts.get("n_llm_calls", pd.Series(np.nan, index=facts.index)))
    unpriced = pd.to_numeric(facts.get("unpriced_llm_calls", pd.Series(0, index=facts.index)))
    frame = facts.assign(n=calls, _unpriced=unpriced.fillna(0).astype(int))
    table = _aggregate(frame, "started_at", by, group, count="n", traces="trace_id",
                       unpriced=frame["_unpriced"])
    return Spend(table, by, group, "call", _notes(table, "call"))


def _aggregate(frame: pd.DataFrame, time: str, by: str, group: str, *, count: str, traces: str,
               unpriced: pd.Series) -> pd.DataFrame:
    started = pd.to_datetime(frame[time], utc=True)
    period = started.dt.tz_localize(None).dt.to_period(_FREQ[by]).dt.start_time
    return group_sums(frame.assign(period=period), ["period", group], count=count, traces=traces,
                      unpriced=unpriced)


def group_sums(frame: pd.DataFrame, keys: list[str], *, count: str, traces: str,
               unpriced: pd.Series) -> pd.DataFrame:
    """Per group of ``keys``: traces, calls (``count`` summed), token sums, cost, unpriced calls.

    Sums of a group with no known value are null (unknown), never 0: ``cost_usd`` sums the
    priced rows only and ``unpriced_calls`` counts the rest.
    """
    work = frame.assign(_unpriced=np.asarray(unpriced), _cost=frame["cost_usd"].astype(float))
    g = work.groupby(keys, dropna=False, sort=True)
    out = pd.DataFrame({
        "traces": g[traces].nunique() if traces in work.columns else g.size(),
        "calls": g[count].sum(min_count=1).astype("Int64"),
    })
    for column in TOKENS:
        if column in work.columns:
            out[column] = g[column].sum(min_count=1).astype("Int64")
    out["cost_usd"] = g["_cost"].sum(min_count=1)
    out["unpriced_calls"] = g["_unpriced"].sum().astype(int)
    return out.reset_index()


def _notes(table: pd.DataFrame, unit: str) -> tuple[str, ...]:
    unpriced = int(table["unpriced_calls"].sum())
    if not unpriced:
        return ()
    return (f"{unpriced:,} {unit}(s) have no price: their cost is unknown and left out of the "
            "totals (not $0); add a price sheet for their models.",)


def _billed_as_input_note(calls: pd.DataFrame) -> tuple[str, ...]:
    """Say how many priced calls read the cache at a model with no listed cache-read price
    (:func:`~aiscale.analysis.spend.calls.cache_reads_billed_as_input`): their cost is an upper bound."""
    billed = cache_reads_billed_as_input(calls)
    if not billed.any():
        return ()
    return (f"{int(billed.sum()):,} calls ({named_models(calls['model'].to_numpy()[billed])}) read the cache at a "
            "model with no listed cache-read price: their reads are billed at the input price, so their "
            "cost is an upper bound.",)


def _short_output_note(calls: pd.DataFrame) -> tuple[str, ...]:
    """Say how many calls logged an output count short of their content (:func:`short_output`)."""
    short = short_output(calls)
    if not short.any():
        return ()
    return (f"{int(short.sum()):,} of {len(calls):,} calls logged an output token count short of their "
            f"content (the count at a streamed response's start, {named_models(calls['model'].to_numpy()[short])}): "
            "their output tokens, and so their cost, are lower bounds.",)
