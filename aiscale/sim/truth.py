"""The true parameters of a simulation and what follows from them analytically.

Expected values are exact up to the rounding of token counts to integers (under one token
per call: relative errors around 1e-3); tests compare estimates with them.

Examples
--------
>>> from aiscale.sim.laws import DEFAULT_VARIANTS
>>> t = Truth(seed=0, n_traces=0, n_tasks=0, n_trials=4, variants=DEFAULT_VARIANTS)
>>> t.hazard("fast-cheap", [1, 5]).round(2).tolist()  # geometric: constant hazard p
[0.12, 0.12]
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
from scipy import special, stats

from aiscale.sim.laws import DEFAULT_START, GAP_S, Variant, task_quantiles


def iteration_cost(v: Variant, k: np.ndarray, factor: float = 1.0) -> np.ndarray:
    """Expected cost (USD) of the LLM call of iteration ``k`` (failed attempts cost nothing)."""
    k = np.asarray(k)
    inp = v.prompt.mean + v.growth * (k - 1)
    first_input = v.prompt.mean
    read = np.where(k >= 2, v.cache_share * inp, 0.0)
    write = np.where((k == 1) & v.cache_writes, v.cache_share * first_input, 0.0)
    p = v.prices
    return (p.input * (inp - read - write) + p.cache_read * read + p.cache_write * write
            + p.output * v.output.mean(factor))


def reach(v: Variant, k: np.ndarray) -> np.ndarray:
    """``P(iterations >= k)``: stuck traces always reach the cap, others reach ``min(T, cap)``."""
    k = np.asarray(k)
    inside = v.stuck_share + (1 - v.stuck_share) * v.loop.survival(k)
    return np.where(k <= v.cap, inside, 0.0)


@dataclass(frozen=True)
class Truth:
    """Everything the simulator was told, plus the per-trace truth when kept.

    Attributes
    ----------
    variants : tuple of Variant
        The declared laws (see :mod:`aiscale.sim.laws`).
    traces : DataFrame or None
        Per trace: task, ``task_success_prob``, ``natural_iterations``, ``censored``, ``stuck``,
        ``stuck_start``, ``after_drift``, and the true iterations, calls, tokens, cost, latency.
    """

    seed: int
    n_traces: int
    n_tasks: int
    n_trials: int
    variants: tuple[Variant, ...]
    start: datetime = DEFAULT_START
    days: int = 14
    daily_amplitude: float = 0.6
    peak_hour: float = 15.0
    gap_s: float = GAP_S
    chunk_traces: int = 10_000
    traces: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        names = [v.name for v in self.variants]
        return f"<aiscale.Truth: {self.n_traces} traces, seed {self.seed}, variants {names}>"

    def variant(self, name: str) -> Variant:
        """Return the declared laws of one variant."""
        for v in self.variants:
            if v.name == name:
                return v
        raise ValueError(f"The value for `variant` must be one of {[v.name for v in self.variants]}, "
                         f"but {name!r} was passed.")

    @property
    def stuck_trace_ids(self) -> list[str]:
        """Trace ids of the planted stuck loops (needs ``traces``)."""
        return self.traces.loc[self.traces["stuck"], "trace_id"].tolist()

    def task_success(self, name: str) -> np.ndarray:
        """True success probability of every simulated task under a variant (stuck and cap included)."""
        v = self.variant(name)
        p = v.task_success(task_quantiles(self.seed, np.arange(self.n_tasks)))
        return (1 - v.stuck_share) * v.loop.dist().cdf(v.cap - 1) * p

    def expected(self, name: str, *, after_drift: bool = False) -> dict[str, float]:
        """Expected success, iterations, tokens and cost per trace of a variant.

        Examples
        --------
        >>> from aiscale.sim.laws import DEFAULT_VARIANTS
        >>> t = Truth(seed=0, n_traces=0, n_tasks=0, n_trials=4, variants=DEFAULT_VARIANTS)
        >>> t.expected("strong")["stuck"]
        0.03
        """
        v = self.variant(name)
        factor = v.drift.output_factor if (after_drift and v.drift) else 1.0
        k = np.arange(1, v.cap + 1)
        w = reach(v, k)
        inp = v.prompt.mean + v.growth * (k - 1)
        return {
            "success": float((1 - v.stuck_share) * v.loop.dist().cdf(v.cap - 1) * v.mean_task_success),
            "iterations": float(w.sum()),
            "censored": float((1 - v.stuck_share) * v.loop.dist().sf(v.cap - 1)),
            "stuck": v.stuck_share,
            "llm_calls": float(w.sum() / (1 - v.error_rate)),
            "errors": float(w.sum() * v.error_rate / (1 - v.error_rate)),
            "input_tokens": float((w * inp).sum()),
            "output_tokens": float(w.sum() * v.output.mean(factor)),
            "cost_usd": float((w * iteration_cost(v, k, factor)).sum()),
        }

    def loop_budget(self, name: str, budgets=None, *, after_drift: bool = False) -> pd.DataFrame:
        """The true loop-budget curve: success rate and mean cost if traces were cut at ``k``."""
        v = self.variant(name)
        factor = v.drift.output_factor if (after_drift and v.drift) else 1.0
        ks = np.arange(1, v.cap + 1) if budgets is None else np.asarray(budgets)
        k = np.arange(1, max(int(ks.max()), 1) + 1)
        cost = np.cumsum(reach(v, k) * iteration_cost(v, k, factor))
        iters = np.cumsum(reach(v, k))
        done = v.loop.dist().cdf(np.minimum(ks, v.cap) - 1)
        return pd.DataFrame({"k": ks, "success_rate": (1 - v.stuck_share) * done * v.mean_task_success,
                             "mean_iterations": iters[ks - 1], "mean_cost_usd": cost[ks - 1]})

    def hazard(self, name: str, k) -> np.ndarray:
        """``P(T = k | T >= k)`` of the natural loop law (before stuck loops and the cap)."""
        return self.variant(name).loop.hazard(k)

    def observed_hazard(self, name: str, k) -> pd.DataFrame:
        """Hazards of the observed loop (stuck loops and the cap included), per iteration ``k``.

        ``finish``: ``P(iterations = k | iterations >= k)`` for ``k < cap``, counting only traces
        that stop on their own (stuck and censored traces run on); ``success``: the probability
        that a trace still running at ``k`` succeeds exactly at ``k``.
        """
        v = self.variant(name)
        k = np.asarray(k)
        ended = np.where(k <= v.cap, (1 - v.stuck_share) * v.loop.pmf(k), 0.0)
        reached = reach(v, k)
        with np.errstate(invalid="ignore", divide="ignore"):
            finish = np.where(reached > 0, ended / reached, np.nan)
        return pd.DataFrame({"k": k, "reach": reached, "finish": finish,
                             "success": finish * v.mean_task_success})

    def pass_hat_k(self, name: str, k: int) -> float:
        """Population pass^k: ``E[q^k]`` with ``q = c p``, ``p ~ Beta(a, b)``."""
        v = self.variant(name)
        a, b = v.success
        c = (1 - v.stuck_share) * v.loop.dist().cdf(v.cap - 1)
        return float(c**k * np.exp(special.betaln(a + k, b) - special.betaln(a, b)))

    def pass_at_k(self, name: str, k: int) -> float:
        """Population pass@k: ``1 - E[(1 - q)^k]``."""
        v = self.variant(name)
        c = (1 - v.stuck_share) * v.loop.dist().cdf(v.cap - 1)
        return float(1 - stats.beta(*v.success).expect(lambda p: (1 - c * p) ** k))

    def summary(self) -> pd.DataFrame:
        """One row per variant: model, key laws and the expected values per trace."""
        rows = []
        for v in self.variants:
            e = self.expected(v.name)
            rows.append({"variant": v.name, "model": v.response_model, "cap": v.cap,
                         "loop_law": f"1 + NB(r={v.loop.r:g}, p={v.loop.p:g})",
                         "mean_task_success": v.mean_task_success, "error_rate": v.error_rate,
                         "stuck_share": v.stuck_share, "expected_success": e["success"],
                         "expected_iterations": e["iterations"], "expected_cost_usd": e["cost_usd"],
                         "drift": f"output x{v.drift.output_factor:g} from {v.drift.at:%Y-%m-%d}"
                         if v.drift else ""})
        return pd.DataFrame(rows).set_index("variant")

    def price_sheet(self) -> pd.DataFrame:
        """Per-million prices of every simulated model, as a price-sheet frame."""
        rows = [{"provider": v.provider, "model": v.response_model, "from_date": "2025-01-01",
                 "input": v.prices.input * 1e6, "cached_input": v.prices.cache_read * 1e6,
                 "cache_write": v.prices.cache_write * 1e6, "output": v.prices.output * 1e6,
                 "reasoning": v.prices.output * 1e6} for v in self.variants]
        return pd.DataFrame(rows).drop_duplicates("model", ignore_index=True)

    def to_dict(self) -> dict:
        """The declared laws as plain JSON-able data (per-trace truth excluded)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "traces"}
        out["variants"] = [dataclasses.asdict(v) for v in self.variants]
        out["expected_per_trace"] = {
            v.name: {"before_drift": self.expected(v.name),
                     **({"after_drift": self.expected(v.name, after_drift=True)} if v.drift else {})}
            for v in self.variants}
        if self.traces is not None:
            out["stuck_trace_ids"] = self.stuck_trace_ids
        return json.loads(json.dumps(out, default=str))
