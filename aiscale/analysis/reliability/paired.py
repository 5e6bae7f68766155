"""Paired comparison of two variants on the tasks both ran: success, cost and latency.

The difference in success is the mean over shared tasks of (rate of b − rate of a) per task,
with a t interval from the paired per-task differences (tasks are the unit, so trials of one task
are never counted as independent). With one trial per task and a binary outcome, the p-value is
McNemar's exact test. Cost (``cost_usd``, else ``reported_cost_usd``) and latency come alongside.

Examples
--------
>>> import pandas as pd
>>> facts = pd.DataFrame({"task_id": list("abcdabcd"), "variant": ["A"] * 4 + ["B"] * 4,
...                       "success": [0, 1, 0, 1, 1, 1, 0, 1], "cost_usd": [1.0] * 4 + [2.0] * 4})
>>> compare(facts, a="A", b="B").sentence
"'B' is 25 pp (−55 to 100) better than 'A' on 4 shared tasks and costs 2.0× more (cost_usd)."
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aiscale.analysis import _stats as iv
from aiscale.analysis._dists import t_sf
from aiscale.analysis._result import ResultDisplay, check_choice, fmt_pp, new_axes
from aiscale.analysis.reliability.outcomes import outcomes, task_ids, task_table, unknown_note


@dataclass(frozen=True, eq=False, repr=False)
class Comparison(ResultDisplay):
    """Paired difference b − a on shared tasks, with cost ratio and latency difference."""

    a: str
    b: str
    stats: dict
    tasks: pd.DataFrame
    sentence: str
    notes: tuple[str, ...]

    def summary(self) -> pd.DataFrame:
        """One row: rates, difference (b − a) with CI and p-value, cost and latency side by side."""
        return pd.DataFrame([{"a": self.a, "b": self.b, **self.stats}])

    def frame(self) -> pd.DataFrame:
        """Per shared task: known trials and rate of each variant and the difference b − a."""
        return self.tasks.copy()

    def plot(self, ax=None, **kwargs):
        """Per-task differences (b − a) as a histogram, with the mean and its interval."""
        ax = new_axes(ax)
        s = self.stats
        ax.hist(self.tasks["difference"], bins=kwargs.pop("bins", 21), alpha=0.6, **kwargs)
        ax.axvline(0, color="grey", lw=1)
        ax.axvline(s["difference"], color="black")
        ax.axvspan(s["lower"], s["upper"], color="black", alpha=0.15)
        ax.set_xlabel(f"per-task difference ({self.b!r} − {self.a!r})")
        ax.set_ylabel("tasks")
        ax.set_title(self.sentence, fontsize="small", wrap=True)
        return ax

    def __repr__(self) -> str:
        return f"<aiscale.Comparison: {self.sentence}>"


def compare(facts: pd.DataFrame, *, a: str, b: str, by: str = "variant", column: str = "success",
            threshold: float | None = None, level: float = 0.95) -> Comparison:
    """Compare variant ``b`` with variant ``a`` on the tasks both ran (paired by ``task_id``).

    Parameters
    ----------
    facts : pandas.DataFrame
        Trace facts with ``task_id``, ``by`` and the outcome column; ``cost_usd`` /
        ``reported_cost_usd`` and ``latency_s`` are used when present.
    a, b : str
        The baseline and the challenger: values of ``by``. The difference is b − a.
    by : str, default="variant"
    column : str, default="success"
        Boolean success or a numeric score (then the difference is in score units).
    threshold : float, optional
        Success is ``column >= threshold``.
    level : float, default=0.95

    Returns
    -------
    Comparison
        ``.sentence`` reads like "'B' is 6 pp (−1 to 13) better than 'A' on 50 shared tasks
        and costs 2.3× more (cost_usd)." Unknown outcomes are excluded and counted
        (``n_unknown_a``, ``n_unknown_b``).

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"task_id": list("abab"), "variant": ["A", "A", "B", "B"],
    ...                   "success": [True, False, True, True]})
    >>> res = compare(f, a="A", b="B")
    >>> res.stats["difference"], res.stats["test"]
    (0.5, 'mcnemar')
    """
    out = outcomes(facts, by=by, column=column, threshold=threshold, binary=False)
    check_choice("a", a, out.groups())
    check_choice("b", b, out.groups())
    binary = bool(np.isin(out.data.loc[out.data["group"].isin([a, b]), "y"], (0.0, 1.0)).all())
    tasks = _paired_tasks(task_table(out.data), a, b)
    st = _difference(tasks, binary, level)
    shared = set(tasks["task_id"])
    extra, cost_note = _cost_latency(facts, by, a, b, shared)
    st.update(extra, n_unknown_a=int(out.unknown[a]), n_unknown_b=int(out.unknown[b]))
    sentence = _sentence(a, b, st, binary, cost_note)
    dropped = int(out.data.loc[out.data["group"].isin([a, b]), "task"].nunique() - len(shared))
    notes = [st["test_note"]] + ([f"{dropped} task(s) ran by only one variant excluded."]
                                 if dropped else [])
    unknown = unknown_note(int(out.unknown[[a, b]].sum()), out.column)
    stats_ = {k: v for k, v in st.items() if k != "test_note"}
    return Comparison(str(a), str(b), stats_, tasks, sentence,
                      tuple(notes + ([unknown] if unknown else [])))


def _paired_tasks(tasks: pd.DataFrame, a, b) -> pd.DataFrame:
    cols = ["task", "n", "s", "ss"]
    m = tasks.loc[tasks["group"] == a, cols].merge(
        tasks.loc[tasks["group"] == b, cols], on="task", how="inner", suffixes=("_a", "_b"))
    m["rate_a"], m["rate_b"] = m["s_a"] / m["n_a"], m["s_b"] / m["n_b"]
    m["difference"] = m["rate_b"] - m["rate_a"]
    return m.rename(columns={"task": "task_id"})


def _difference(t: pd.DataFrame, binary: bool, level: float) -> dict:
    d = t["difference"].to_numpy(float)
    n = len(d)
    mean = float(d.mean()) if n else np.nan
    se = float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
    lo, hi = (mean, mean) if se == 0 else iv.t_interval(
        mean, se, n - 1, level=level, bounds=(-1.0, 1.0) if binary else None)
    single = binary and n > 0 and bool((t["n_a"] == 1).all() and (t["n_b"] == 1).all())
    if single:
        up, down = int((d > 0).sum()), int((d < 0).sum())
        from scipy import stats  # the exact test only: scipy.stats is slow to import

        p = stats.binomtest(min(up, down), up + down, 0.5).pvalue if up + down else 1.0
        test = f"McNemar exact test: {up} task(s) only b passes, {down} only a passes."
    else:
        p = (float(2 * t_sf(abs(mean / se), n - 1)) if se > 0
             else float(mean == 0) if n > 1 else np.nan)
        test = f"Paired t interval and test over {n} shared tasks (trials averaged per task)."
    return {"n_tasks": n, "rate_a": float(t["rate_a"].mean()), "rate_b": float(t["rate_b"].mean()),
            "difference": mean, "lower": lo, "upper": hi, "p_value": float(p),
            "test": "mcnemar" if single else "paired t", "test_note": test}


def _cost_latency(facts: pd.DataFrame, by: str, a, b, shared: set) -> tuple[dict, str | None]:
    keep = facts[by].isin([a, b]).to_numpy() & pd.Series(task_ids(facts)).isin(shared).to_numpy()
    rows = facts[keep]
    out: dict = {"cost_column": None, "cost_a": np.nan, "cost_b": np.nan, "cost_ratio": np.nan}
    for col in ("cost_usd", "reported_cost_usd"):
        if col not in rows.columns:
            continue
        mean = rows[col].astype("Float64").groupby(rows[by].to_numpy()).mean()
        if pd.notna(mean.get(a)) and pd.notna(mean.get(b)):
            out.update(cost_column=col, cost_a=float(mean[a]), cost_b=float(mean[b]),
                       cost_ratio=float(mean[b] / mean[a]) if mean[a] > 0 else np.nan)
            break
    lat = (rows["latency_s"].astype(float).groupby(rows[by].to_numpy()).mean()
           if "latency_s" in rows.columns else pd.Series(dtype=float))
    la, lb = float(lat.get(a, np.nan)), float(lat.get(b, np.nan))
    out.update(latency_a=la, latency_b=lb, latency_diff_s=lb - la)
    return out, out["cost_column"]


def _sentence(a, b, st: dict, binary: bool, cost_col: str | None) -> str:
    d, lo, hi = st["difference"], st["lower"], st["upper"]
    if not np.isfinite(d):
        return f"{b!r} and {a!r} share no task with a known outcome."
    fmt = fmt_pp if binary else (lambda v: f"{v:.3g}".replace("-", "−"))
    unit = " pp" if binary else ""
    if fmt(abs(d)) in ("0", "0.0"):
        text = (f"{b!r} is within 1{unit or ' unit'} of {a!r} ({fmt(d)}{unit}, {fmt(lo)} to "
                f"{fmt(hi)})" if binary else f"{b!r} scores the same as {a!r} ({fmt(lo)} to "
                f"{fmt(hi)})")
    else:
        word = "better" if d > 0 else "worse"
        if d < 0:
            d, lo, hi = -d, -hi, -lo
        text = f"{b!r} is {fmt(d)}{unit} ({fmt(lo)} to {fmt(hi)}) {word} than {a!r}"
    text += f" on {st['n_tasks']} shared tasks"
    ratio = st["cost_ratio"]
    if cost_col is None or not np.isfinite(ratio):
        text += "; cost unknown (no cost_usd or reported_cost_usd for both)"
    else:
        how = f"{ratio:.1f}× more" if ratio >= 1.05 else (
            f"{ratio:.2g}× as much" if ratio <= 0.95 else "about the same")
        src = "cost_usd" if cost_col == "cost_usd" else "reported_cost_usd; cost_usd is missing"
        text += f" and costs {how} ({src})"
    if np.isfinite(st["latency_diff_s"]):
        text += f"; latency {st['latency_diff_s']:+.2g} s".replace("-", "−")
    return text + "."
