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

from aiscale.analysis.change.drift import change_point, drift
from aiscale.analysis.change.forecast import forecast
from aiscale.analysis.loops.cost_growth import cost_growth
from aiscale.analysis.loops.fit import fit_iterations
from aiscale.analysis.loops.hazard import iteration_hazard
from aiscale.analysis.loops.loop_budget import loop_budget
from aiscale.analysis.loops.outcome_length import iterations_by_outcome
from aiscale.analysis.loops.stuck import stuck_loops, wasted_spend
from aiscale.analysis.reliability.consistency import consistency
from aiscale.analysis.reliability.paired import compare
from aiscale.analysis.reliability.passk import pass_at_k, pass_hat_k
from aiscale.analysis.reliability.power import minimum_detectable_effect, runs_needed, sample_size
from aiscale.analysis.reliability.rates import score_mean, success_rate
from aiscale.analysis.spend.reconcile import reconcile
from aiscale.analysis.tokens.attribution import cost_attribution
from aiscale.analysis.tokens.distributions import fit_distribution
from aiscale.analysis.tokens.drivers import cost_drivers
from aiscale.analysis.tokens.predictability import predictability
from aiscale.analysis.tokens.tails import tail_index
from aiscale.analysis.tradeoffs.cascade import cascade, retry
from aiscale.analysis.tradeoffs.frontier import frontier, frontier_from_runs
from aiscale.analysis.tradeoffs.latency import latency
from aiscale.facts.on_duckdb import rollup_frames
from aiscale.loaders import formats
from aiscale.pricing.rates import price_frame, rate_table
from aiscale.sim.simulate import simulate
from aiscale.store.facts_table import load_facts
from aiscale.store.trace_store import TraceStore, load

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
