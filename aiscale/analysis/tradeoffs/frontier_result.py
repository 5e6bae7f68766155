"""The Frontier result object shared by the trace-level and the run-level frontier.

Examples
--------
>>> import numpy as np
>>> t = assemble(["a", "b"], {"success": np.array([0.5, 0.9]),
...              "mean_cost": np.array([1.0, 2.0])}, draws={}, level=0.95, by="variant",
...              cost_label="mean cost per task (USD)", latency_objective=None, notes=())
>>> t.members()
['a', 'b']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aiscale.analysis._result import ResultDisplay, new_axes
from aiscale.analysis.tradeoffs.pareto import dominators, pareto_mask

_METRICS = ("success", "mean_cost", "cost_per_success", "latency_p50", "latency_p95", "latency")


@dataclass(frozen=True, eq=False, repr=False)
class Frontier(ResultDisplay):
    """Success, cost and latency per variant with intervals, and the Pareto frontier.

    Attributes
    ----------
    table : DataFrame
        One row per variant: estimates with ``_lower``/``_upper``, ``cost_source``, ``priced``,
        ``on_frontier`` (cost, success), ``p_frontier`` (share of bootstrap resamples on it),
        ``dominated_by`` and, where latency is known, ``on_frontier_3d`` / ``p_frontier_3d``
        over (cost, success, latency).
    """

    table: pd.DataFrame
    by: str
    level: float
    cost_label: str
    latency_objective: str | None
    notes: tuple[str, ...]

    def summary(self) -> pd.DataFrame:
        """The per-variant table (frontier members first, then by cost)."""
        return self.table.copy()

    def members(self, *, three_d: bool = False) -> list:
        """Variants on the (cost, success) frontier, or on the 3-D one with latency."""
        col = "on_frontier_3d" if three_d else "on_frontier"
        if col not in self.table:
            return []
        return self.table.loc[self.table[col].fillna(False).astype(bool), self.by].tolist()

    @property
    def unpriced(self) -> list:
        """Variants without any known cost: listed, never placed at $0."""
        return self.table.loc[~self.table["priced"], self.by].tolist()

    def frame(self) -> pd.DataFrame:
        """Tidy: one row per variant and metric with estimate, lower and upper."""
        rows = [pd.DataFrame({self.by: self.table[self.by], "metric": m,
                              "estimate": self.table[m], "lower": self.table[f"{m}_lower"],
                              "upper": self.table[f"{m}_upper"]})
                for m in _METRICS if m in self.table]
        return pd.concat(rows, ignore_index=True)

    def plot(self, ax=None, **kwargs):
        """Cost (log axis) against success with error bars; frontier drawn, dominated faded."""
        ax = new_axes(ax)
        t = self.table[self.table["priced"]].sort_values("mean_cost")
        on = t["on_frontier"].fillna(False).astype(bool).to_numpy()
        for mask, alpha in ((~on, 0.3), (on, 1.0)):
            s = t[mask]
            xerr = np.vstack([s["mean_cost"] - s["mean_cost_lower"],
                              s["mean_cost_upper"] - s["mean_cost"]])
            yerr = np.vstack([s["success"] - s["success_lower"], s["success_upper"] - s["success"]])
            ax.errorbar(s["mean_cost"], s["success"], xerr=np.nan_to_num(xerr),
                        yerr=np.nan_to_num(yerr), fmt="o", alpha=alpha, capsize=2,
                        color=kwargs.get("color", "C0"), **{k: v for k, v in kwargs.items()
                                                             if k != "color"})
            for _, r in s.iterrows():
                ax.annotate(str(r[self.by]), (r["mean_cost"], r["success"]), fontsize=7,
                            alpha=alpha, xytext=(3, 3), textcoords="offset points")
        f = t[on]
        ax.plot(f["mean_cost"], f["success"], "-", color="C1", label="frontier")
        ax.set_xscale("log")
        ax.set_xlabel(self.cost_label + " (log)")
        ax.set_ylabel(f"success rate ({self.level:.0%} CI)")
        ax.legend(loc="lower right")
        return ax

    def __repr__(self) -> str:
        return (f"<aiscale.Frontier: {len(self.table)} {self.by}(s), "
                f"{len(self.members())} on the frontier, {len(self.unpriced)} unpriced>")


def assemble(names, est: dict, *, draws: dict, level: float, by: str, cost_label: str,
             latency_objective: str | None, notes: tuple, sources=None) -> Frontier:
    """Build a Frontier from estimates (``est[m]``, ``est[m + '_lower']``...) and bootstrap draws.

    ``draws`` maps "success", "mean_cost" and optionally the latency objective to arrays of
    shape (resamples, variants); empty means no frontier probabilities.
    """
    v = len(names)
    table = pd.DataFrame({by: list(names)})
    for m in _METRICS:
        if m in est:
            table[m] = est[m]
            for side in ("lower", "upper"):
                table[f"{m}_{side}"] = est.get(f"{m}_{side}", np.full(v, np.nan))
    table["cost_source"] = sources if sources is not None else "cost"
    table["priced"] = np.isfinite(table["mean_cost"].to_numpy(dtype=float))
    cost, succ = table["mean_cost"].to_numpy(float), table["success"].to_numpy(float)
    _front(table, "", cost, succ, None, draws, names)
    lat = latency_objective
    if lat is not None and np.isfinite(table[lat].to_numpy(float)).any():
        _front(table, "_3d", cost, succ, table[lat].to_numpy(float), draws, names, lat)
    order = np.lexsort((table["mean_cost"].to_numpy(float), ~table["on_frontier"].fillna(False)
                        .astype(bool).to_numpy()))
    table = table.iloc[order].reset_index(drop=True)
    return Frontier(table, by, level, cost_label, lat, tuple(n for n in notes if n))


def _front(table, suffix, cost, succ, lat, draws, names, lat_key=None) -> None:
    priced = table["priced"].to_numpy()
    on = pareto_mask(cost, succ, lat)[0]
    table["on_frontier" + suffix] = pd.array(np.where(priced, on, pd.NA), dtype="boolean")
    if "success" in draws and "mean_cost" in draws:
        ld = draws.get(lat_key) if lat_key else None
        table["p_frontier" + suffix] = np.where(
            priced, pareto_mask(draws["mean_cost"], draws["success"], ld).mean(axis=0), np.nan)
    table["dominated_by" + suffix] = np.where(
        priced, dominators(np.where(priced, cost, np.nan), succ, names, lat), "")
