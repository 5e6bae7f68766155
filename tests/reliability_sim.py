"""Data for the reliability tests: the tau-bench facts frame and simulated evals with known truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd


def tau_facts(real_data: Path) -> pd.DataFrame:
    """tau-bench gpt-4o airline as a facts-like frame (read with json; success = reward == 1)."""
    rows = json.loads((real_data / "tau-bench-historical" / "gpt-4o-airline.json").read_text())
    return pd.DataFrame({
        "task_id": [str(r["task_id"]) for r in rows],
        "trial": [int(r["trial"]) for r in rows],
        "variant": "gpt-4o",
        "success": pd.array([r["reward"] == 1 for r in rows], dtype="boolean"),
    })


def simulated_runs(rng: np.random.Generator, *, runs: int, tasks: int, trials: int,
                   a: float, b: float) -> tuple[pd.DataFrame, np.ndarray]:
    """``runs`` independent evals as variants "0", "1", ...: fresh Beta(a, b) tasks, k trials each.

    Returns the facts frame and the per-task probabilities (runs, tasks).
    """
    p = rng.beta(a, b, size=(runs, tasks))
    y = rng.random((runs, tasks, trials)) < p[..., None]
    run, task, trial = np.meshgrid(np.arange(runs), np.arange(tasks), np.arange(trials),
                                   indexing="ij")
    facts = pd.DataFrame({"variant": run.ravel().astype(str), "task_id": task.ravel().astype(str),
                          "trial": trial.ravel(), "success": y.ravel()})
    return facts, p


def covered(lower, upper, truth) -> float:
    """Share of intervals containing the truth."""
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    return float(np.mean((lower <= truth) & (truth <= upper)))
