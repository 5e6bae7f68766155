"""A change on one model of a variant that runs several models is found per model, not only
averaged into the variant (cost investigation versus a baseline)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from aiscale import schema
from aiscale.report.sections_analysis import drift_section, drift_tests


def _facts(rng: np.random.Generator, n: int = 240) -> tuple[pd.DataFrame, pd.Series, pd.Timestamp]:
    at = pd.Timestamp("2025-06-09", tz="UTC")
    after = np.repeat([False, True], n)
    model = np.tile(np.repeat(["model-a", "model-b", "model-c", "model-d"], n // 4), 2)
    factor = np.where(after & (model == "model-b"), 1.6, 1.0)  # only model-b's output grows
    calls = rng.integers(3, 9, 2 * n)
    output = np.round(calls * rng.lognormal(np.log(300), 0.3, 2 * n) * factor).astype(int)
    facts = schema.empty("facts").reindex(range(2 * n))
    facts = facts.assign(
        trace_id=[f"t{i}" for i in range(2 * n)], variant="agent", task_id="task",
        started_at=at + pd.to_timedelta(np.where(after, 1, -1) * rng.uniform(1, 5e5, 2 * n), unit="s"),
        n_llm_calls=calls, iterations=calls, input_tokens=calls * 2000, output_tokens=output,
        cost_usd=output * 1e-5, latency_s=rng.gamma(2, 5, 2 * n), success=rng.random(2 * n) < 0.6)
    return facts, pd.Series(model, index=facts["trace_id"]), at


def test_a_change_on_one_model_of_a_variant_is_found_per_model(rng):
    facts, models, at = _facts(rng)
    table = drift_tests(facts, at=at, alpha=0.05, pooled=True, models=models)
    per_call = table.loc[table["metric"] == "output_tokens_per_call"].set_index("variant")
    assert {"agent / model-a", "agent / model-b", "agent / model-c", "agent / model-d"} <= set(per_call.index)
    assert per_call.loc["agent / model-b", "significant"]
    assert abs(per_call.loc["agent / model-b", "relative_change"] - 0.6) < 0.2
    assert not per_call.loc[["agent / model-a", "agent / model-c", "agent / model-d"], "significant"].any()
    finding = drift_section(table, since="versus the baseline", alpha=0.05).finding
    assert "agent / model-b output_tokens_per_call" in finding


def test_a_variant_on_one_model_gets_no_per_model_rows(rng):
    facts, models, at = _facts(rng)
    table = drift_tests(facts, at=at, alpha=0.05, models=models.map(lambda _: "only-model"))
    assert set(table["variant"]) == {"agent"}
