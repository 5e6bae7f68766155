"""Agent traces with known ground truth: demo data, statistical tests and benchmarks.

:func:`simulate` returns canonical spans and traces (:mod:`aiscale.schema`) and a frozen
:class:`~aiscale.sim.truth.Truth` holding every law it drew from (per variant: task success,
loop-count law and hazard, token laws, cache share, prices, latency laws, error rate, stuck
loops, drift) and the per-trace truth. The laws are spelled out in :mod:`aiscale.sim.laws`.
:func:`write_otlp` and :func:`write_parquet` write the frames; :func:`simulate_to` generates
and writes chunk by chunk, in memory bounded by ``chunk_traces`` whatever ``n_traces`` is.
Same seed and chunk size, same frames and the same bytes.

Examples
--------
>>> from aiscale.sim.simulate import simulate
>>> sim = simulate(40, seed=3)
>>> sim.traces["variant"].value_counts().sort_index().tolist()
[12, 8, 12, 8]
>>> sim.truth.variant("strong-capped").cap
8
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow.parquet as pq

from aiscale import schema
from aiscale.sim.engine import ChunkResult, Plan, generate_chunk
from aiscale.sim.laws import DEFAULT_VARIANTS, Variant
from aiscale.sim.otlp import as_table, write_otlp
from aiscale.sim.truth import Truth

__all__ = ["simulate", "simulate_to", "iter_chunks", "write_parquet", "Simulation"]

OTLP_FILE = "otlp-traces.jsonl"
Format = Literal["otlp", "parquet"]


@dataclass(frozen=True)
class Simulation:
    """Canonical ``spans`` and ``traces`` frames and the ``truth`` they were drawn from."""

    spans: pd.DataFrame
    traces: pd.DataFrame
    truth: Truth

    def __repr__(self) -> str:
        return (f"<aiscale.Simulation: {len(self.traces)} traces, {len(self.spans)} spans, "
                f"seed {self.truth.seed}>")


def _plan(n_traces: int, seed: int, **options) -> Plan:
    if int(n_traces) < 0:
        raise ValueError(f"The value for `n_traces` must be >= 0, but {n_traces!r} was passed.")
    for name in ("n_trials", "days", "chunk_traces"):
        if name in options and int(options[name]) < 1:
            raise ValueError(f"The value for `{name}` must be >= 1, but {options[name]!r} was passed.")
    variants = tuple(options.pop("variants", None) or DEFAULT_VARIANTS)
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"Variant names must be distinct, but {names} was passed.")
    unknown = set(options) - {f.name for f in dataclasses.fields(Plan)}
    if unknown:
        allowed = sorted({f.name for f in dataclasses.fields(Plan)} - {"n_traces", "seed"})
        raise TypeError(f"Unknown options {sorted(unknown)}; allowed: {allowed}.")
    return Plan(n_traces=int(n_traces), seed=int(seed), variants=variants, **options)


def _truth(plan: Plan, traces: pd.DataFrame | None) -> Truth:
    keep = {f.name for f in dataclasses.fields(Truth)} & {f.name for f in dataclasses.fields(Plan)}
    return Truth(n_tasks=plan.n_tasks, traces=traces, **{k: getattr(plan, k) for k in keep})


def iter_chunks(n_traces: int, *, seed: int = 0, **options) -> Iterator[ChunkResult]:
    """Yield the simulation chunk by chunk (``spans``, ``traces``, per-trace ``truth``).

    Takes the options of :func:`simulate`; memory is bounded by ``chunk_traces``.
    """
    plan = _plan(n_traces, seed, **options)
    for chunk in range(plan.n_chunks):
        yield generate_chunk(plan, chunk)


def simulate(n_traces: int = 2_000, *, seed: int = 0, variants: tuple[Variant, ...] | None = None,
             n_trials: int = 4, days: int = 14, chunk_traces: int = 10_000,
             **options) -> Simulation:
    """Simulate agent traces with known truth.

    Traces are ``(task, variant, trial)`` in that nesting order: ``n_traces / (variants x
    n_trials)`` tasks, each run ``n_trials`` times under every variant.

    Parameters
    ----------
    n_traces : int, default=2000
        Number of traces (each has one root agent span, its LLM and tool spans).
    seed : int, default=0
        Same seed (and ``chunk_traces``), same output.
    variants : tuple of Variant, optional
        The configurations; default :data:`~aiscale.sim.laws.DEFAULT_VARIANTS` (fast-cheap,
        strong, strong-capped, reasoning).
    n_trials : int, default=4
        Trials per (task, variant), so pass@k and pass^k exist.
    days : int, default=14
        Traces are spread over this many days from ``start`` with a daily cycle.
    chunk_traces : int, default=20000
        Traces generated at once.
    **options
        ``start`` (datetime), ``daily_amplitude``, ``peak_hour``, ``n_users``, ``gap_s``.

    Returns
    -------
    Simulation
        ``spans``, ``traces`` (canonical frames) and ``truth``.
    """
    plan = _plan(n_traces, seed, variants=variants, n_trials=n_trials, days=days,
                 chunk_traces=chunk_traces, **options)
    chunks = [generate_chunk(plan, c) for c in range(plan.n_chunks)] or [None]
    if chunks[0] is None:
        return Simulation(schema.empty("spans"), schema.empty("traces"), _truth(plan, None))
    frames = [pd.concat([getattr(c, name) for c in chunks], ignore_index=True)
              for name in ("spans", "traces", "truth")]
    return Simulation(frames[0], frames[1], _truth(plan, frames[2]))


def write_parquet(spans: pd.DataFrame, traces: pd.DataFrame, out: str | Path, *,
                  part: int = 0) -> Path:
    """Write canonical ``spans-NNNNN.parquet`` and ``spans-NNNNN.traces.parquet`` under ``out``.

    The pair is what the ``canonical`` loader reads (``aiscale.load(out, store=...)``).
    Returns the spans file.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"spans-{part:05d}.parquet"
    pq.write_table(as_table(spans, "spans"), path, compression="zstd")
    pq.write_table(as_table(traces, "traces"), out / f"spans-{part:05d}.traces.parquet",
                   compression="zstd")
    return path


def simulate_to(out: str | Path, n_traces: int, *, seed: int = 0, format: Format = "otlp",
                **options) -> Truth:
    """Generate and write a simulation chunk by chunk; also write ``truth.json``.

    Returns the :class:`Truth` without the per-trace frame (its stuck trace ids are in
    ``truth.json``).
    """
    if format not in ("otlp", "parquet"):
        raise ValueError(f"The value for `format` must be one of ['otlp', 'parquet'], but {format!r} "
                         "was passed.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plan = _plan(n_traces, seed, **options)
    stuck: list[str] = []
    for c in range(plan.n_chunks):
        chunk = generate_chunk(plan, c)
        if format == "otlp":
            write_otlp(chunk.spans, chunk.traces, out / OTLP_FILE, append=c > 0)
        else:
            write_parquet(chunk.spans, chunk.traces, out, part=c)
        stuck += chunk.truth.loc[chunk.truth["stuck"], "trace_id"].tolist()
    truth = _truth(plan, None)
    record = truth.to_dict() | {"stuck_trace_ids": stuck, "format": format}
    (out / "truth.json").write_text(json.dumps(record, indent=1) + "\n")
    return truth
