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

import importlib
from typing import TYPE_CHECKING

# Each public name and the module that defines it. Importing aiscale imports none of them
# (and so none of pandas, SciPy, Ibis, DuckDB or Matplotlib): a name's module is imported the
# first time the name is used, so `import aiscale` and every `aiscale` command start fast.
_PUBLIC = {
    "change_point": "aiscale.analysis.change.drift",
    "drift": "aiscale.analysis.change.drift",
    "forecast": "aiscale.analysis.change.forecast",
    "cost_growth": "aiscale.analysis.loops.cost_growth",
    "fit_iterations": "aiscale.analysis.loops.fit",
    "iteration_hazard": "aiscale.analysis.loops.hazard",
    "loop_budget": "aiscale.analysis.loops.loop_budget",
    "iterations_by_outcome": "aiscale.analysis.loops.outcome_length",
    "stuck_loops": "aiscale.analysis.loops.stuck",
    "wasted_spend": "aiscale.analysis.loops.stuck",
    "consistency": "aiscale.analysis.reliability.consistency",
    "compare": "aiscale.analysis.reliability.paired",
    "pass_at_k": "aiscale.analysis.reliability.passk",
    "pass_hat_k": "aiscale.analysis.reliability.passk",
    "minimum_detectable_effect": "aiscale.analysis.reliability.power",
    "runs_needed": "aiscale.analysis.reliability.power",
    "sample_size": "aiscale.analysis.reliability.power",
    "score_mean": "aiscale.analysis.reliability.rates",
    "success_rate": "aiscale.analysis.reliability.rates",
    "check_rules": "aiscale.analysis.change.alerts",
    "cache_savings": "aiscale.analysis.spend.cache",
    "spend_change": "aiscale.analysis.spend.decompose",
    "spend": "aiscale.analysis.spend.over_time",
    "reconcile": "aiscale.analysis.spend.reconcile",
    "whatif": "aiscale.analysis.spend.whatif",
    "call_latency": "aiscale.analysis.tradeoffs.call_latency",
    "cost_attribution": "aiscale.analysis.tokens.attribution",
    "fit_distribution": "aiscale.analysis.tokens.distributions",
    "cost_drivers": "aiscale.analysis.tokens.drivers",
    "predictability": "aiscale.analysis.tokens.predictability",
    "tail_index": "aiscale.analysis.tokens.tails",
    "cascade": "aiscale.analysis.tradeoffs.cascade",
    "retry": "aiscale.analysis.tradeoffs.cascade",
    "frontier": "aiscale.analysis.tradeoffs.frontier",
    "frontier_from_runs": "aiscale.analysis.tradeoffs.frontier",
    "latency": "aiscale.analysis.tradeoffs.latency",
    "rollup_frames": "aiscale.facts.on_duckdb",
    "formats": "aiscale.loaders",
    "price_frame": "aiscale.pricing.rates",
    "rate_table": "aiscale.pricing.rates",
    "simulate": "aiscale.sim.simulate",
    "load_facts": "aiscale.store.facts_table",
    "TraceStore": "aiscale.store.trace_store",
    "load": "aiscale.store.trace_store",
}

if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from aiscale.analysis.change.alerts import check_rules
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
    from aiscale.analysis.reliability.power import (
        minimum_detectable_effect,
        runs_needed,
        sample_size,
    )
    from aiscale.analysis.reliability.rates import score_mean, success_rate
    from aiscale.analysis.spend.cache import cache_savings
    from aiscale.analysis.spend.decompose import spend_change
    from aiscale.analysis.spend.over_time import spend
    from aiscale.analysis.spend.reconcile import reconcile
    from aiscale.analysis.spend.whatif import whatif
    from aiscale.analysis.tokens.attribution import cost_attribution
    from aiscale.analysis.tokens.distributions import fit_distribution
    from aiscale.analysis.tokens.drivers import cost_drivers
    from aiscale.analysis.tokens.predictability import predictability
    from aiscale.analysis.tokens.tails import tail_index
    from aiscale.analysis.tradeoffs.call_latency import call_latency
    from aiscale.analysis.tradeoffs.cascade import cascade, retry
    from aiscale.analysis.tradeoffs.frontier import frontier, frontier_from_runs
    from aiscale.analysis.tradeoffs.latency import latency
    from aiscale.facts.on_duckdb import rollup_frames
    from aiscale.loaders import formats
    from aiscale.pricing.rates import price_frame, rate_table
    from aiscale.sim.simulate import simulate
    from aiscale.store.facts_table import load_facts
    from aiscale.store.trace_store import TraceStore, load


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'aiscale' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))


__version__ = "0.1.0"

__all__ = [
    "TraceStore", "__version__", "cache_savings", "call_latency", "cascade", "change_point",
    "check_rules", "compare", "consistency", "cost_attribution", "cost_drivers", "cost_growth",
    "drift", "fit_distribution", "fit_iterations", "forecast", "formats", "frontier",
    "frontier_from_runs", "iteration_hazard", "iterations_by_outcome", "latency", "load",
    "load_facts", "loop_budget", "minimum_detectable_effect", "pass_at_k", "pass_hat_k",
    "predictability", "price_frame", "rate_table", "reconcile", "retry", "rollup_frames",
    "runs_needed", "sample_size", "score_mean", "simulate", "spend", "spend_change",
    "stuck_loops", "success_rate", "tail_index", "wasted_spend", "whatif",
]
