"""Alert rules for scheduled runs: spend over budget, a success drop, a cost-per-trace rise.

:func:`check_rules` evaluates, on the last window of traces (``since``, ending at the latest
trace or ``until``) against the window of the same length before it:

- **budget**: the spend :func:`~aiscale.analysis.change.forecast.forecast` over ``horizon_days``
  at the window's traffic; fires when P(spend > budget) >= ``budget_risk``;
- **success drop**: fires when :func:`~aiscale.analysis.change.drift.drift` finds the success
  rate changed (Benjamini–Hochberg q < ``alpha``, two-sided, over the two drift rules) and it
  fell by more than ``max_success_drop`` (a proportion, 0.05 = 5 points);
- **cost rise**: the same for cost per trace (Mann–Whitney), when its mean rose by more than
  ``max_cost_rise`` (0.2 = 20%).

On stationary traffic the two drift rules together fire in at most an ``alpha`` share of runs
(each is a two-sided test whose one direction alone can fire). The budget rule has no false-
alarm rate of its own: it fires when the budget is likely to be exceeded.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> facts = pd.DataFrame({"started_at": pd.date_range("2025-01-01", periods=400, freq="h", tz="UTC"),
...                       "cost_usd": rng.lognormal(0, 0.5, 400), "success": rng.random(400) < 0.7})
>>> check_rules(facts, since="7d", budget_usd=10.0).fired
['budget']
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from aiscale.analysis._result import ResultDisplay, check_columns, new_axes, trace_cost
from aiscale.analysis.change.drift import drift
from aiscale.analysis.change.forecast import forecast

__all__ = ["Alerts", "check_rules"]


@dataclass(frozen=True, eq=False, repr=False)
class Alerts(ResultDisplay):
    """One row per rule: evaluated, fired, value, threshold and a sentence."""

    table: pd.DataFrame = field(repr=False)
    window: dict
    notes: tuple[str, ...] = ()

    @property
    def fired(self) -> list[str]:
        """Names of the rules that fired."""
        return self.table.loc[self.table["fired"], "rule"].tolist()

    def __repr__(self) -> str:
        return (f"<aiscale.Alerts: {len(self.table)} rules, fired: "
                f"{', '.join(self.fired) or 'none'}>")

    def summary(self) -> pd.DataFrame:
        """The rules table."""
        return self.table.copy()

    def frame(self) -> pd.DataFrame:
        """The same table (the data behind the figure)."""
        return self.table.copy()

    def to_json(self) -> dict:
        """A JSON-ready record for a webhook: window, rules, fired."""
        rules = [{k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                  for k, v in row.items()} for row in self.table.to_dict("records")]
        return {"status": "fired" if self.fired else "all clear", "fired": self.fired,
                "window": self.window, "rules": rules, "notes": list(self.notes)}

    def text(self) -> str:
        """A short summary for the terminal, one line per rule."""
        head = (f"aiscale check: {self.window['traces']} traces from {self.window['start']} to "
                f"{self.window['end']} (baseline {self.window['baseline_traces']} traces)")
        lines = [head] + [f"  [{'FIRED' if r.fired else 'ok' if r.evaluated else 'skipped'}] "
                          f"{r.rule}: {r.detail}" for r in self.table.itertuples()]
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])

    def plot(self, ax=None, **kwargs):
        """Each rule's value against its threshold (fired rules in red)."""
        ax = new_axes(ax)
        t = self.table.loc[self.table["evaluated"]]
        ax.barh(t["rule"], t["value"], color=np.where(t["fired"], "C3", "C2"), **kwargs)
        ax.scatter(t["threshold"], t["rule"], marker="|", s=300, color="k", label="threshold")
        ax.legend(fontsize="small")
        return ax


def check_rules(facts: pd.DataFrame, *, since: str = "7d", until=None,
                budget_usd: float | None = None, horizon_days: int = 30, budget_risk: float = 0.5,
                max_success_drop: float = 0.0, max_cost_rise: float = 0.0, alpha: float = 0.05,
                n_sims: int = 4000, seed: int | None = 0) -> Alerts:
    """Evaluate the alert rules on the last ``since`` of traces.

    Parameters
    ----------
    facts : pandas.DataFrame
        Trace facts with started_at, a cost column and (for the success rule) success.
    since : str, default="7d"
        Length of the window (a pandas Timedelta: "7d", "24h"); the baseline is the window
        of the same length before it.
    until : str or Timestamp, optional
        End of the window (default: the latest trace start, so re-runs on old data agree).
    budget_usd, horizon_days, budget_risk
        The budget over the horizon and the probability of exceeding it that fires the rule.
    max_success_drop : float, default=0.0
        Fire on a significant drop larger than this (a proportion).
    max_cost_rise : float, default=0.0
        Fire on a significant rise in mean cost per trace larger than this (a fraction).
    alpha : float, default=0.05
        False discovery rate of the two drift rules together.
    n_sims, seed
        Forecast simulations and seed.

    Returns
    -------
    Alerts
        ``fired`` names the rules that fired; ``to_json()`` for a webhook.
    """
    check_columns(facts, ["started_at"])
    started = pd.to_datetime(facts["started_at"], utc=True)
    length = pd.Timedelta(since)
    if length <= pd.Timedelta(0):
        raise ValueError(f"`since` must be a positive duration like '7d', but {since!r} was passed.")
    end = started.max() if until is None else _utc(until)
    if pd.isna(end):
        raise ValueError("No trace has a start time: the window cannot be placed.")
    current = ((started > end - length) & (started <= end)).to_numpy(dtype=bool)
    baseline = ((started > end - 2 * length) & (started <= end - length)).to_numpy(dtype=bool)
    if not current.any():
        raise ValueError(f"No traces in the window {end - length} to {end}.")
    window = {"start": str(end - length), "end": str(end), "traces": int(current.sum()),
              "baseline_traces": int(baseline.sum())}
    rows = [_budget(facts.loc[current], length, budget_usd, horizon_days, budget_risk, n_sims, seed)]
    rows += _drift_rules(facts, current, baseline, end - length, max_success_drop, max_cost_rise, alpha)
    table = pd.DataFrame(rows, columns=["rule", "evaluated", "fired", "value", "threshold", "detail"])
    notes = () if baseline.any() else ("no traces in the baseline window: drift rules skipped",)
    return Alerts(table, window, notes)


def _utc(value) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _budget(current, length, budget, horizon, risk, n_sims, seed) -> dict:
    if budget is None:
        return _skip("budget", "no --budget-usd given")
    cost, _ = trace_cost(current)
    if np.isnan(cost).all():
        return _skip("budget", "cost is unknown for every trace in the window (not zero)")
    traffic = len(current) / (length / pd.Timedelta(days=1))
    row = forecast(current, traffic=traffic, days=horizon, budget=budget, n_sims=n_sims,
                   seed=seed).summary().iloc[0]
    p = float(row["p_over_budget"])
    detail = (f"P(spend over ${budget:,.2f} in {horizon} days) = {p:.0%} at {traffic:,.1f} traces/day "
              f"(median ${row['median']:,.2f}, 95% ${row['lower_95']:,.2f}–${row['upper_95']:,.2f})")
    return {"rule": "budget", "evaluated": True, "fired": p >= risk, "value": p, "threshold": risk,
            "detail": detail}


def _drift_rules(facts, current, baseline, cut, max_drop, max_rise, alpha) -> list[dict]:
    names = ("success drop", "cost rise")
    if not baseline.any():
        return [_skip(n, "no baseline traces") for n in names]
    both = facts.loc[current | baseline]
    metrics = ["cost"] + (["success"] if "success" in both and both["success"].notna().any() else [])
    table = drift(both, at=cut, metrics=metrics, alpha=alpha).summary().set_index("metric")
    rows = []
    if "success" in table.index:
        r = table.loc["success"]
        drop = r["estimate_a"] - r["estimate_b"]
        fired = bool(r["q_value"] < alpha and drop > max_drop)
        rows.append({"rule": "success drop", "evaluated": True, "fired": fired, "value": drop,
                     "threshold": max_drop,
                     "detail": f"success {r['estimate_a']:.1%} -> {r['estimate_b']:.1%} "
                               f"(q = {r['q_value']:.3g}, fires on a significant drop > {max_drop:.1%})"})
    else:
        rows.append(_skip("success drop", "no trace has an outcome"))
    r = table.loc["cost"]
    rise = r["relative_change"]
    fired = bool(r["q_value"] < alpha and rise > max_rise)
    rows.append({"rule": "cost rise", "evaluated": bool(np.isfinite(r["p_value"])), "fired": fired,
                 "value": rise, "threshold": max_rise,
                 "detail": f"mean cost per trace ${r['estimate_a']:,.4f} -> ${r['estimate_b']:,.4f} "
                           f"({rise:+.1%}, q = {r['q_value']:.3g}, fires on a significant rise > "
                           f"{max_rise:.0%})"})
    return rows


def _skip(rule: str, why: str) -> dict:
    return {"rule": rule, "evaluated": False, "fired": False, "value": np.nan, "threshold": np.nan,
            "detail": f"not evaluated: {why}"}
