"""Success rates and mean scores with honest intervals, and per-task consistency.

One trial per task: trials are independent and the Wilson interval is right. Several trials per
task: trials of one task are correlated (easy tasks pass every time), so the interval clusters on
tasks (Miller, "Adding Error Bars to Evals", 2024); a task-level bootstrap is always given beside.
Unknown outcomes (null success or score) are excluded and counted, never treated as failures.

Examples
--------
>>> import pandas as pd
>>> facts = pd.DataFrame({"task_id": list("aabbcc"), "trial": [0, 1] * 3, "variant": "v",
...                       "success": [True, True, False, False, True, False]})
>>> success_rate(facts, n_boot=200).summary()[["variant", "rate", "interval"]]
  variant  rate   interval
0       v   0.5  clustered
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from aiscale.analysis import _stats as iv
from aiscale.analysis._result import ResultDisplay, check_choice, new_axes
from aiscale.analysis.reliability.outcomes import by_group, outcomes, task_table, unknown_note

Interval = Literal["auto", "wilson", "clustered", "bootstrap"]
_METHODS = ("wilson", "clustered", "bootstrap")


def _rate_columns(by: str) -> list[str]:
    return [by, "rate", "lower", "upper", "interval", "n_tasks", "n_trials", "design_effect",
            "why", *[f"{m}_{side}" for m in _METHODS for side in ("lower", "upper")], "n_unknown"]


@dataclass(frozen=True, eq=False, repr=False)
class RateResult(ResultDisplay):
    """Success rate (or mean score) per group with Wilson, clustered and bootstrap intervals."""

    table: pd.DataFrame
    by: str
    column: str
    metric: str
    level: float
    notes: tuple[str, ...]

    def summary(self) -> pd.DataFrame:
        """One row per group: estimate, chosen interval (lower, upper, which, why), counts."""
        cols = [self.by, "rate", "lower", "upper", "interval", "n_tasks", "n_trials",
                "n_unknown", "design_effect", "why"]
        return self.table[cols].copy()

    def frame(self) -> pd.DataFrame:
        """Tidy: one row per group and interval method (wilson, clustered, bootstrap)."""
        rows = [self.table[[self.by, "rate"]].assign(
            method=m, lower=self.table[f"{m}_lower"], upper=self.table[f"{m}_upper"])
            for m in _METHODS]
        return pd.concat(rows, ignore_index=True)

    def plot(self, ax=None, **kwargs):
        """Estimate per group with its chosen interval as horizontal error bars."""
        ax = new_axes(ax)
        t = self.table
        y = np.arange(len(t))
        err = np.vstack([t["rate"] - t["lower"], t["upper"] - t["rate"]])
        ax.errorbar(t["rate"], y, xerr=err, fmt=kwargs.pop("fmt", "o"), capsize=3, **kwargs)
        ax.set_yticks(y, [str(v) for v in t[self.by]])
        ax.set_xlabel(f"{self.metric} ({self.level:.0%} CI: {', '.join(t['interval'].unique())})")
        return ax

    def __repr__(self) -> str:
        t = self.table
        return (f"<aiscale.RateResult: {self.metric} of {len(t)} {self.by} group(s), "
                f"{int(t['n_tasks'].sum())} tasks, {int(t['n_trials'].sum())} trials, "
                f"{int(t['n_unknown'].sum())} unknown>")


def success_rate(facts: pd.DataFrame, *, by: str | None = "variant", column: str = "success",
                 threshold: float | None = None, interval: Interval = "auto",
                 level: float = 0.95, n_boot: int = 2000, seed: int | None = 0) -> RateResult:
    """Success rate per group with an interval chosen for how the trials were run.

    Parameters
    ----------
    facts : pandas.DataFrame
        Trace facts (``task_id``, ``variant``, ``success``; ``score`` with ``threshold``).
    by : str or None, default="variant"
        Column to group by; None for one overall rate.
    column : str, default="success"
        Outcome column: boolean success, or a score turned into success with ``threshold``.
    threshold : float, optional
        Success is ``column >= threshold``.
    interval : {"auto", "wilson", "clustered", "bootstrap"}, default="auto"
        "auto": Wilson with one trial per task; with several, Wilson at the effective sample
        size of the task-clustered SE (:func:`aiscale.analysis._stats.clustered_wilson`;
        Wilson over tasks when every trial agrees, where the clustered standard error is zero).
    level : float, default=0.95
    n_boot : int, default=2000
        Task-bootstrap resamples.
    seed : int or None, default=0

    Returns
    -------
    RateResult

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"task_id": list("abcd"), "variant": "v",
    ...                   "success": [True, False, True, True]})
    >>> round(float(success_rate(f).summary().loc[0, "lower"]), 3)
    0.301
    """
    check_choice("interval", interval, ("auto",) + _METHODS)
    out = outcomes(facts, by=by, column=column, threshold=threshold, binary=True)
    return _rates(out, interval, level, n_boot, seed, "success rate")


def score_mean(facts: pd.DataFrame, *, by: str | None = "variant", column: str = "score",
               interval: Literal["auto", "clustered", "bootstrap"] = "auto",
               level: float = 0.95, n_boot: int = 2000, seed: int | None = 0) -> RateResult:
    """Mean of a continuous score (judge grade, reward) per group, with clustered and bootstrap CIs.

    Same parameters as :func:`success_rate`; the "auto" interval is the task-clustered t
    interval (with one trial per task it is the ordinary t interval). Use ``success_rate(...,
    column="score", threshold=t)`` to turn the score into success instead.

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"task_id": list("aabb"), "variant": "v", "score": [0.2, 0.4, 0.8, 1.0]})
    >>> round(float(score_mean(f, n_boot=100).summary().loc[0, "rate"]), 3)
    0.6
    """
    check_choice("interval", interval, ("auto", "clustered", "bootstrap"))
    out = outcomes(facts, by=by, column=column, threshold=None, binary=False)
    return _rates(out, interval, level, n_boot, seed, f"mean {column}")


def _rates(out, interval: str, level: float, n_boot: int, seed, metric: str) -> RateResult:
    tasks = task_table(out.data)
    rows = []
    split = by_group(tasks, out.groups())
    for group in out.groups():
        t = split[group]
        row = _one_rate(t["n"].to_numpy(), t["s"].to_numpy(), t["ss"].to_numpy(), out.binary,
                        interval, level, n_boot, seed)
        rows.append({out.by: group, **row, "n_unknown": int(out.unknown[group])})
    table = pd.DataFrame(rows, columns=_rate_columns(out.by))
    notes = tuple(sorted(set(table["why"]))) + design_effect_notes(table, out.by)
    unknown = unknown_note(int(table["n_unknown"].sum()), out.column)
    notes += (unknown,) if unknown else ()
    return RateResult(table, out.by, out.column, metric, level, notes)


def _one_rate(n_i, s_i, ss_i, binary, interval, level, n_boot, seed) -> dict:
    total, g = n_i.sum(), len(n_i)
    mean, se = iv.clustered_se(n_i, s_i)
    naive_var = (ss_i.sum() - total * mean**2) / max(total - 1, 1)
    clustered = (iv.clustered_wilson(n_i, s_i, level=level) if binary
                 else iv.t_interval(mean, se, g - 1, level=level))
    ci = {"clustered": clustered,
          "bootstrap": iv.bootstrap_ratio(s_i, n_i, n_boot=n_boot, level=level, seed=seed)}
    ci["wilson"] = iv.wilson(s_i.sum(), total, level=level) if binary else (np.nan, np.nan)
    deff = se**2 / (naive_var / total) if total > 1 and naive_var > 0 else np.nan
    method, why = _choose(interval, binary, g, total, mean, deff)
    if method == "wilson tasks":
        lower, upper = iv.wilson(mean * g, g, level=level)
    else:
        lower, upper = ci[method]
    row = {"rate": mean, "lower": float(lower), "upper": float(upper), "interval": method,
           "n_tasks": g, "n_trials": int(total), "design_effect": deff, "why": why}
    row.update({f"{m}_{side}": float(ci[m][i]) for m in _METHODS
                for i, side in enumerate(("lower", "upper"))})
    return row


def _choose(interval, binary, g, total, mean, deff) -> tuple[str, str]:
    if interval != "auto":
        return interval, f"{interval} interval, as requested"
    if g == 0:
        return "clustered", "no known outcomes"
    if total == g:
        if binary:
            return "wilson", ("one trial per task: trials are independent, Wilson interval "
                              "(good coverage for small n and rates near 0 or 1)")
        return "clustered", "one trial per task: t interval on the mean"
    if binary and mean in (0.0, 1.0):
        return "wilson tasks", ("several trials per task but every trial agrees: clustered SE "
                                "is zero, so Wilson over tasks (each task counted once)")
    if not binary:
        return "clustered", ("several trials per task: the SE is clustered on tasks (Miller 2024) "
                             "and the interval is t on tasks - 1 degrees of freedom")
    return "clustered", ("several trials per task: the SE is clustered on tasks (Miller 2024); "
                         "Wilson at the effective sample size it implies, asymmetric near 0 "
                         "and 1 (plain Wilson would treat the trials as independent)")


_DEFF_MEANING = {
    "above": "trials of a task are correlated (tasks differ), so a repeat adds less than a new task",
    "about": "trials of a task behave as if independent",
    "below": "trials vary more within a task than between tasks (they are not correlated), so the "
             "clustered interval is narrower than one treating trials as independent",
}


def design_effect_notes(table: pd.DataFrame, by: str) -> tuple[str, ...]:
    """One note per side of 1 of the design effect (clustered / independent variance), naming groups.

    Examples
    --------
    >>> t = pd.DataFrame({"variant": ["a", "b"], "n_tasks": [5, 5], "n_trials": [10, 10],
    ...                   "design_effect": [1.8, 0.8]})
    >>> [n.split(":")[0] for n in design_effect_notes(t, "variant")]
    ['design effect above 1 for a (1.80)', 'design effect below 1 for b (0.80)']
    """
    repeated = table.loc[(table["n_trials"] > table["n_tasks"]) & table["design_effect"].notna()]
    deff = repeated["design_effect"].astype(float)
    side = np.where(deff > 1.1, "above", np.where(deff < 0.9, "below", "about"))
    notes = []
    for name in ("above", "about", "below"):
        rows = repeated.loc[side == name]
        if len(rows):
            groups = ", ".join(f"{g} ({d:.2f})" for g, d in zip(rows[by].astype(str),
                                                                rows["design_effect"], strict=True))
            notes.append(f"design effect {name} 1 for {groups}: {_DEFF_MEANING[name]}")
    return tuple(notes)
