"""Simulated spans priced with the simulator's own declared prices (shared by the loop tests)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from aiscale.sim.laws import DEFAULT_VARIANTS
from aiscale.sim.simulate import Simulation, simulate

STRONG = dataclasses.replace(DEFAULT_VARIANTS[1], drift=None)


def priced(sim: Simulation) -> pd.DataFrame:
    """The simulation's spans with ``cost_usd`` on LLM spans from the variants' declared prices.

    Input tokens include cache reads and writes (the canonical convention); failed calls
    report no usage and get a null cost.
    """
    spans = sim.spans
    llm = spans["kind"] == "llm"
    prices = {v.response_model: v.prices for v in sim.truth.variants}
    rate = {name: spans["model"].map({m: getattr(p, name) for m, p in prices.items()})
            .astype("float64").to_numpy() for name in ("input", "cache_read", "cache_write", "output")}
    tok = {c: spans[f"{c}_tokens"].astype("float64").fillna(0).to_numpy()
           for c in ("input", "cache_read", "cache_write", "output")}
    cost = (rate["input"] * (tok["input"] - tok["cache_read"] - tok["cache_write"])
            + rate["cache_read"] * tok["cache_read"] + rate["cache_write"] * tok["cache_write"]
            + rate["output"] * tok["output"])
    ok = llm.to_numpy() & (spans["status"] != "error").to_numpy()
    return spans.assign(cost_usd=np.where(ok, cost, np.nan))


def strong_sim(n: int, seed: int, **changes) -> Simulation:
    """One variant (the simulator's "strong", without drift), four trials per task."""
    return simulate(n, seed=seed, variants=(dataclasses.replace(STRONG, **changes),))
