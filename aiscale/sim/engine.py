"""Vectorised generation of one chunk of simulated traces (NumPy only, no loop per span).

A chunk is a fixed range of trace indices; its random numbers come from
``numpy.random.default_rng([seed, chunk])`` and task difficulties from a counter hash of
``(seed, task)``, so the output depends only on the seed and the chunk size, and memory is
bounded by the chunk size whatever the number of traces.

Examples
--------
>>> plan = Plan(n_traces=8, seed=1)
>>> chunk = generate_chunk(plan, 0)
>>> len(chunk.truth), chunk.truth["variant"].nunique()
(8, 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter

import numpy as np
import pandas as pd

from aiscale.sim.laws import (
    DEFAULT_START,
    DEFAULT_VARIANTS,
    GAP_S,
    TOOLS,
    Variant,
    task_quantiles,
)
from aiscale.sim.spans import SpanParts, assemble

_US = 1_000_000
_DAY_US = 86_400 * _US


@dataclass(frozen=True)
class Plan:
    """What to simulate: traces are ``(task, variant, trial)`` in that nesting order."""

    n_traces: int
    seed: int = 0
    variants: tuple[Variant, ...] = DEFAULT_VARIANTS
    n_trials: int = 4
    start: datetime = DEFAULT_START
    days: int = 14
    daily_amplitude: float = 0.6
    peak_hour: float = 15.0
    chunk_traces: int = 10_000
    n_users: int = 40
    gap_s: float = field(default=GAP_S)

    @property
    def n_tasks(self) -> int:
        per_task = len(self.variants) * self.n_trials
        return -(-self.n_traces // per_task)

    @property
    def n_chunks(self) -> int:
        return -(-self.n_traces // self.chunk_traces)


@dataclass(frozen=True)
class ChunkResult:
    """Canonical spans and traces of one chunk, plus the per-trace truth."""

    spans: pd.DataFrame
    traces: pd.DataFrame
    truth: pd.DataFrame


def _daily_seconds(u: np.ndarray, amplitude: float, peak_hour: float) -> np.ndarray:
    """Seconds into the day with density ``(1 + A cos(2 pi (h - peak) / 24)) / 24`` per hour."""
    h = np.linspace(0.0, 24.0, 24 * 240 + 1)
    w = 2 * np.pi / 24
    cdf = (h + amplitude / w * (np.sin(w * (h - peak_hour)) + np.sin(w * peak_hour))) / 24
    return np.interp(u, cdf, h) * 3600.0


def _lognormal(rng, law_median, law_sigma, size=None):
    return np.exp(rng.normal(np.log(law_median), law_sigma, size))


def _col(variants, vi: np.ndarray, what) -> np.ndarray:
    """One value per variant (an attribute path like ``"loop.r"`` or a function), indexed by ``vi``."""
    get = what if callable(what) else (lambda v: attrgetter(what)(v))
    return np.array([get(v) for v in variants])[vi]


def _trace_draws(plan: Plan, idx: np.ndarray, rng) -> dict:
    V, K, vs = len(plan.variants), plan.n_trials, plan.variants
    task, vi, trial = idx // (V * K), (idx // K) % V, idx % K
    n = len(idx)
    day = rng.integers(0, plan.days, n)
    secs = _daily_seconds(rng.random(n), plan.daily_amplitude, plan.peak_hour)
    start_us = int(plan.start.timestamp()) * _US
    t0 = start_us + day * _DAY_US + np.round(secs * _US).astype(np.int64)
    drift_at = _col(vs, vi, lambda v: int(v.drift.at.timestamp()) * _US if v.drift else 2**62)
    after = t0 >= drift_at
    factor = np.where(after, _col(vs, vi, lambda v: v.drift.output_factor if v.drift else 1.0), 1.0)
    cap = _col(vs, vi, "cap")
    stuck = rng.random(n) < _col(vs, vi, "stuck_share")
    natural = 1 + rng.negative_binomial(_col(vs, vi, "loop.r"),
                                        _col(vs, vi, "loop.p"))
    censored = ~stuck & (natural > cap)
    u = task_quantiles(plan.seed, task)
    p_task = np.empty(n)
    for j, v in enumerate(vs):
        p_task[vi == j] = v.task_success(u[vi == j])
    success = ~stuck & ~censored & (rng.random(n) < p_task)
    return dict(
        task=task, vi=vi, trial=trial, t0=t0, after=after, factor=factor, cap=cap, stuck=stuck,
        natural=natural, censored=censored, p_task=p_task, success=success,
        iterations=np.where(stuck, cap, np.minimum(natural, cap)),
        stuck_start=1 + rng.integers(0, np.clip(cap - 1, 1, 3)),
        stuck_tool=rng.integers(0, len(TOOLS), n),
        prompt=np.maximum(1, np.round(_lognormal(rng, _col(vs, vi, "prompt.median"),
                                                 _col(vs, vi, "prompt.sigma")))),
    )


def _output_tokens(vs, vi, factor, rng) -> np.ndarray:
    x = _lognormal(rng, _col(vs, vi, "output.body.median"),
                   _col(vs, vi, "output.body.sigma"))
    u = _col(vs, vi, "output.threshold")
    xi = _col(vs, vi, "output.tail_xi")
    scale = _col(vs, vi, "output.tail_scale")
    w = rng.random(len(vi))
    tail = x > u
    safe_xi = np.where(xi == 0, 1.0, xi)
    gpd = np.where(xi == 0, -np.log1p(-w), (np.power(1 - w, -safe_xi) - 1) / safe_xi) * scale
    x = np.where(tail, u + gpd, x)
    return np.maximum(1, np.round(factor * x)).astype(np.int64)


def _iteration_draws(plan: Plan, tr: dict, rng) -> dict:
    vs = plan.variants
    iters = tr["iterations"]
    it = np.repeat(np.arange(len(iters)), iters)
    first = np.cumsum(iters) - iters
    k = np.arange(len(it)) - first[it] + 1
    vi = tr["vi"][it]
    probs = np.stack([_col(vs, vi, lambda v, j=j: sum(v.tool_probs[: j + 1])) for j in (0, 1)])
    draw = rng.random(len(it))
    tools = (draw >= probs[0]).astype(np.int64) + (draw >= probs[1])
    natural_last = (k == iters[it]) & ~tr["stuck"][it] & ~tr["censored"][it]
    stuck_phase = tr["stuck"][it] & (k >= tr["stuck_start"][it])
    tools = np.where(stuck_phase, 1, np.where(natural_last, 0, tools))
    failures = rng.geometric(1 - _col(vs, vi, "error_rate")) - 1
    inp = (tr["prompt"][it] + _col(vs, vi, "growth") * (k - 1)).astype(np.int64)
    cached = np.round(_col(vs, vi, "cache_share") * inp).astype(np.int64)
    cache_read = np.where(k >= 2, cached, 0)
    cache_write = np.where((k == 1) & _col(vs, vi, "cache_writes"), cached, 0)
    out = _output_tokens(vs, vi, tr["factor"][it], rng)
    reasoning = np.round(_col(vs, vi, "reasoning_share") * out).astype(np.int64)
    ttft = np.round(_lognormal(rng, _col(vs, vi, "ttft.median"),
                               _col(vs, vi, "ttft.sigma")) * _US).astype(np.int64)
    tpot = np.round(_col(vs, vi, "tpot_s") * _US).astype(np.int64)
    return dict(trace=it, k=k, vi=vi, tools=tools, stuck_phase=stuck_phase, failures=failures,
                input=inp, cache_read=cache_read, cache_write=cache_write, output=out,
                reasoning=reasoning, ttft=ttft, llm_us=ttft + out * tpot)


def generate_chunk(plan: Plan, chunk: int) -> ChunkResult:
    """Generate the traces of chunk ``chunk`` (indices ``chunk * chunk_traces`` onwards)."""
    lo = chunk * plan.chunk_traces
    idx = np.arange(lo, min(plan.n_traces, lo + plan.chunk_traces), dtype=np.int64)
    rng = np.random.default_rng([plan.seed, chunk])
    tr = _trace_draws(plan, idx, rng)
    its = _iteration_draws(plan, tr, rng)
    parts = SpanParts(plan=plan, traces=tr, iterations=its)
    spans, traces, truth = assemble(parts, rng)
    return ChunkResult(spans=spans, traces=traces, truth=truth)
