"""Token economics over trace facts (or spans): attribution, predictability, drivers.

Distribution fitting lives in :mod:`aiscale.analysis.distributions` and tails in
:mod:`aiscale.analysis.tails`; both are re-exported here. Unknown cost (unpriced or no
tokens) is always counted and shown, never summed as zero.

Examples
--------
>>> import pandas as pd
>>> facts = pd.DataFrame({"variant": ["a", "a", "b"], "cost_usd": [1.0, 3.0, None],
...                       "success": [True, False, None], "unpriced_llm_calls": [0, 0, 4]})
>>> cost_attribution(facts, by="variant").summary()[["variant", "traces", "cost_usd", "unknown_cost"]]
  variant  traces  cost_usd  unknown_cost
0       a       2       4.0             0
1       b       1       NaN             1
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from aiscale.analysis._result import ResultDisplay, check_columns, fmt_usd, new_axes

_TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
           "reasoning_tokens")


@dataclass(frozen=True, repr=False)
class Attribution(ResultDisplay):
    """Cost and tokens by one dimension, with the unknown part counted, never zero."""

    by: str
    table: pd.DataFrame = field(compare=False)
    unit: str
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        total = self.table["cost_usd"].sum(min_count=1)
        unknown = int(self.table["unknown_cost"].sum())
        return (f"<aiscale.Attribution by {self.by}: {len(self.table)} groups, priced "
                f"{fmt_usd(total)}, {unknown} {self.unit}s of unknown cost>")

    def summary(self) -> pd.DataFrame:
        return self.table

    def frame(self) -> pd.DataFrame:
        return self.table

    def plot(self, ax=None, **kwargs):
        """Horizontal bars of priced cost per group (unknown cost is annotated, not drawn as 0)."""
        ax = new_axes(ax)
        t = self.table
        labels = t[self.by].astype(str)
        ax.barh(labels, t["cost_usd"].fillna(0), **kwargs)
        for i, (cost, unknown) in enumerate(zip(t["cost_usd"], t["unknown_cost"], strict=True)):
            if unknown:
                ax.annotate(f"{unknown} unknown" if pd.notna(cost) else "cost unknown",
                            (0 if pd.isna(cost) else cost, i), fontsize="small", va="center")
        ax.set(xlabel="cost (USD)", ylabel=self.by)
        return ax


def _group_key(data: pd.DataFrame, by: str, freq: str) -> pd.Series:
    if by == "outcome":
        check_columns(data, ["success"])
        s = data["success"].astype("boolean")
        return s.map({True: "succeeded", False: "failed"}).fillna("unknown").astype(str)
    if by == "time":
        col = "started_at" if "started_at" in data.columns else "start_time"
        check_columns(data, [col])
        return pd.to_datetime(data[col], utc=True).dt.floor(freq)
    if by == "iteration":
        check_columns(data, ["trace_id", "start_time"])
        order = data.sort_values(["trace_id", "start_time"]).groupby("trace_id").cumcount() + 1
        return order.reindex(data.index)
    check_columns(data, [by])
    return data[by].astype("object").where(data[by].notna(), "(none)")


def cost_attribution(data: pd.DataFrame, *, by: str = "variant", freq: str = "D") -> Attribution:
    """Sum cost and tokens by a dimension; count what has no known cost.

    Parameters
    ----------
    data : pandas.DataFrame
        Trace facts (one row per trace) or priced LLM spans (with ``cost_usd``).
    by : str, default="variant"
        A column (variant, model, kind, tool_name, user_id, session_id, ...), or ``"outcome"``
        (succeeded / failed / unknown), ``"time"`` (buckets of ``freq``) or ``"iteration"``
        (the call's position in its trace; spans only).
    freq : str, default="D"
        Bucket width when ``by="time"``.

    Returns
    -------
    Attribution
        ``summary()``: per group rows, cost_usd (NaN when all unknown), cost_share,
        unknown_cost rows, token sums and cached_input_share.
    """
    check_columns(data, ["cost_usd"])
    unit = "trace" if "n_llm_calls" in data.columns or "trace_id" not in data.columns else "call"
    frame = data.assign(_key=_group_key(data, by, freq).to_numpy(),
                        _unknown=data["cost_usd"].isna().astype(int))
    g = frame.groupby("_key", dropna=False, sort=True)
    table = pd.DataFrame({f"{unit}s": g.size(), "cost_usd": g["cost_usd"].sum(min_count=1),
                          "unknown_cost": g["_unknown"].sum()})
    if "unpriced_llm_calls" in frame.columns:
        table["unpriced_llm_calls"] = g["unpriced_llm_calls"].sum()
    for col in (c for c in _TOKENS if c in frame.columns):
        table[col] = g[col].sum(min_count=1)
    table["cost_share"] = table["cost_usd"] / table["cost_usd"].sum(min_count=1)
    if {"input_tokens", "cache_read_tokens"} <= set(frame.columns):
        table["cached_input_share"] = (table["cache_read_tokens"].astype(float)
                                       / table["input_tokens"].astype(float))
    table = table.reset_index().rename(columns={"_key": by})
    return Attribution(by, table, unit, tuple(_notes(frame, unit)))


def _notes(frame: pd.DataFrame, unit: str) -> list[str]:
    notes = []
    known = frame["cost_usd"].notna()
    if not known.any():
        notes.append(f"Cost unknown for all {len(frame)} {unit}s (no tokens or no price): "
                     "not zero.")
    elif not known.all():
        notes.append(f"Cost unknown for {int((~known).sum())} of {len(frame)} {unit}s; totals "
                     "cover priced ones only.")
    if "success" in frame.columns and known.any():
        failed = frame["success"].astype("boolean").eq(False).fillna(False)
        share = frame.loc[failed, "cost_usd"].sum() / frame["cost_usd"].sum()
        notes.append(f"Share of priced spend in failed {unit}s: {share:.1%}.")
    if {"input_tokens", "cache_read_tokens"} <= set(frame.columns):
        inp = frame["input_tokens"].astype(float).sum()
        if inp > 0:
            cached = frame["cache_read_tokens"].astype(float).sum() / inp
            notes.append(f"Input tokens read from cache: {cached:.1%} (uncached {1 - cached:.1%}).")
    return notes
