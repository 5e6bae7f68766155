"""aiscale: what LLM and agent systems cost, how their loops behave, how reliable they are.

Read the traces a system already exports, roll them up to one row per trace, and answer
cost, loop, reliability and scaling questions with error bars.

Examples
--------
>>> import aiscale, tempfile
>>> store = aiscale.load([], store=tempfile.mkdtemp())
>>> store.facts().empty
True
"""

from __future__ import annotations

from aiscale.analysis.consistency import consistency
from aiscale.analysis.drift import change_point, drift
from aiscale.analysis.forecast import forecast
from aiscale.analysis.loops import (
    cost_growth,
    fit_iterations,
    iteration_hazard,
    iterations_by_outcome,
    loop_budget,
    stuck_loops,
    wasted_spend,
)
from aiscale.analysis.paired import compare
from aiscale.analysis.passk import pass_at_k, pass_hat_k
from aiscale.analysis.power import minimum_detectable_effect, runs_needed, sample_size
from aiscale.analysis.reliability import score_mean, success_rate
from aiscale.analysis.tokens import (
    cost_attribution,
    cost_drivers,
    fit_distribution,
    predictability,
    tail_index,
)
from aiscale.analysis.tradeoff import cascade, frontier, frontier_from_runs, latency, retry
from aiscale.facts_table import load_facts
from aiscale.loaders import formats
from aiscale.pricing import price_frame, rate_table
from aiscale.reconcile import reconcile
from aiscale.rollup import rollup_frames
from aiscale.simulate import simulate
from aiscale.store import TraceStore, load

__version__ = "0.1.0"

__all__ = [
    "TraceStore", "__version__", "cascade", "change_point", "compare", "consistency",
    "cost_attribution", "cost_drivers", "cost_growth", "drift", "fit_distribution",
    "fit_iterations", "forecast", "formats", "frontier", "frontier_from_runs",
    "iteration_hazard", "iterations_by_outcome", "latency", "load", "load_facts",
    "loop_budget", "minimum_detectable_effect", "pass_at_k", "pass_hat_k", "predictability",
    "price_frame", "rate_table", "reconcile", "retry", "rollup_frames", "runs_needed",
    "sample_size", "score_mean", "simulate", "stuck_loops", "success_rate", "tail_index", "wasted_spend",
]
