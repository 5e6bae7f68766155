"""What changed over time: window comparisons with multiple-testing control, and a change-date scan.

:func:`drift` compares windows of traces — consecutive days or weeks (``freq=``), or before and
after a date or release (``at=``) — on cost per trace, tokens, iterations, latency (Mann–Whitney
rank tests: these are skewed, and a rank test is not driven by a few huge traces) and success
(two-proportion z test, Fisher's exact test when a cell is small). The p values of all tests are
adjusted together by Benjamini–Hochberg, so the table of significant changes has a false
discovery rate of at most ``alpha``; with no real change, an alarm of any kind comes at most an
``alpha`` share of the time. :func:`change_point` scans every day (or week) boundary for the
split that best separates earlier from later values (Pettitt's rank statistic) and gives a
permutation p value for the maximum.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> t = pd.date_range("2025-01-01", periods=400, freq="h", tz="UTC")
>>> f = pd.DataFrame({"started_at": t, "cost_usd": rng.lognormal(0, 0.5, 400)
...                   * np.where(t >= "2025-01-10", 2.0, 1.0)})
>>> change_point(f, metric="cost_usd", n_perm=199).date
Timestamp('2025-01-10 00:00:00+0000', tz='UTC')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aiscale.analysis._dists import bh_adjust, mannwhitneyu_p, norm_sf, rank_average
from aiscale.analysis._result import ResultDisplay, check_columns, floats, new_axes, trace_cost

__all__ = ["ChangePoint", "Drift", "change_point", "drift"]

_METRICS = ("cost", "input_tokens", "output_tokens", "iterations", "latency_s", "success")
_PERM_CELLS = 4_000_000


@dataclass(frozen=True, eq=False, repr=False)
class Drift(ResultDisplay):
    """Tests of every metric between windows, BH-adjusted; ``changes()`` lists the significant."""

    table: pd.DataFrame
    alpha: float
    notes: tuple[str, ...]

    def summary(self) -> pd.DataFrame:
        """All tests, most significant first."""
        return self.table.sort_values(["q_value", "p_value"]).reset_index(drop=True)

    def changes(self) -> pd.DataFrame:
        """Only what changed significantly (q < alpha), with the size of the change."""
        s = self.summary()
        return s[s["significant"]].reset_index(drop=True)

    def frame(self) -> pd.DataFrame:
        """The tidy table, in window order."""
        return self.table.copy()

    def plot(self, ax=None, **kwargs):
        """Relative change per metric and window; significant changes solid, others faded."""
        ax = new_axes(ax)
        t = self.table
        labels = [f"{m} {b}" for m, b in zip(t["metric"], t["window_b"], strict=True)]
        y = np.arange(len(t))
        colors = np.where(t["significant"], "C3", "C7")
        ax.barh(y, t["relative_change"].fillna(0), color=colors, **kwargs)
        ax.set_yticks(y, labels, fontsize=7)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_xlabel(f"relative change vs previous window (red: BH q < {self.alpha})")
        return ax

    def __repr__(self) -> str:
        return (f"<aiscale.Drift: {len(self.table)} tests, {int(self.table['significant'].sum())} "
                f"significant at FDR {self.alpha}>")


def drift(facts: pd.DataFrame, *, at=None, freq: str | None = None,
          metrics: Sequence[str] | None = None, time: str = "started_at", cost: str = "auto",
          alpha: float = 0.05) -> Drift:
    """Compare windows of traces on cost, tokens, iterations, latency and success.

    Parameters
    ----------
    facts : pandas.DataFrame
        Trace facts with a timestamp column ``time``.
    at : str or Timestamp, optional
        Compare before (< at) with after (>= at), e.g. a release date.
    freq : str, optional
        Consecutive windows ("D", "W", any pandas frequency), each compared with the one before.
        Default "W" when ``at`` is not given.
    metrics : list of str, optional
        Columns to test ("cost" means the trace cost); default every one of
        ``cost, input_tokens, output_tokens, iterations, latency_s, success`` that has data.
    time, cost, alpha
        Timestamp column; cost column ("auto": cost_usd then reported_cost_usd); the false
        discovery rate.

    Returns
    -------
    Drift
    """
    check_columns(facts, [time])
    ts = pd.to_datetime(facts[time], utc=True)
    if at is not None and freq is not None:
        raise ValueError("Pass either `at` (before/after a date) or `freq` (consecutive windows), "
                         f"not both; got at={at!r}, freq={freq!r}.")
    if at is not None:
        cut = pd.Timestamp(at, tz="UTC") if pd.Timestamp(at).tzinfo is None else pd.Timestamp(at)
        label = np.where(ts < cut, "before", "after")
        pairs = [("before", "after")]
    else:
        win = ts.dt.tz_localize(None).dt.to_period(freq or "W").astype(str).to_numpy()
        order = sorted(set(win))
        label, pairs = win, list(zip(order[:-1], order[1:], strict=True))
    values = _metric_values(facts, metrics)
    rows = [_test(m, x, label, a, b) for m, x in values.items() for a, b in pairs]
    table = pd.DataFrame(rows)
    ok = table["p_value"].notna().to_numpy()
    table["q_value"] = np.nan
    if ok.any():
        table.loc[ok, "q_value"] = bh_adjust(table.loc[ok, "p_value"])
    table["significant"] = (table["q_value"] < alpha).to_numpy()
    return Drift(table, alpha, ("p values adjusted together by Benjamini–Hochberg",))


def _metric_values(facts, metrics) -> dict[str, np.ndarray]:
    wanted = list(metrics) if metrics is not None else list(_METRICS)
    out = {}
    for m in wanted:
        if m == "cost":
            if metrics is None and not {"cost_usd", "reported_cost_usd"} & set(facts.columns):
                continue
            out[m] = trace_cost(facts)[0]
        elif m in facts.columns:
            out[m] = floats(facts[m])
        elif metrics is not None:
            check_columns(facts, [m])
    return {k: v for k, v in out.items() if metrics is not None or np.isfinite(v).any()}


def _test(metric, x, label, a, b) -> dict:
    xa, xb = x[(label == a) & ~np.isnan(x)], x[(label == b) & ~np.isnan(x)]
    row = {"metric": metric, "window_a": a, "window_b": b, "n_a": len(xa), "n_b": len(xb)}
    binary = metric == "success" or (np.isin(x[~np.isnan(x)], (0, 1)).all() and metric != "cost")
    ea = xa.mean() if len(xa) else np.nan
    eb = xb.mean() if len(xb) else np.nan
    row.update({"statistic": "rate" if binary else "mean", "estimate_a": ea, "estimate_b": eb,
                "median_a": np.median(xa) if len(xa) and not binary else np.nan,
                "median_b": np.median(xb) if len(xb) and not binary else np.nan,
                "change": eb - ea, "relative_change": eb / ea - 1 if ea else np.nan})
    if len(xa) < 2 or len(xb) < 2:
        return {**row, "test": "too few traces", "p_value": np.nan}
    if binary:
        return {**row, **_proportions(xa, xb)}
    if np.ptp(np.concatenate([xa, xb])) == 0:
        return {**row, "test": "Mann-Whitney U", "p_value": 1.0}
    return {**row, "test": "Mann-Whitney U", "p_value": mannwhitneyu_p(xa, xb)}


def _proportions(xa, xb) -> dict:
    sa, sb, na, nb = xa.sum(), xb.sum(), len(xa), len(xb)
    pooled = (sa + sb) / (na + nb)
    expected = np.outer([na, nb], [pooled, 1 - pooled])
    if expected.min() < 5:
        from scipy import stats  # the exact test only: scipy.stats is slow to import

        p = stats.fisher_exact([[sa, na - sa], [sb, nb - sb]]).pvalue
        return {"test": "Fisher exact", "p_value": float(p)}
    z = (sb / nb - sa / na) / np.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))
    return {"test": "two-proportion z", "p_value": float(2 * norm_sf(abs(z)))}


@dataclass(frozen=True, eq=False, repr=False)
class ChangePoint(ResultDisplay):
    """The boundary that best splits a metric into earlier and later values, and its p value."""

    metric: str
    date: pd.Timestamp
    p_value: float
    statistic: float
    scan: pd.DataFrame
    before: float
    after: float
    notes: tuple[str, ...]

    def summary(self) -> pd.DataFrame:
        """One row: date, p value, Pettitt statistic, median before and after."""
        return pd.DataFrame([{"metric": self.metric, "date": self.date, "p_value": self.p_value,
                              "statistic": self.statistic, "median_before": self.before,
                              "median_after": self.after,
                              "relative_change": self.after / self.before - 1
                              if self.before else np.nan}])

    def frame(self) -> pd.DataFrame:
        """The scan: |U| of Pettitt's statistic at every candidate boundary."""
        return self.scan.copy()

    def plot(self, ax=None, **kwargs):
        """The scan statistic over the candidate dates, the chosen date marked."""
        ax = new_axes(ax)
        ax.plot(self.scan["date"], self.scan["abs_u"], **kwargs)
        ax.axvline(self.date, color="C3", ls="--", label=f"change (p = {self.p_value:.3g})")
        ax.set_ylabel(f"|Pettitt U| for {self.metric}")
        ax.legend()
        return ax

    def __repr__(self) -> str:
        return (f"<aiscale.ChangePoint: {self.metric} best split at {self.date:%Y-%m-%d %H:%M} "
                f"(p = {self.p_value:.3g}), median {self.before:.4g} → {self.after:.4g}>")


def change_point(facts: pd.DataFrame, *, metric: str = "cost", freq: str = "D",
                 time: str = "started_at", n_perm: int = 999, seed: int | None = 0) -> ChangePoint:
    """Find the date where a metric changes: Pettitt's rank scan over ``freq`` boundaries.

    For a split after trace t (in time order), ``U_t = 2 * sum(ranks[:t]) - t * (n + 1)``; the
    change date is the boundary with the largest ``|U_t|``, and the p value is the share of
    random orderings of the ranks whose maximum is at least as large (permutation test; when the
    permutations would not fit in memory, Pettitt's approximation ``2 exp(-6 K² / (n³ + n²))``).

    Parameters
    ----------
    facts : pandas.DataFrame
    metric : str, default="cost"
        A facts column, or "cost" (``cost_usd`` falling back to ``reported_cost_usd``).
    freq : str, default="D"
        Candidate boundaries: starts of days ("D"), weeks ("W"), hours ("h") ...
    time, n_perm, seed
        Timestamp column; permutations; random seed.

    Returns
    -------
    ChangePoint
    """
    check_columns(facts, [time])
    x = _metric_values(facts, [metric])[metric]
    ts = pd.to_datetime(facts[time], utc=True).to_numpy()
    ok = ~np.isnan(x) & ~pd.isna(ts)
    order = np.argsort(ts[ok], kind="stable")
    x, ts = x[ok][order], pd.DatetimeIndex(ts[ok][order])
    n = len(x)
    bins = ts.floor(freq)
    cand = np.flatnonzero(bins[1:] != bins[:-1]) + 1  # split before these positions
    if n < 4 or len(cand) == 0:
        raise ValueError(f"change_point needs traces in at least two {freq!r} periods; got {n} "
                         f"trace(s) in {len(set(bins))} period(s).")
    ranks = rank_average(x)
    u = 2 * np.cumsum(ranks)[cand - 1] - cand * (n + 1)
    k = int(np.argmax(np.abs(u)))
    stat = float(np.abs(u[k]))
    p = _perm_p(ranks, cand, stat, n_perm, seed)
    scan = pd.DataFrame({"date": bins[cand], "abs_u": np.abs(u)})
    return ChangePoint(metric, bins[cand[k]], p, stat, scan, float(np.median(x[:cand[k]])),
                       float(np.median(x[cand[k]:])), ())


def _perm_p(ranks, cand, stat, n_perm, seed) -> float:
    n = len(ranks)
    if n_perm * n > 5 * _PERM_CELLS or n_perm < 1:
        return float(min(1.0, 2 * np.exp(-6 * stat**2 / (n**3 + n**2))))
    rng = np.random.default_rng(seed)
    hits, step = 0, max(1, _PERM_CELLS // n)
    for start in range(0, n_perm, step):
        b = min(step, n_perm - start)
        perm = rng.permuted(np.broadcast_to(ranks, (b, n)), axis=1)
        u = 2 * np.cumsum(perm, axis=1)[:, cand - 1] - cand * (n + 1)
        hits += int((np.abs(u).max(axis=1) >= stat - 1e-9).sum())
    return (hits + 1) / (n_perm + 1)
