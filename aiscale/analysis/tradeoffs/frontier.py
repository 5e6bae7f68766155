"""What each variant buys in reliability per dollar and per second: the cost–success frontier.

:func:`frontier` works on trace facts (one row per trace): per variant the success rate (Wilson
with one trial per task, task-clustered with several), mean cost per trace (task-clustered t
interval), cost per success, latency p50/p95, and the Pareto frontier over (cost ↓, success ↑)
and over (cost, success, p95 latency). Each variant's probability of being on the frontier comes
from a task-level bootstrap that resamples the same tasks for every variant (paired when the
variants share tasks). :func:`frontier_from_runs` does the same from run-level rows (one row per
benchmark run: mean and t interval across runs, or a binomial interval for a single run of
known size). Cascades and retries (:mod:`aiscale.analysis.tradeoffs.cascade`) join the frontier through
``cascades=`` / ``retries=``; latency detail is :func:`aiscale.analysis.tradeoffs.latency.latency`.

Cost is ``cost_usd`` falling back to ``reported_cost_usd`` trace by trace (``cost_source`` says
which); a variant without any cost is listed as unpriced, never placed at $0.

Examples
--------
>>> import pandas as pd
>>> facts = pd.DataFrame({"task_id": list("abcdabcd"), "variant": ["cheap"] * 4 + ["big"] * 4,
...                       "success": [1, 0, 1, 0, 1, 1, 1, 0], "cost_usd": [.1] * 4 + [1.] * 4})
>>> frontier(facts, n_boot=200).members()
['cheap', 'big']
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from aiscale.analysis import _stats as iv
from aiscale.analysis._result import (
    check_choice,
    check_columns,
    floats,
    source_label,
    task_keys,
    trace_cost,
)
from aiscale.analysis._stats import mean_ci, rate_ci, weighted_quantiles
from aiscale.analysis.tradeoffs.frontier_result import Frontier, assemble


def frontier(facts: pd.DataFrame, *, by: str = "variant", success: str = "success",
             threshold: float | None = None, cost: str = "auto", latency: str | None = "latency_s",
             cascades: Sequence[Sequence[str]] | None = None, retries: dict | None = None,
             level: float = 0.95, n_boot: int = 1000, seed: int | None = 0) -> Frontier:
    """Cost–success(–latency) frontier of the variants in a trace-facts frame.

    Parameters
    ----------
    facts : pandas.DataFrame
        Trace facts: ``by``, ``success`` (or a score with ``threshold``), a cost column;
        ``task_id`` pairs variants (falls back to ``trace_id``).
    by : str, default="variant"
    success : str, default="success"
    threshold : float, optional
        Success is ``success >= threshold`` (a score turned into success).
    cost : str, default="auto"
        "auto": ``cost_usd``, else ``reported_cost_usd``; or any cost column.
    latency : str or None, default="latency_s"
        Seconds per trace; None (or a missing column) skips latency and the 3-D frontier.
    cascades : list of lists of variant names, optional
        Orders to simulate with :func:`aiscale.analysis.tradeoffs.cascade.cascade` and add as variants.
    retries : dict, optional
        ``{variant: r}``: add "retry up to r times" variants (:func:`~.cascade.retry`).
    level : float, default=0.95
    n_boot : int, default=1000
        Task-bootstrap resamples (intervals of ratios and quantiles, frontier probabilities).
    seed : int or None, default=0

    Returns
    -------
    Frontier

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"task_id": list("abab"), "variant": list("xxyy"),
    ...                   "success": [1, 1, 1, 0], "reported_cost_usd": [1, 1, 2, 2]})
    >>> frontier(f, n_boot=100).summary()[["variant", "success", "mean_cost", "on_frontier"]]
      variant  success  mean_cost  on_frontier
    0       x      1.0        1.0         True
    1       y      0.5        2.0        False
    """
    check_columns(facts, [by, success])
    facts = _with_hybrids(facts, by, success, threshold, cost, latency, cascades, retries)
    y = floats(facts[success])
    if threshold is not None:
        y = np.where(np.isnan(y), np.nan, (y >= threshold).astype(float))
    c, src = trace_cost(facts, cost)
    lat = floats(facts[latency]) if latency is not None and latency in facts else None
    groups = facts[by].astype(object).where(facts[by].notna(), "(none)").to_numpy()
    names = list(pd.unique(groups))
    g_code = pd.Categorical(groups, categories=names).codes
    t_code, tasks = pd.factorize(task_keys(facts))
    est, draws, notes = _trace_estimates(y, c, lat, g_code, t_code, len(names), len(tasks),
                                         level, n_boot, seed)
    sources = [source_label(src[g_code == v]) for v in range(len(names))]
    notes += tuple(f"{n}: {k} of {m} traces have no cost; mean over priced traces"
                   for n, k, m in _partial(c, g_code, len(names)))
    return assemble(names, est, draws=draws, level=level, by=by,
                    cost_label="mean cost per trace (USD)",
                    latency_objective="latency_p95" if lat is not None else None,
                    notes=notes, sources=sources)


def _with_hybrids(facts, by, success, threshold, cost, latency, cascades, retries):
    if not cascades and not retries:
        return facts
    from aiscale.analysis.tradeoffs import cascade as cz

    extra = [cz.cascade(facts, order=list(o), by=by, success=success, threshold=threshold,
                        cost=cost, latency=latency).facts() for o in cascades or ()]
    extra += [cz.retry(facts, variant=v, r=int(r), by=by, success=success, threshold=threshold,
                       cost=cost, latency=latency).facts() for v, r in (retries or {}).items()]
    return pd.concat([facts, *extra], ignore_index=True)


def _partial(c, g_code, v):
    for g in range(v):
        miss = np.isnan(c[g_code == g])
        if 0 < miss.sum() < len(miss):
            yield g, int(miss.sum()), len(miss)


def _task_sums(values, g_code, t_code, v, t):
    """(tasks, variants) sums of ``values`` and counts of known values."""
    known = ~np.isnan(values)
    idx = t_code[known] * v + g_code[known]
    s = np.bincount(idx, weights=values[known], minlength=t * v).reshape(t, v)
    n = np.bincount(idx, minlength=t * v).reshape(t, v).astype(float)
    return s, n


def _trace_estimates(y, c, lat, g_code, t_code, v, t, level, n_boot, seed):
    sy, ny = _task_sums(y, g_code, t_code, v, t)
    sc, nc = _task_sums(c, g_code, t_code, v, t)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate, mcost = sy.sum(0) / ny.sum(0), sc.sum(0) / nc.sum(0)
    est = {"success": rate, "mean_cost": mcost, "cost_per_success": mcost / rate}
    lo_hi = [rate_ci(ny[:, j], sy[:, j], level) for j in range(v)]
    est["success_lower"], est["success_upper"] = np.array(lo_hi).T.reshape(2, v)
    lo_hi = [mean_ci(nc[:, j], sc[:, j], level) for j in range(v)]
    est["mean_cost_lower"], est["mean_cost_upper"] = np.array(lo_hi).T.reshape(2, v)
    lat_sets = _latency_sets(lat, g_code, v)
    for q, name in ((0.5, "latency_p50"), (0.95, "latency_p95")):
        if lat is not None:
            est[name] = np.array([np.quantile(x, q, method="inverted_cdf") if len(x) else np.nan
                                  for x, _ in lat_sets])
    draws = _bootstrap(sy, ny, sc, nc, lat_sets, t_code, t, n_boot, seed) if n_boot else {}
    a = (1 - level) / 2
    for m, d in draws.items():
        with warnings.catch_warnings():  # all-NaN columns: unpriced variants
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanquantile(d, [a, 1 - a], axis=0)
        if m not in ("success", "mean_cost"):
            est[f"{m}_lower"], est[f"{m}_upper"] = lo, hi
    return est, draws, ()


def _latency_sets(lat, g_code, v):
    if lat is None:
        return []
    ok = ~np.isnan(lat)
    sets = [np.flatnonzero(ok & (g_code == j)) for j in range(v)]
    # sorted once: each bootstrap chunk's weighted quantiles then sort already-sorted values
    return [(lat[i][order], i[order]) for i in sets for order in [np.argsort(lat[i], kind="stable")]]


def _bootstrap(sy, ny, sc, nc, lat_sets, t_code, t, n_boot, seed):
    rng = np.random.default_rng(seed)
    out: dict[str, list] = {"success": [], "mean_cost": [], "cost_per_success": [],
                            "latency_p50": [], "latency_p95": []}
    for w in iv.bootstrap_weights(t, n_boot, rng):
        with np.errstate(invalid="ignore", divide="ignore"):
            rate, mcost = (w @ sy) / (w @ ny), (w @ sc) / (w @ nc)
            out["cost_per_success"].append(mcost / rate)
        out["success"].append(rate)
        out["mean_cost"].append(mcost)
        if lat_sets:
            qs = [weighted_quantiles(x, t_code[i], w, [0.5, 0.95]) if len(x)
                  else np.full((len(w), 2), np.nan) for x, i in lat_sets]
            out["latency_p50"].append(np.column_stack([q[:, 0] for q in qs]))
            out["latency_p95"].append(np.column_stack([q[:, 1] for q in qs]))
    return {k: np.concatenate(d) for k, d in out.items() if d}


def frontier_from_runs(runs: pd.DataFrame, *, variant: str = "variant", success: str = "accuracy",
                       cost: str = "cost", latency: str | None = None,
                       n_tasks: str | int | None = None,
                       zero_cost: str = "unpriced", level: float = 0.95, n_boot: int = 2000,
                       seed: int | None = 0) -> Frontier:
    """Frontier from run-level rows (one row per benchmark run), with intervals across runs.

    Parameters
    ----------
    runs : pandas.DataFrame
        One row per run: ``variant``, ``success`` (a rate in [0, 1]), ``cost`` (per run).
    variant, success, cost : str
        Column names.
    latency : str, optional
        A per-run latency (e.g. mean seconds per task): the third frontier objective.
    n_tasks : str or int, optional
        Tasks per run (column or number). A variant with a single run then gets a Wilson
        interval on its rate (the run is one binomial sample of ``n_tasks``); without it, a
        single run has no interval.
    zero_cost : {"unpriced", "free"}, default="unpriced"
        Whether a cost of 0 means unknown (leaderboards write 0 for unpriced models) or free.
    level, n_boot, seed
        Interval level; resamples of runs within each variant; random seed.

    Returns
    -------
    Frontier
        With ``mean_cost`` the mean cost per run; intervals are t intervals across runs.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"variant": ["a", "a", "b", "b", "c"], "accuracy": [.8, .82, .9, .92, .95],
    ...                   "cost": [1, 1.2, 5, 5.5, 0]})
    >>> res = frontier_from_runs(r, n_boot=200)
    >>> res.members(), res.unpriced
    (['a', 'b'], ['c'])
    """
    check_choice("zero_cost", zero_cost, ("unpriced", "free"))
    check_columns(runs, [variant, success, cost] + ([latency] if latency else [])
                  + ([n_tasks] if isinstance(n_tasks, str) else []), name="runs")
    c = floats(runs[cost])
    if zero_cost == "unpriced":
        c = np.where(c > 0, c, np.nan)
    acc = floats(runs[success])
    size = (floats(runs[n_tasks]) if isinstance(n_tasks, str)
            else np.full(len(runs), np.nan if n_tasks is None else float(n_tasks)))
    cols = {"success": acc, "mean_cost": c}
    if latency:
        cols["latency"] = floats(runs[latency])
    names = list(pd.unique(runs[variant].astype(object)))
    codes = pd.Categorical(runs[variant].astype(object), categories=names).codes
    rng = np.random.default_rng(seed)
    est: dict = {k: np.full(len(names), np.nan) for k in cols}
    draws = {k: np.full((n_boot, len(names)), np.nan) for k in cols}
    for j in range(len(names)):
        rows = codes == j
        for k, x in cols.items():
            _run_stats(k, x[rows], size[rows], j, est, draws, level, rng)
    est["cost_per_success"] = est["mean_cost"] / est["success"]
    notes = ("intervals are t intervals across runs; a single run of known size has a Wilson "
             "interval on its rate",)
    return assemble(names, est, draws=draws if n_boot else {}, level=level, by=variant,
                    cost_label="mean cost per run (USD)",
                    latency_objective="latency" if latency else None, notes=notes,
                    sources=np.where(np.isfinite(est["mean_cost"]), cost, "unpriced"))


def _run_stats(key, x, size, j, est, draws, level, rng):
    ok = ~np.isnan(x)
    x, size = x[ok], size[ok]
    for side in ("lower", "upper"):
        est.setdefault(f"{key}_{side}", np.full(len(est[key]), np.nan))
    if len(x) == 0:
        return
    est[key][j] = x.mean()
    b = draws[key].shape[0]
    if len(x) >= 2:
        se = x.std(ddof=1) / np.sqrt(len(x))
        lo, hi = iv.t_interval(x.mean(), se, len(x) - 1, level=level)
        draws[key][:, j] = x[rng.integers(0, len(x), size=(b, len(x)))].mean(axis=1)
    elif key == "success" and np.isfinite(size[0]) and size[0] > 0:
        lo, hi = iv.wilson(round(x[0] * size[0]), size[0], level=level)
        draws[key][:, j] = rng.binomial(int(size[0]), x[0], size=b) / size[0]
    else:
        lo, hi = np.nan, np.nan
        draws[key][:, j] = x[0]
    est[f"{key}_lower"][j], est[f"{key}_upper"][j] = lo, hi

