"""Per-task consistency: which tasks always pass, always fail, or flip between trials.

The variance of one trial's outcome splits into a between-task part (how much tasks differ in
difficulty) and a within-task part (run-to-run noise on the same task). A high within-task share
means repeating trials helps; a high between-task share means more tasks help.

Examples
--------
>>> import pandas as pd
>>> facts = pd.DataFrame({"task_id": list("aabbcc"), "variant": "v",
...                       "success": [True, True, False, False, True, False]})
>>> consistency(facts).summary()[["always_pass", "always_fail", "flip"]].iloc[0].tolist()
[1, 1, 1]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aiscale.analysis._result import ResultDisplay, new_axes
from aiscale.analysis.reliability.outcomes import by_group, outcomes, task_table, unknown_note

_STATUSES = ("always pass", "flip", "always fail")


@dataclass(frozen=True, eq=False, repr=False)
class ConsistencyResult(ResultDisplay):
    """Per-task status counts and the between/within-task variance split, per group."""

    table: pd.DataFrame
    tasks: pd.DataFrame
    by: str
    notes: tuple[str, ...]

    def summary(self) -> pd.DataFrame:
        """Per group: tasks always passing / failing / flipping, variance components and share."""
        return self.table.copy()

    def frame(self) -> pd.DataFrame:
        """Per (group, task): known trials ``n``, successes, rate and status."""
        return self.tasks.copy()

    def plot(self, ax=None, **kwargs):
        """Stacked horizontal bars: share of tasks always passing, flipping, always failing."""
        ax = new_axes(ax)
        t = self.table
        y = np.arange(len(t))
        left = np.zeros(len(t))
        colors = kwargs.pop("color", ["tab:green", "tab:orange", "tab:red"])
        rated = t[["always_pass", "flip", "always_fail"]].sum(axis=1).replace(0, np.nan)
        for status, col, color in zip(_STATUSES, ("always_pass", "flip", "always_fail"), colors,
                                      strict=False):
            share = (t[col] / rated).fillna(0).to_numpy()
            ax.barh(y, share, left=left, label=status, color=color, **kwargs)
            left += share
        ax.set_yticks(y, [str(v) for v in t[self.by]])
        ax.set_xlabel("share of tasks with ≥ 2 known trials")
        ax.legend()
        return ax

    def __repr__(self) -> str:
        t = self.table
        return (f"<aiscale.ConsistencyResult: {len(t)} {self.by} group(s), "
                f"{int(t['always_pass'].sum())} always pass, {int(t['flip'].sum())} flip, "
                f"{int(t['always_fail'].sum())} always fail>")


def consistency(facts: pd.DataFrame, *, by: str | None = "variant", column: str = "success",
                threshold: float | None = None) -> ConsistencyResult:
    """Classify tasks by how consistently they pass and split the outcome variance.

    Parameters
    ----------
    facts : pandas.DataFrame
        Trace facts with ``task_id`` and the outcome column.
    by : str or None, default="variant"
    column : str, default="success"
    threshold : float, optional
        Success is ``column >= threshold`` (for scores).

    Returns
    -------
    ConsistencyResult
        ``between_var`` estimates the variance of the true per-task success probability,
        ``within_var`` the mean run-to-run variance p(1 − p) (both unbiased, from tasks with at
        least two known trials); ``between_share`` = between / (between + within).

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"task_id": list("aabb"), "variant": "v", "success": [1, 1, 0, 0]})
    >>> float(consistency(f).summary().loc[0, "between_share"])
    1.0
    """
    out = outcomes(facts, by=by, column=column, threshold=threshold, binary=True)
    tasks = task_table(out.data)
    tasks["rate"] = tasks["s"] / tasks["n"]
    status = np.select([tasks["n"] < 2, tasks["s"] == tasks["n"], tasks["s"] == 0],
                       ["single trial", "always pass", "always fail"], "flip")
    tasks["status"] = status
    parts = by_group(tasks, out.groups())
    rows = [{out.by: g, **_components(parts[g]),
             "n_unknown": int(out.unknown[g])} for g in out.groups()]
    table = pd.DataFrame(rows, columns=[out.by, "n_tasks", "always_pass", "flip", "always_fail",
                                        "single_trial", "between_var", "within_var",
                                        "between_share", "n_unknown"])
    note = unknown_note(int(table["n_unknown"].sum()), out.column)
    tasks = tasks.rename(columns={"group": out.by, "task": "task_id", "s": "successes"})
    return ConsistencyResult(table, tasks.drop(columns="ss"), out.by, (note,) if note else ())


def _components(t: pd.DataFrame) -> dict:
    counts = t["status"].value_counts()
    multi = t[t["n"] >= 2]
    n, p = multi["n"].to_numpy(float), multi["rate"].to_numpy(float)
    s2 = (multi["ss"].to_numpy(float) - n * p**2) / np.maximum(n - 1, 1)
    within = float(np.mean(s2)) if len(multi) else np.nan
    between = (max(0.0, float(np.var(p, ddof=1) - np.mean(s2 / n)))
               if len(multi) > 1 else np.nan)
    total = between + within
    return {"n_tasks": len(t), "always_pass": int(counts.get("always pass", 0)),
            "flip": int(counts.get("flip", 0)), "always_fail": int(counts.get("always fail", 0)),
            "single_trial": int(counts.get("single trial", 0)),
            "between_var": between, "within_var": within,
            "between_share": between / total if total > 0 else np.nan}
