"""Hybrid approaches from runs that already exist: cascades of variants and retries of one.

:func:`cascade` replays "try A; when A fails (or its score is below a threshold), escalate to B;
then C ..." on the (task, trial) units where every variant of the order was run: the cascade's
outcome is that of the variant whose answer is accepted, and it pays the cost and waits the
latency of every variant called along the way. :func:`retry` gives "run the same variant up to
r times until it succeeds" from repeated trials, exactly averaged over the order of the trials
(the unbiased pass@k estimator for success; the expected cost and latency of the attempts made).
Both give intervals clustered on tasks and a ``.facts()`` frame to add to :func:`~.frontier`.

Examples
--------
>>> import pandas as pd
>>> f = pd.DataFrame({"task_id": list("abab"), "variant": list("AABB"),
...                   "success": [True, False, True, True], "cost_usd": [1.0, 1.0, 5.0, 5.0]})
>>> c = cascade(f, order=["A", "B"])
>>> c.summary()[["cascade", "success", "mean_cost"]]
  cascade  success  mean_cost
0   A → B      1.0        3.5
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import comb

from aiscale.analysis._result import (
    ResultDisplay,
    check_columns,
    floats,
    new_axes,
    source_label,
    task_keys,
    trace_cost,
)
from aiscale.analysis._stats import mean_ci, rate_ci

__all__ = ["Hybrid", "cascade", "retry"]


@dataclass(frozen=True, eq=False, repr=False)
class Hybrid(ResultDisplay):
    """A replayed cascade or retry policy: per-unit outcomes and their means with intervals.

    ``units`` has one row per replayed unit (task, trial): success (a probability for retries),
    cost, latency and ``calls`` (variants or attempts called).
    """

    name: str
    kind: str
    units: pd.DataFrame
    curve: pd.DataFrame
    cost_column: str
    level: float
    notes: tuple[str, ...]

    def summary(self) -> pd.DataFrame:
        """One row: success, mean cost and mean latency with intervals, mean calls, units."""
        return self.curve.tail(1).reset_index(drop=True)

    def frame(self) -> pd.DataFrame:
        """Per-step curve: success, cost and latency after each step (variant or attempt)."""
        return self.curve.copy()

    def facts(self) -> pd.DataFrame:
        """Trace-facts-like rows (variant = the policy name) to add to a frontier."""
        u = self.units
        return pd.DataFrame({
            "trace_id": [f"{self.name}|{t}|{k}"
                         for t, k in zip(u["task_id"], u["trial"], strict=True)],
            "task_id": u["task_id"].to_numpy(), "trial": u["trial"].to_numpy(),
            "variant": self.name, "success": u["success"].to_numpy(dtype=float),
            self.cost_column: u["cost"].to_numpy(), "latency_s": u["latency"].to_numpy()})

    def plot(self, ax=None, **kwargs):
        """Success against mean cost after each step, with intervals."""
        ax = new_axes(ax)
        c = self.curve
        ax.errorbar(c["mean_cost"], c["success"], yerr=np.nan_to_num(np.vstack(
            [c["success"] - c["success_lower"], c["success_upper"] - c["success"]])),
            fmt=kwargs.pop("fmt", "o-"), capsize=2, **kwargs)
        for _, r in c.iterrows():
            ax.annotate(str(r["step"]), (r["mean_cost"], r["success"]), fontsize=7)
        ax.set_xlabel("mean cost per task (USD)")
        ax.set_ylabel(f"success ({self.level:.0%} CI)")
        return ax

    def __repr__(self) -> str:
        s = self.summary().iloc[0]
        return (f"<aiscale.Hybrid: {self.kind} {self.name}, success {s['success']:.3f}, "
                f"mean cost {s['mean_cost']:.4g} over {len(self.units)} units>")


def cascade(facts: pd.DataFrame, *, order: Sequence[str], by: str = "variant",
            success: str = "success", threshold: float | None = None,
            escalate_on: str | None = None, escalate_below: float | None = None,
            cost: str = "auto", latency: str | None = "latency_s",
            level: float = 0.95) -> Hybrid:
    """Replay "try the first variant, escalate to the next on failure" over shared tasks.

    Parameters
    ----------
    facts : pandas.DataFrame
        Trace facts with ``by``, ``task_id`` (and ``trial`` to pair repeated trials).
    order : list of str
        Variants in the order they are tried (two or more).
    success, threshold
        Outcome column; with ``threshold`` success is ``success >= threshold``.
    escalate_on, escalate_below : str and float, optional
        Escalate when ``escalate_on < escalate_below`` (e.g. a verifier score) instead of on
        a known failure. The last variant's answer is always accepted.
    cost, latency, level
        As in :func:`~aiscale.analysis.tradeoff.frontier`.

    Returns
    -------
    Hybrid
        ``frame()`` gives the curve after each step ("A", "A → B", ...).

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"task_id": list("ab") * 2, "variant": list("AABB"),
    ...                   "success": [False, False, True, False], "cost_usd": [1.0] * 4})
    >>> cascade(f, order=["A", "B"]).summary().loc[0, ["success", "mean_cost"]].tolist()
    [0.5, 2.0]
    """
    order = list(order)
    if len(order) < 2:
        raise ValueError(f"The value for `order` must list at least two variants, but {order!r} "
                         "was passed.")
    check_columns(facts, [by, success] + ([escalate_on] if escalate_on else []))
    missing = sorted(set(order) - set(facts[by].astype(object)))
    if missing:
        raise ValueError(f"The value for `order` names variants not in column {by!r}: {missing}; "
                         f"available: {sorted(map(str, pd.unique(facts[by].dropna())))}.")
    wide, src = _wide(facts, order, by, success, threshold, escalate_on, cost, latency)
    y, c, lat = (wide[k].to_numpy(float) for k in ("y", "c", "lat"))
    esc = (wide["e"].to_numpy(float) < escalate_below) if escalate_on else (y == 0)
    called = np.ones_like(y, dtype=bool)
    for j in range(1, len(order)):
        called[:, j] = called[:, j - 1] & esc[:, j - 1]
    name = " → ".join(order)
    steps = [_step(" → ".join(order[:j + 1]), y[:, :j + 1], c[:, :j + 1], lat[:, :j + 1],
                   called[:, :j + 1], wide.index, level) for j in range(len(order))]
    units = steps[-1][1]
    curve = pd.DataFrame([s[0] for s in steps])
    curve.insert(0, "cascade", name)
    return Hybrid(name, "cascade", units, curve, _cost_col(src, cost), level,
                  (f"{len(units)} (task, trial) units where every variant of the order ran",))


def _wide(facts, order, by, success, threshold, escalate_on, cost, latency):
    f = facts[facts[by].astype(object).isin(order).to_numpy()]
    y = floats(f[success])
    if threshold is not None:
        y = np.where(np.isnan(y), np.nan, (y >= threshold).astype(float))
    c, src = trace_cost(f, cost)
    trial = floats(f["trial"]) if "trial" in f else np.full(len(f), np.nan)
    if np.isnan(trial).all():  # no trial numbers: pair the i-th run of a task across variants
        trial = f.groupby([task_keys(f), f[by].astype(object).to_numpy()]).cumcount().to_numpy()
    long = pd.DataFrame({
        "task_id": task_keys(f), "trial": np.nan_to_num(trial).astype(int),
        "v": pd.Categorical(f[by].astype(object), categories=order), "y": y, "c": c,
        "lat": floats(f[latency]) if latency and latency in f else np.full(len(f), np.nan),
        "e": floats(f[escalate_on]) if escalate_on else y})
    long = long.dropna(subset=["y", "e"]).drop_duplicates(["task_id", "trial", "v"])
    wide = long.pivot(index=["task_id", "trial"], columns="v", values=["y", "c", "lat", "e"])
    wide = wide.dropna(subset=[("y", v) for v in order])
    return wide, src


def _step(label, y, c, lat, called, index, level):
    last = called.sum(axis=1) - 1
    rows = np.arange(len(y))
    units = pd.DataFrame({"task_id": index.get_level_values(0), "trial": index.get_level_values(1),
                          "success": y[rows, last],
                          "cost": np.where(called, c, 0.0).sum(axis=1),
                          "latency": np.where(called, lat, 0.0).sum(axis=1),
                          "calls": called.sum(axis=1)})
    units.loc[np.isnan(np.where(called, c, 0.0)).any(axis=1), "cost"] = np.nan
    units.loc[np.isnan(np.where(called, lat, 0.0)).any(axis=1), "latency"] = np.nan
    return {"step": label, **summarise(units, level)}, units


def summarise(units: pd.DataFrame, level: float) -> dict:
    """Means of success, cost and latency over units, with intervals clustered on tasks."""
    out = {"n_units": len(units), "mean_calls": float(units["calls"].mean())}
    for col, key, fn in (("success", "success", rate_ci), ("cost", "mean_cost", mean_ci),
                         ("latency", "mean_latency", mean_ci)):
        known = units[col].notna()
        g = units[known].groupby("task_id")[col].agg(["size", "sum"])
        n_i, s_i = g["size"].to_numpy(float), g["sum"].to_numpy(float)
        out[key] = s_i.sum() / n_i.sum() if n_i.sum() else np.nan
        out[f"{key}_lower"], out[f"{key}_upper"] = fn(n_i, s_i, level) if len(g) else (np.nan,) * 2
    return out


def _cost_col(src, cost):
    if cost != "auto":
        return cost
    return "reported_cost_usd" if source_label(src) == "reported_cost_usd" else "cost_usd"


def retry(facts: pd.DataFrame, *, variant: str, r: int, by: str = "variant",
          success: str = "success", threshold: float | None = None, cost: str = "auto",
          latency: str | None = "latency_s", level: float = 0.95) -> Hybrid:
    """Run one variant up to ``r`` times until it succeeds, replayed from repeated trials.

    Each task needs at least ``r`` known trials (others are dropped and counted). The success
    of a task is ``1 - C(n - c, r) / C(n, r)`` (c successes in n trials: unbiased for
    ``1 - (1 - p)^r``); cost and latency are the sums over trials, each weighted by its chance
    of being attempted when the n trials come in random order.

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"task_id": list("aabb"), "variant": "v",
    ...                   "success": [True, False, False, False], "cost_usd": 1.0})
    >>> retry(f, variant="v", r=2).summary().loc[0, ["success", "mean_cost"]].tolist()
    [0.5, 1.75]
    """
    if not isinstance(r, int | np.integer) or r < 1:
        raise ValueError(f"The value for `r` must be a positive integer, but {r!r} was passed.")
    wide, src = _wide(facts, [variant], by, success, threshold, None, cost, latency)
    long = pd.DataFrame({"task_id": wide.index.get_level_values(0),
                         "y": wide["y"].iloc[:, 0].to_numpy(), "c": wide["c"].iloc[:, 0].to_numpy(),
                         "lat": wide["lat"].iloc[:, 0].to_numpy()})
    n = long.groupby("task_id")["y"].transform("size").to_numpy()
    dropped = long.loc[n < r, "task_id"].nunique()
    long, n = long[n >= r], n[n >= r]
    curve = [{"step": f"up to {k}", **summarise(_retry_units(long, n, k), level)}
             for k in range(1, r + 1)]
    units = _retry_units(long, n, r)
    name = f"{variant} ×{r}"
    notes = (f"{dropped} task(s) with fewer than {r} known trials dropped" if dropped else "",)
    curve = pd.DataFrame(curve)
    curve.insert(0, "cascade", name)
    return Hybrid(name, "retry", units, curve, _cost_col(src, cost), level,
                  tuple(x for x in notes if x))


def _retry_units(long: pd.DataFrame, n: np.ndarray, r: int) -> pd.DataFrame:
    c_task = long.groupby("task_id")["y"].transform("sum").to_numpy()
    y = long["y"].to_numpy()
    f_other = (n - c_task) - (1 - y)  # failures among the other trials
    p_att = sum(comb(f_other, p - 1) / comb(n - 1, p - 1) for p in range(1, r + 1)) / n
    g = pd.DataFrame({"task_id": long["task_id"].to_numpy(), "w_c": long["c"].to_numpy() * p_att,
                      "w_l": long["lat"].to_numpy() * p_att, "p_att": p_att, "n": n, "cs": c_task})
    t = g.groupby("task_id", sort=False).agg(cost=("w_c", "sum"), latency=("w_l", "sum"),
                                             calls=("p_att", "sum"), n=("n", "first"),
                                             c=("cs", "first"))
    unknown = g[["w_c", "w_l"]].isna().groupby(g["task_id"], sort=False).any()
    t.loc[unknown["w_c"].to_numpy(), "cost"] = np.nan
    t.loc[unknown["w_l"].to_numpy(), "latency"] = np.nan
    t["success"] = 1 - comb(t["n"] - t["c"], r) / comb(t["n"], r)
    return t.reset_index().assign(trial=0)[["task_id", "trial", "success", "cost", "latency",
                                            "calls"]]
