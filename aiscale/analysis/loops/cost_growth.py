"""Cost growth per iteration: what the k-th call costs as context accumulates.

From spans, each trace's LLM calls are numbered by iteration in start order (a failed call
counts with the successful call that follows it). Per iteration k the table gives the mean
tokens and cost of the k-th call over traces that reached k (the marginal cost of one more
iteration there), and the mean cumulative cost up to k; per group an OLS line of call cost
on k, with standard errors clustered by trace, gives the growth per extra iteration.

Examples
--------
>>> import pandas as pd
>>> spans = pd.DataFrame({"trace_id": ["a"] * 3 + ["b"] * 2, "span_id": list("12312"),
...                       "kind": "llm", "start_time": pd.to_datetime([1, 2, 3, 1, 2], unit="s"),
...                       "reported_cost_usd": [1.0, 2.0, 3.0, 1.0, 2.0]})
>>> cost_growth(spans).frame()["mean_cum_cost"].tolist()
[1.0, 3.0, 6.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from aiscale.analysis._dists import t_ppf
from aiscale.analysis._result import ResultDisplay, check_columns, new_axes
from aiscale.analysis.loops.calls import llm_calls


@dataclass(frozen=True, repr=False)
class CostGrowth(ResultDisplay):
    """Per-iteration tokens and cost, and the growth of call cost with k, per group.

    Attributes
    ----------
    table : DataFrame
        group, k, n (traces reaching k), mean_input_tokens, mean_output_tokens, mean_cost
        (+ ci), mean_cum_cost (+ ci).
    growth : DataFrame
        group, n_traces, first_call_cost, growth_per_iteration (+ ci): OLS of call cost on k.
    """

    by: str | None
    table: pd.DataFrame
    growth: pd.DataFrame
    level: float

    def __repr__(self) -> str:
        g = self.growth.iloc[0]
        return (f"<CostGrowth: {len(self.growth)} group(s), k = 1..{int(self.table['k'].max())}; "
                f"{g['group']}: +{g['growth_per_iteration']:.3g} USD per call per iteration>")

    def summary(self) -> pd.DataFrame:
        """The fitted growth per group."""
        return self.growth.copy()

    def frame(self) -> pd.DataFrame:
        """The per-iteration table."""
        return self.table.copy()

    def plot(self, ax=None, *, y: Literal["mean_cost", "mean_cum_cost"] = "mean_cum_cost",
             **kwargs):
        """Mean call cost or mean cumulative cost against k, one line per group with CI band."""
        ax = new_axes(ax)
        for group, part in self.table.groupby("group", sort=False):
            line, = ax.plot(part["k"], part[y], label=str(group), **kwargs)
            ax.fill_between(part["k"], part[f"{y}_low"], part[f"{y}_high"], alpha=0.2,
                            color=line.get_color())
        ax.set(xlabel="iteration k", ylabel=y.replace("_", " ") + " (USD)")
        ax.legend()
        return ax


def cost_growth(spans: pd.DataFrame, *, facts: pd.DataFrame | None = None,
                by: str | None = "variant", cost: str | None = None,
                level: float = 0.95) -> CostGrowth:
    """Tokens and cost of the k-th iteration, cumulative cost curves and growth per group.

    Parameters
    ----------
    spans : pandas.DataFrame
        Canonical spans (LLM spans are used).
    facts : pandas.DataFrame, optional
        Trace facts supplying the ``by`` column per trace_id.
    by : str or None, default="variant"
        Group column of ``facts``; ignored (one group) when ``facts`` is None.
    cost : str, optional
        Per-span cost column; default ``cost_usd`` when present, else ``reported_cost_usd``.
    level : float, default=0.95

    Returns
    -------
    CostGrowth
    """
    calls = llm_calls(spans, cost=cost)
    per = calls.groupby(["trace_id", "iteration"], sort=False).agg(
        input_tokens=("input_tokens", "sum"), output_tokens=("output_tokens", "sum"),
        cost=("cost", "sum")).reset_index()
    per["cum_cost"] = per.groupby("trace_id")["cost"].cumsum()
    per["group"] = "all"
    if facts is not None and by is not None:
        check_columns(facts, ["trace_id", by], "facts")
        labels = facts.drop_duplicates("trace_id").set_index(facts["trace_id"].astype(str))[by]
        per["group"] = labels.reindex(per["trace_id"]).astype("string").fillna("<NA>").to_numpy()
    else:
        by = None
    table = _per_iteration(per, level)
    growth = pd.concat([_growth(part, group, level) for group, part in per.groupby("group", sort=False)],
                       ignore_index=True)
    return CostGrowth(by, table, growth, level)


def _per_iteration(per: pd.DataFrame, level: float) -> pd.DataFrame:
    grouped = per.rename(columns={"iteration": "k"}).groupby(["group", "k"], sort=False)
    table = grouped.agg(n=("cost", "size"), mean_input_tokens=("input_tokens", "mean"),
                        mean_output_tokens=("output_tokens", "mean"), mean_cost=("cost", "mean"),
                        sd_cost=("cost", "std"), mean_cum_cost=("cum_cost", "mean"),
                        sd_cum=("cum_cost", "std")).reset_index().sort_values(["group", "k"])
    t = t_ppf(0.5 + level / 2, np.maximum(table["n"] - 1, 1))
    for name, sd in (("mean_cost", "sd_cost"), ("mean_cum_cost", "sd_cum")):
        half = t * table[sd].fillna(0) / np.sqrt(table["n"])
        table[f"{name}_low"], table[f"{name}_high"] = table[name] - half, table[name] + half
    return table.drop(columns=["sd_cost", "sd_cum"]).reset_index(drop=True)


def _growth(part: pd.DataFrame, group, level: float) -> pd.DataFrame:
    import statsmodels.api as sm

    ok = part["cost"].notna()
    part = part.loc[ok]
    row = {"group": group, "n_traces": part["trace_id"].nunique(), "first_call_cost": np.nan,
           "growth_per_iteration": np.nan, "growth_low": np.nan, "growth_high": np.nan}
    if part["iteration"].nunique() >= 2:
        X = sm.add_constant(part["iteration"].to_numpy(dtype=float))
        groups = pd.factorize(part["trace_id"])[0]
        res = sm.OLS(part["cost"].to_numpy(dtype=float), X).fit(
            cov_type="cluster", cov_kwds={"groups": groups})
        ci = np.asarray(res.conf_int(alpha=1 - level))
        row.update(first_call_cost=float(res.params[0] + res.params[1]),
                   growth_per_iteration=float(res.params[1]), growth_low=float(ci[1, 0]),
                   growth_high=float(ci[1, 1]))
    return pd.DataFrame([row])
