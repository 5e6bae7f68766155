"""What spend will be: Monte Carlo forecast over a period at a given (growing) traffic.

Each simulation draws the parameters first, then the traffic, then the spend, so the interval
carries both the uncertainty about the per-trace cost distribution (from a finite sample) and
the randomness of the period itself:

1. parameters: ``method="spliced"`` (the default) resamples the costs up to their 90% quantile
   and draws the costs above it from a generalised Pareto tail whose parameters are drawn from
   their sampling distribution (see :mod:`.forecast_tail`), so traces dearer than any seen can
   occur; ``method="empirical"`` resamples the observed per-trace costs (a bootstrap), which
   under-covers when a few large traces carry most of the cost; ``method="lognormal"`` draws (mu, sigma^2) from their posterior given the log costs (flat
   prior: sigma^2 ~ scaled inverse chi-square, mu | sigma^2 normal) and the share of $0 traces
   from a Jeffreys beta;
2. traffic: the number of traces is Poisson with mean ``traffic * sum((1 + growth) ** day)``;
3. spend: the sum of that many per-trace costs, drawn exactly when the total number of draws is
   moderate, else from the normal approximation to the sum (mean N·mu, variance N·var), which is
   accurate at the large N where it is used.

What-ifs are scenarios: ``loop_cap`` (cost cut at k iterations, in proportion k / iterations),
``route_share`` of traffic to a cheaper ``route_to`` variant (costs drawn from that variant's
own distribution), and ``cache_hit_rate`` (share of input tokens read from cache at
``cache_price_ratio`` of the input price, with ``input_cost_share`` the share of cost that is
input tokens).

Examples
--------
>>> import numpy as np, pandas as pd
>>> facts = pd.DataFrame({"cost_usd": np.random.default_rng(0).lognormal(-3, 1, 500)})
>>> fc = forecast(facts, traffic=100, days=30, budget=300, n_sims=2000)
>>> bool(200 < fc.summary().loc[0, "median"] < 300)
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from aiscale.analysis._result import (
    ResultDisplay,
    check_choice,
    check_columns,
    floats,
    new_axes,
    source_label,
    trace_cost,
)
from aiscale.analysis.change.forecast_tail import fit_tail, spliced_spend

__all__ = ["Forecast", "forecast"]

_EXACT = 20_000_000  # per-trace draws above which the sum is drawn from its normal limit
_MIN_SPLICE = 250  # 25 values above the 90% quantile
_WHAT_IFS = ("loop_cap", "route_share", "route_to", "cache_hit_rate", "input_cost_share",
             "cache_price_ratio")


@dataclass(frozen=True, eq=False, repr=False)
class Forecast(ResultDisplay):
    """Spend over a period per scenario: median, 80% and 95% intervals, P(spend > budget).

    ``tail_dominated`` says whether the mean per-trace cost of the base traces is dominated by
    the tail (see :class:`~aiscale.analysis.change.forecast_tail.CostTail`); None when too few
    traces to tell. The summary's ``tail_dominated`` column says it per scenario.
    """

    table: pd.DataFrame
    draws: dict = field(repr=False)
    budget: float | None
    days: int
    method: str
    cost_source: str
    notes: tuple[str, ...]
    tail_dominated: bool | None = None

    def summary(self) -> pd.DataFrame:
        """One row per scenario."""
        return self.table.copy()

    def frame(self) -> pd.DataFrame:
        """Tidy simulated spends: one row per scenario and simulation."""
        return pd.concat([pd.DataFrame({"scenario": k, "spend": v}) for k, v in self.draws.items()],
                         ignore_index=True)

    def plot(self, ax=None, **kwargs):
        """Histogram of simulated spend per scenario; 95% interval and budget marked."""
        ax = new_axes(ax)
        for i, (name, d) in enumerate(self.draws.items()):
            ax.hist(d, bins=kwargs.pop("bins", 60), histtype="step", color=f"C{i}", label=name,
                    **kwargs)
            for q in np.quantile(d, [0.025, 0.975]):
                ax.axvline(q, color=f"C{i}", ls=":", lw=1)
        if self.budget is not None:
            ax.axvline(self.budget, color="k", lw=1.5, label="budget")
        ax.set_xlabel(f"spend over {self.days} days (USD)")
        ax.set_ylabel("simulations")
        ax.legend()
        return ax

    def __repr__(self) -> str:
        r = self.table.iloc[0]
        return (f"<aiscale.Forecast: {self.days} days, median ${r['median']:,.2f} "
                f"(95% ${r['lower_95']:,.2f}–${r['upper_95']:,.2f}), {len(self.table)} scenario(s)>")


def forecast(facts: pd.DataFrame, *, traffic: float, days: int = 30, growth: float = 0.0,
             budget: float | None = None, method: Literal["spliced", "empirical", "lognormal"] = "spliced",
             cost: str = "auto", variant: str | None = None, by: str = "variant",
             scenarios: dict[str, dict] | None = None, n_sims: int = 10_000,
             seed: int | None = 0) -> Forecast:
    """Monte Carlo forecast of spend over ``days`` at ``traffic`` traces per day.

    Parameters
    ----------
    facts : pandas.DataFrame
        Trace facts with a cost column (unpriced traces are left out and counted in a note).
    traffic : float
        Traces per day on the first day.
    days : int, default=30
    growth : float, default=0.0
        Daily growth rate of traffic (0.01 = +1% a day, compounding).
    budget : float, optional
        Gives ``p_over_budget`` = P(spend > budget).
    method : {"spliced", "empirical", "lognormal"}, default="spliced"
        How the per-trace cost distribution and its uncertainty are drawn (module docstring).
        With fewer than 250 priced traces the tail cannot be fitted and "spliced" falls back to
        "empirical" (a note says so). Calibration, measured on 1,000 simulated replications of
        500 observed traces and 3,000 forecast: "spliced" covered 95.1% / 82.5% (95% / 80%
        intervals) on lognormal(-3, 2) cost and 94.1% / 77.8% on Pareto cost with xi = 0.5.
    cost : str, default="auto"
        ``cost_usd`` falling back to ``reported_cost_usd``, or a column name.
    variant : str, optional
        Base the forecast on this value of ``by`` only (default: all traces).
    by : str, default="variant"
    scenarios : dict of str to dict, optional
        Named what-ifs, each a dict of ``loop_cap``, ``route_share`` + ``route_to``,
        ``cache_hit_rate`` + ``input_cost_share`` (+ ``cache_price_ratio``, default 0.1).
        The "as is" scenario is always first.
    n_sims : int, default=10000
    seed : int or None, default=0

    Returns
    -------
    Forecast
    """
    check_choice("method", method, ("spliced", "empirical", "lognormal"))
    if traffic < 0 or days < 1:
        raise ValueError(f"`traffic` must be >= 0 and `days` >= 1, but {traffic!r} and {days!r} "
                         "were passed.")
    c, src = trace_cost(facts, cost)
    base = np.ones(len(facts), bool) if variant is None else _is(facts, by, variant)
    expected = traffic * np.sum((1 + growth) ** np.arange(days))
    rng = np.random.default_rng(seed)
    rows, draws, said = [], {}, []
    for name, what in {"as is": {}, **(scenarios or {})}.items():
        parts = _components(facts, c, base, what, by)
        spend, notes, dominated = _simulate(parts, expected, method, n_sims, rng)
        draws[name] = spend
        rows.append({**_row(name, spend, budget, expected), "tail_dominated": dominated})
        said += [n for n in notes if n not in said]
    unpriced = int(np.isnan(c[base]).sum())
    notes = (f"{unpriced} unpriced trace(s) left out of the cost distribution" if unpriced else "",
             "loop cap: cost cut in proportion k / iterations (quality lost is not modelled; "
             "see loop_budget)" if any("loop_cap" in w for w in (scenarios or {}).values())
             else "", *said)
    return Forecast(pd.DataFrame(rows), draws, budget, days, method, source_label(src[base]),
                    tuple(n for n in notes if n), rows[0]["tail_dominated"])


def _is(facts, by, value):
    check_columns(facts, [by])
    mask = (facts[by].astype(object) == value).to_numpy()
    if not mask.any():
        raise ValueError(f"The value {value!r} is not in column {by!r}; available: "
                         f"{sorted(map(str, pd.unique(facts[by].dropna())))}.")
    return mask


def _components(facts, c, base, what, by) -> list[tuple[float, np.ndarray]]:
    unknown = sorted(set(what) - set(_WHAT_IFS))
    if unknown:
        raise ValueError(f"Scenario keys must be among {list(_WHAT_IFS)}, but {unknown} was passed.")
    x = _apply(facts, c, base, what)
    share = float(what.get("route_share", 0.0))
    if not 0 <= share <= 1:
        raise ValueError(f"`route_share` must be in [0, 1], but {share!r} was passed.")
    if share == 0:
        return [(1.0, x)]
    if "route_to" not in what:
        raise ValueError("A scenario with `route_share` needs `route_to` (a variant name).")
    y = _apply(facts, c, _is(facts, by, what["route_to"]), what)
    return [(1 - share, x), (share, y)]


def _apply(facts, c, mask, what) -> np.ndarray:
    x = c.copy()
    if "loop_cap" in what:
        check_columns(facts, ["iterations"])
        it = floats(facts["iterations"])
        k = float(what["loop_cap"])
        x = np.where(it > k, x * k / it, x)
    if "cache_hit_rate" in what:
        x = x * _cache_factor(facts, what)
    x = x[mask]
    return x[~np.isnan(x)]


def _cache_factor(facts, what) -> np.ndarray:
    if "input_cost_share" not in what:
        raise ValueError("A scenario with `cache_hit_rate` needs `input_cost_share`: the share of "
                         "cost paid for input tokens (e.g. 0.7), which the trace totals do not give.")
    h, s = float(what["cache_hit_rate"]), float(what["input_cost_share"])
    rho = float(what.get("cache_price_ratio", 0.1))
    h0 = np.zeros(len(facts))
    if {"cache_read_tokens", "input_tokens"} <= set(facts.columns):
        with np.errstate(invalid="ignore", divide="ignore"):
            h0 = np.nan_to_num(floats(facts["cache_read_tokens"]) / floats(facts["input_tokens"]))
    return (1 - s) + s * (1 - h * (1 - rho)) / (1 - np.clip(h0, 0, 1) * (1 - rho))


def _simulate(parts, expected, method, n_sims, rng) -> tuple[np.ndarray, list[str], bool | None]:
    n_total = rng.poisson(expected, size=n_sims)
    spend = np.zeros(n_sims)
    remaining = n_total.copy()
    notes: list[str] = []
    dominated = []
    for i, (share, x) in enumerate(parts):
        left = sum(s for s, _ in parts[i:])
        n = remaining if i == len(parts) - 1 else rng.binomial(remaining, min(share / left, 1.0))
        remaining = remaining - n
        if len(x) == 0:
            raise ValueError("No priced traces to forecast from (every cost is unknown).")
        tail = fit_tail(x) if len(x) >= _MIN_SPLICE else None
        dominated.append(None if tail is None else tail.dominated)
        spend += _spend(x, n, method, tail, rng, notes)
    known = [d for d in dominated if d is not None]
    return spend, notes, (any(known) if known else None)


def _spend(x, n, method, tail, rng, notes: list[str]) -> np.ndarray:
    sims = len(n)
    if tail is not None:
        notes += tail.notes(method)
    if method == "spliced":
        if tail is not None:
            return spliced_spend(x, n, tail, rng, _EXACT)
        notes.append(f"{len(x)} priced traces are too few to fit the tail of the cost (a spliced "
                     f"forecast needs {_MIN_SPLICE}): the intervals are a plain bootstrap, which "
                     "under-covers when a few large traces carry most of the cost.")
        method = "empirical"
    if method == "lognormal":
        notes += _lognormal_check(x)
    if method == "empirical" and sims * len(x) > _EXACT:
        return _spend_large_sample(x, n, rng)
    if method == "empirical":
        boot = x[rng.integers(0, len(x), size=(sims, len(x)))]  # a bootstrap sample per simulation
        if n.sum() <= _EXACT:
            pick = rng.integers(0, len(x), size=n.sum())
            sim = np.repeat(np.arange(sims), n)
            return np.bincount(sim, weights=boot[sim, pick], minlength=sims)
        mean, var = boot.mean(axis=1), boot.var(axis=1)
    else:
        p0, mu, s2 = _lognormal_draws(x, sims, rng)
        if n.sum() <= _EXACT:
            sim = np.repeat(np.arange(sims), n)
            v = np.exp(mu[sim] + np.sqrt(s2[sim]) * rng.standard_normal(len(sim)))
            v *= rng.random(len(sim)) >= p0[sim]
            return np.bincount(sim, weights=v, minlength=sims)
        m1 = (1 - p0) * np.exp(mu + s2 / 2)
        mean, var = m1, (1 - p0) * np.exp(2 * mu + 2 * s2) - m1**2
    return np.maximum(rng.normal(n * mean, np.sqrt(n * var)), 0.0)


def _spend_large_sample(x, n, rng) -> np.ndarray:
    """Many observed traces: the bootstrap mean is normal (x̄, s²/len(x)); shift the sum by it."""
    sims = len(n)
    shift = rng.normal(0.0, x.std() / np.sqrt(len(x)), size=sims)
    if n.sum() <= _EXACT:
        sim = np.repeat(np.arange(sims), n)
        base = np.bincount(sim, weights=x[rng.integers(0, len(x), size=n.sum())], minlength=sims)
    else:
        base = rng.normal(n * x.mean(), np.sqrt(n) * x.std())
    return np.maximum(base + n * shift, 0.0)


def _lognormal_draws(x, sims, rng):
    pos = np.log(x[x > 0])
    k = len(pos)
    if k < 2:
        raise ValueError(f"method='lognormal' needs at least 2 positive costs, but {k} were given.")
    p0 = rng.beta(len(x) - k + 0.5, k + 0.5, size=sims)
    s2 = (k - 1) * pos.var(ddof=1) / rng.chisquare(k - 1, size=sims)
    mu = rng.normal(pos.mean(), np.sqrt(s2 / k))
    return p0, mu, s2


def _lognormal_check(x) -> list[str]:
    """A note when the log costs are plainly not normal (the lognormal intervals then mislead)."""
    from scipy import stats

    logs = np.log(x[x > 0])
    if len(logs) < 20:
        return []
    p = stats.normaltest(logs).pvalue
    if p >= 0.001:
        return []
    return [f"The log costs are not normal (D'Agostino p = {p:.1g}): method='lognormal' misstates "
            "the tail and its intervals are not calibrated; use method='spliced'."]


def _row(name, spend, budget, expected) -> dict:
    q = np.quantile(spend, [0.5, 0.1, 0.9, 0.025, 0.975])
    return {"scenario": name, "expected_traces": expected, "mean": spend.mean(), "median": q[0],
            "lower_80": q[1], "upper_80": q[2], "lower_95": q[3], "upper_95": q[4],
            "p_over_budget": float((spend > budget).mean()) if budget is not None else np.nan}
