"""Are failed runs longer than successful ones? Iterations by outcome, with a test and a CI.

The difference in mean iterations (failed minus successful) gets a bootstrap interval that
resamples tasks (all trials of a task together, since trials of one task are correlated);
the Mann-Whitney U test (one-sided: failed runs are longer) gives the p-value.

Examples
--------
>>> import pandas as pd
>>> facts = pd.DataFrame({"task_id": list("aabbccdd"), "iterations": [3, 9, 2, 8, 4, 12, 3, 7],
...                       "success": [True, False] * 4})
>>> r = iterations_by_outcome(facts, n_boot=200)
>>> float(r.difference)
6.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aiscale.analysis._result import ResultDisplay, check_columns, new_axes
from aiscale.analysis.loops.calls import coerce_floats, nullable_bools


@dataclass(frozen=True, repr=False)
class OutcomeLength(ResultDisplay):
    """Iterations of failed vs successful traces.

    Attributes
    ----------
    difference, diff_low, diff_high : float
        Mean iterations of failed minus successful traces, with its task-clustered CI.
    p_value : float
        One-sided Mann-Whitney U p-value (failed longer).
    table : DataFrame
        outcome, n, mean, median, q25, q75 of the iterations.
    """

    column: str
    difference: float
    diff_low: float
    diff_high: float
    u_statistic: float
    p_value: float
    table: pd.DataFrame
    values: pd.DataFrame
    level: float

    def __repr__(self) -> str:
        return (f"<OutcomeLength: failed - successful = {self.difference:.3g} {self.column} "
                f"[{self.diff_low:.3g}, {self.diff_high:.3g}], Mann-Whitney p = {self.p_value:.3g}>")

    def summary(self) -> pd.DataFrame:
        """Per-outcome statistics plus a row with the difference, its CI and the p-value."""
        diff = pd.DataFrame([{"outcome": "failed - successful", "mean": self.difference,
                              "ci_low": self.diff_low, "ci_high": self.diff_high,
                              "p_value": self.p_value}])
        return pd.concat([self.table, diff], ignore_index=True)

    def frame(self) -> pd.DataFrame:
        """One row per trace: outcome and iterations."""
        return self.values.copy()

    def plot(self, ax=None, **kwargs):
        """Empirical CDF of iterations for failed and successful traces."""
        ax = new_axes(ax)
        for outcome, part in self.values.groupby("outcome"):
            x = np.sort(part[self.column].to_numpy())
            ax.step(x, np.arange(1, len(x) + 1) / len(x), where="post", label=outcome, **kwargs)
        ax.set(xlabel=self.column, ylabel="share of traces at or below")
        ax.legend()
        return ax


def iterations_by_outcome(facts: pd.DataFrame, *, column: str = "iterations",
                          cluster: str = "task_id", n_boot: int = 2000, level: float = 0.95,
                          seed: int = 0) -> OutcomeLength:
    """Compare iterations of failed and successful traces.

    Parameters
    ----------
    facts : pandas.DataFrame
        Trace facts with ``success`` and ``column``; rows with either unknown are left out.
    column : str, default="iterations"
    cluster : str, default="task_id"
        Bootstrap resampling unit (each trace alone when the column is absent).
    n_boot, level, seed :
        Bootstrap resamples, interval level, random seed.

    Returns
    -------
    OutcomeLength
    """
    check_columns(facts, ["success", column], "facts")
    x, ok = coerce_floats(facts[column]), nullable_bools(facts["success"])
    keep = np.isfinite(x) & np.isfinite(ok)
    x, ok = x[keep], ok[keep] == 1
    if ok.all() or not ok.any():
        raise ValueError("`facts` needs both successful and failed traces with known "
                         f"{column!r}; got {int(ok.sum())} successful of {len(ok)}.")
    labels = facts.loc[keep, cluster] if cluster in facts.columns else pd.Series(np.arange(len(x)))
    task = pd.factorize(labels.astype("string").fillna("<NA>"))[0]
    n_tasks = task.max() + 1
    sums = [np.bincount(task, weights=w, minlength=n_tasks)
            for w in (x * ~ok, (~ok).astype(float), x * ok, ok.astype(float))]
    weights = np.random.default_rng(seed).multinomial(
        n_tasks, np.full(n_tasks, 1 / n_tasks), size=n_boot).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        fail_mean, ok_mean = (weights @ sums[0]) / (weights @ sums[1]), (weights @ sums[2]) / (weights @ sums[3])
    boot = fail_mean - ok_mean
    low, high = np.nanpercentile(boot, [50 * (1 - level), 50 * (1 + level)])
    from scipy import stats  # exact for small samples: not a closed form

    u = stats.mannwhitneyu(x[~ok], x[ok], alternative="greater")
    values = pd.DataFrame({"outcome": np.where(ok, "successful", "failed"), column: x})
    table = values.groupby("outcome")[column].agg(
        n="size", mean="mean", median="median", q25=lambda v: v.quantile(0.25),
        q75=lambda v: v.quantile(0.75)).reset_index()
    diff = float(x[~ok].mean() - x[ok].mean())
    return OutcomeLength(column, diff, float(low), float(high), float(u.statistic),
                         float(u.pvalue), table, values, level)
