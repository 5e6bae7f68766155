"""What a cap on loop iterations would save or lose: the counterfactual loop-budget curve.

For each cap k = 1..max, every trace is re-read as if stopped at k: a success whose final
iteration is beyond k becomes a failure, and its cost is cut at k. The cost of the first k
iterations comes from spans when given (cumulative cost of the first k LLM calls, in start
order), else from the trace total by a documented approximation:

- ``approx="linear"``: every call of a trace costs the same, cost(k) = C * min(k, n) / n;
- ``approx="context"``: the k-th call costs in proportion to k (context grows by a constant
  step each turn), cost(k) = C * m (m + 1) / (n (n + 1)), m = min(k, n).

Intervals come from a bootstrap that resamples tasks (all trials of a task together); from
:data:`~aiscale.analysis._stats.CLOSED_FORM_TASKS` tasks on, from skew-corrected delta-method
intervals of the same ratios of task sums (no resampling).

Examples
--------
>>> import pandas as pd
>>> facts = pd.DataFrame({"task_id": list("abcd"), "iterations": [2, 4, 6, 8],
...                       "success": [True, True, False, True], "cost_usd": [0.2, 0.4, 0.6, 0.8]})
>>> curve = loop_budget(facts, n_boot=50)
>>> curve.frame().set_index("cap").loc[4, ["success_rate", "mean_cost"]].round(3).tolist()
[0.5, 0.35]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from aiscale.analysis._closed_form import ratio_interval
from aiscale.analysis._result import ResultDisplay, check_choice, check_columns, new_axes
from aiscale.analysis._stats import CLOSED_FORM_TASKS, _expanded_alpha, bootstrap_weights
from aiscale.analysis.loops.calls import coerce_floats, llm_calls, nullable_bools, positions


@dataclass(frozen=True, repr=False)
class LoopBudget(ResultDisplay):
    """Success rate, mean cost and successes per dollar under each iteration cap.

    Attributes
    ----------
    table : DataFrame
        cap, success_rate, mean_cost, successes_per_dollar, each with ``_low``/``_high``.
    best_cap : int
        The cap with the most successes per dollar (point estimate).
    knee_cap : int
        The knee of the success-rate curve (largest distance above the chord from the first
        to the last cap, on axes scaled to [0, 1]).
    cost_source : str
        ``spans`` or ``approx:linear`` / ``approx:context``.
    """

    n_traces: int
    n_tasks: int
    best_cap: int
    knee_cap: int
    cost_source: str
    table: pd.DataFrame
    level: float

    def __repr__(self) -> str:
        return (f"<LoopBudget: {self.n_traces} traces in {self.n_tasks} tasks, caps 1.."
                f"{int(self.table['cap'].max())}, best {self.best_cap} successes/$, knee "
                f"{self.knee_cap}, cost from {self.cost_source}>")

    def summary(self) -> pd.DataFrame:
        """The curve at the knee, at the best successes-per-dollar cap and uncapped."""
        caps = {"knee": self.knee_cap, "best_successes_per_dollar": self.best_cap,
                "uncapped": int(self.table["cap"].max())}
        rows = self.table.set_index("cap").loc[list(caps.values())].reset_index()
        rows.insert(0, "point", list(caps))
        return rows

    def frame(self) -> pd.DataFrame:
        """The whole curve, one row per cap."""
        return self.table.copy()

    def plot(self, ax=None, *, y: Literal["success_rate", "mean_cost", "successes_per_dollar"]
             = "success_rate", **kwargs):
        """Draw one curve against the cap, with its bootstrap band and the knee/best caps marked."""
        check_choice("y", y, ["success_rate", "mean_cost", "successes_per_dollar"])
        ax = new_axes(ax)
        t = self.table
        line, = ax.plot(t["cap"], t[y], **kwargs)
        ax.fill_between(t["cap"], t[f"{y}_low"], t[f"{y}_high"], alpha=0.2, color=line.get_color())
        ax.axvline(self.knee_cap, ls="--", color="grey", label=f"knee (k={self.knee_cap})")
        ax.axvline(self.best_cap, ls=":", color="C3", label=f"best successes/$ (k={self.best_cap})")
        ax.set(xlabel="iteration cap k", ylabel=y.replace("_", " "))
        ax.legend()
        return ax


def loop_budget(facts: pd.DataFrame, *, spans: pd.DataFrame | None = None,
                caps: int | None = None, cost: str = "cost_usd",
                approx: Literal["linear", "context"] = "linear", cluster: str = "task_id",
                n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> LoopBudget:
    """Counterfactual success rate and cost if traces had been capped at k iterations.

    Parameters
    ----------
    facts : pandas.DataFrame
        Trace facts with ``iterations``, ``success`` and the cost column; rows with unknown
        success or iterations are left out.
    spans : pandas.DataFrame, optional
        Canonical spans; when given, cost at k is the cumulative cost of a trace's first k
        LLM calls (traces without LLM spans fall back to ``approx``).
    caps : int, optional
        Largest cap; default the largest iteration count.
    cost : str, default="cost_usd"
        Cost column of ``facts`` (and of ``spans`` when it has it, else spans'
        ``reported_cost_usd``).
    approx : {"linear", "context"}, default="linear"
        How cost is cut at k without spans (see the module docstring).
    cluster : str, default="task_id"
        Bootstrap resampling unit; the trace itself when the column is absent.
    n_boot, level, seed :
        Bootstrap resamples, interval level and random seed.

    Returns
    -------
    LoopBudget
    """
    check_choice("approx", approx, ["linear", "context"])
    check_columns(facts, ["iterations", "success", cost], "facts")
    iters, ok = coerce_floats(facts["iterations"]), nullable_bools(facts["success"])
    keep = np.isfinite(iters) & (iters >= 1) & np.isfinite(ok)
    data = facts.loc[keep]
    n, ok, total = iters[keep].astype(int), ok[keep] == 1, np.nan_to_num(coerce_floats(data[cost]))
    groups = data[cluster] if cluster in data.columns else data.get("trace_id", pd.Series(range(len(data))))
    task = pd.factorize(groups.astype("string").fillna("<NA>"))[0]
    K = int(caps or n.max())
    n_tasks = int(task.max()) + 1
    succ = _cum_by_task(task, np.minimum(n, K + 1), ok.astype(float), n_tasks, K)
    in_spans = np.zeros(len(n), dtype=bool)
    cost_mat = np.zeros((n_tasks, K))
    if spans is not None:
        in_spans, cost_mat = _span_costs(spans, data, task, n_tasks, K, cost)
    cost_mat += _approx_costs(task[~in_spans], n[~in_spans], total[~in_spans], n_tasks, K, approx)
    size = np.bincount(task, minlength=n_tasks).astype(float)
    table = _curve(succ, cost_mat, size, n_boot, level, seed)
    source = "spans" if spans is not None and in_spans.all() else f"approx:{approx}"
    spd = table["successes_per_dollar"].to_numpy()
    best = int(table["cap"].iloc[int(np.nanargmax(spd))]) if np.isfinite(spd).any() else K
    return LoopBudget(len(n), n_tasks, best, knee(table["cap"], table["success_rate"]), source,
                      table, level)


def _cum_by_task(task, at, values, n_tasks, K) -> np.ndarray:
    """Matrix tasks x caps: sum of ``values`` of traces whose index ``at`` <= cap."""
    flat = np.bincount(task * (K + 1) + (at - 1), weights=values, minlength=n_tasks * (K + 1))
    return flat.reshape(n_tasks, K + 1)[:, :K].cumsum(axis=1)


def _approx_costs(task, n, total, n_tasks, K, approx) -> np.ndarray:
    """Per-task cost at each cap from trace totals (vectorised over caps)."""
    k = np.arange(1, K + 1, dtype=float)
    at = np.minimum(n, K + 1)
    done = _cum_by_task(task, at, total, n_tasks, K)  # traces finished by k: whole cost
    denom = n.astype(float) if approx == "linear" else n * (n + 1.0)
    rate = total / denom
    all_rate = np.bincount(task, weights=rate, minlength=n_tasks)[:, None]
    running = all_rate - _cum_by_task(task, at, rate, n_tasks, K)  # traces with n > k
    scale = k if approx == "linear" else k * (k + 1)
    return done + running * scale[None, :]


def _span_costs(spans, data, task, n_tasks, K, cost):
    if cost == "cost_usd" and cost not in spans.columns:
        from aiscale.pricing.rates import price_frame

        spans = price_frame(spans.loc[spans["kind"] == "llm"])
    calls = llm_calls(spans, cost=cost if cost in spans.columns else None)
    if len(calls) and calls["cost"].isna().all():
        raise ValueError(f"the spans carry no {cost!r} for any LLM call, so the cost of the first k "
                         "calls is unknown (not zero); pass facts only to use the approximation, or "
                         "price the spans (aiscale.price_frame).")
    row = positions(calls["trace_id"], data["trace_id"])
    found = (row >= 0) & (calls["iteration"].to_numpy() <= K)
    call = calls["iteration"].to_numpy()[found]
    mat = _cum_by_task(task[row[found]], call, np.nan_to_num(calls["cost"].to_numpy()[found]), n_tasks, K)
    in_spans = np.zeros(len(data), dtype=bool)
    in_spans[row[row >= 0]] = True  # traces with LLM spans (whatever their number of calls)
    return in_spans, mat


def _curve(succ, cost_mat, size, n_boot, level, seed) -> pd.DataFrame:
    if len(size) >= CLOSED_FORM_TASKS:
        return _closed_curve(succ, cost_mat, size, level)
    K = succ.shape[1]
    total = size.sum()
    point = {"success_rate": succ.sum(0) / total, "mean_cost": cost_mat.sum(0) / total}
    rng = np.random.default_rng(seed)
    # every resampled sum in one matrix product: sizes, successes, cost and the cost moments;
    # the multinomial task counts drawn as counted indices (a third of rng.multinomial's time),
    # multiplied at once (OpenBLAS spent 20x the CPU on the same product split in chunks)
    columns = np.column_stack([size, size**2, succ, cost_mat, cost_mat**2, cost_mat * size[:, None]])
    cuts = [1, 2, 2 + K, 2 + 2 * K, 2 + 3 * K]
    weights = np.vstack(list(bootstrap_weights(len(size), n_boot, rng)))
    sums = np.split(weights @ columns, cuts, axis=1)
    denom = sums[0]
    boot = {"success_rate": sums[2] / denom, "mean_cost": sums[3] / denom}
    with np.errstate(divide="ignore", invalid="ignore"):
        point["successes_per_dollar"] = point["success_rate"] / point["mean_cost"]
        boot["successes_per_dollar"] = boot["success_rate"] / boot["mean_cost"]
    table = pd.DataFrame({"cap": np.arange(1, K + 1)})
    # expanded percentile (Hesterberg 2015): the plain percentile interval of a mean over few
    # tasks is a z interval with the plug-in SD, too narrow (mean cost covered 91-93%)
    alpha = float(_expanded_alpha(level, np.array([len(size)]))[0])
    lo, hi = 100 * alpha, 100 * (1 - alpha)
    for name, values in point.items():
        table[name] = values
        table[f"{name}_low"], table[f"{name}_high"] = np.nanpercentile(boot[name], [lo, hi], axis=0)
    whole = np.split(columns.sum(0)[None, :], cuts, axis=1)  # the sample itself: every weight 1
    table["mean_cost_low"], table["mean_cost_high"] = _studentised(whole, sums, len(size), level)
    return table


def _closed_curve(succ, cost_mat, size, level) -> pd.DataFrame:
    """The curve from many tasks: each interval a skew-corrected delta-method interval of a
    ratio of task sums (:func:`~aiscale.analysis._closed_form.ratio_interval`), O(tasks x caps),
    no resampling: success rate = successes / traces, mean cost = cost / traces, successes per
    dollar = successes / cost."""
    table = pd.DataFrame({"cap": np.arange(1, succ.shape[1] + 1)})
    with np.errstate(divide="ignore", invalid="ignore"):
        for name, num, den, top in (("success_rate", succ, size, 1.0), ("mean_cost", cost_mat, size, np.inf),
                                    ("successes_per_dollar", succ, cost_mat, np.inf)):
            table[name] = num.sum(0) / den.sum(0)
            table[f"{name}_low"], table[f"{name}_high"] = ratio_interval(num, den, level=level,
                                                                         bounds=(0.0, top))
        table["successes_per_dollar"] = table["success_rate"] / table["mean_cost"]  # as the bootstrap's
    return table


def _studentised(whole, sums, m, level) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap-t interval of mean cost per cap (sum of task costs / sum of task sizes).

    ``whole`` and ``sums`` are the sample's and each resample's weighted sums of task size,
    size², successes, cost, cost² and cost·size (per cap), over ``m`` tasks.

    Cost is skewed (a few dear tasks), so the mean of a resample moves with its spread and the
    percentile interval missed high: with 200 tasks of lognormal(σ = 1.5) cost it covered the
    true mean 87-91% at 95%, the truth above it ten times as often as below. Studentising each
    resample by its own delta-method SE corrects the skew to second order (Hall 1992).
    """

    def ratio_se(parts):  # from the weighted sums of (size, size², cost, cost², cost·size)
        den, s2, _, cost, c2, cs = parts
        r = cost / den
        resid = c2 - 2 * r * cs + r**2 * s2
        return r, np.sqrt(np.maximum(resid, 0) * m / (m - 1)) / den

    r0, se0 = ratio_se(whole)
    r, se = ratio_se(sums)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (np.log(r) - np.log(r0)) / (se / r)
        t[~np.isfinite(t)] = np.nan
        alpha = float(_expanded_alpha(level, np.array([m]))[0])
        q_lo, q_hi = np.nanquantile(t, [alpha, 1 - alpha], axis=0) if m > 1 else (np.nan, np.nan)
        rel = se0[0] / r0[0]
        return r0[0] * np.exp(-q_hi * rel), r0[0] * np.exp(-q_lo * rel)


def knee(x, y) -> int:
    """Kneedle knee of an increasing curve: the x farthest above the chord on [0, 1] axes.

    Examples
    --------
    >>> knee([1, 2, 3, 4, 5], [0.0, 0.8, 0.9, 0.95, 1.0])
    2
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    span_x, span_y = np.ptp(x), np.nanmax(y) - np.nanmin(y)
    if span_x == 0 or span_y == 0:
        return int(x[0])
    gap = (y - np.nanmin(y)) / span_y - (x - x[0]) / span_x
    return int(x[int(np.nanargmax(gap))])
