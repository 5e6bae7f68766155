"""Report sections on real data and the demo: headlines, groups, caps, baselines (issue 15, items 6-11).

Sections are called in-process on contexts opened from real stores; each test failed before
the fix it guards.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import aiscale
from aiscale.report import sections_analysis as analysis
from aiscale.report import sections_investigate as investigate
from aiscale.report import sections_loops as loops
from aiscale.report.context import MIN_GROUP, Context, merge_aliases, open_context
from aiscale.report.display import _fmt

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return aiscale.load([REPO / "data" / "demo"], store=tmp_path_factory.mktemp("demo") / "store").root


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return aiscale.load([REAL / "mini-swe-agent-gemini3-verified"],
                        store=tmp_path_factory.mktemp("mini") / "store").root


def test_provider_prefixed_aliases_are_one_variant():
    labels = pd.Series(["google/gemini-3-pro-preview"] * 29 + ["@google/gemini-3-pro-preview", "gpt-4o"])
    merged, notes = merge_aliases(labels)
    assert merged.value_counts().to_dict() == {"google/gemini-3-pro-preview": 30, "gpt-4o": 1}
    assert notes == ["'@google/gemini-3-pro-preview' counted as 'google/gemini-3-pro-preview'"]


def test_no_headline_from_a_variant_below_the_minimum(mini):
    ctx = open_context(mini, with_spans=False)
    lone = ctx.facts.iloc[[0]].assign(variant="openrouter-mirror/lucky", success=True, trace_id="lone",
                                      latency_s=1e6)
    facts = pd.concat([ctx.facts, lone], ignore_index=True)
    wide = Context(facts=facts, spans=None, store=None)
    for section in (analysis.reliability(wide), analysis.latency(wide)):
        assert "lucky" not in section.finding and "gemini-3-pro-preview" in section.finding
        assert section.data["headline_n"] >= MIN_GROUP and f"at least {MIN_GROUP}" in section.note
    few = Context(facts=facts.iloc[:5], spans=None, store=None)
    assert analysis.reliability(few).finding.startswith(f"No variant has {MIN_GROUP} or more")


def test_iterations_fitted_per_variant_at_each_cap(demo, mini):
    section = loops.iteration_fit(open_context(mini, with_spans=False))
    assert section.table["step_cap"].tolist() == ["250"]  # mini-swe-agent's step_limit
    demo_ctx = open_context(demo, with_spans=False)
    section = loops.iteration_fit(demo_ctx)
    assert sorted(section.table["variant"]) == sorted(demo_ctx.facts["variant"].unique())
    truth = json.loads((Path(__file__).resolve().parents[1] / "data" / "demo" / "truth.json").read_text())
    caps = {v["name"]: str(v["cap"]) for v in truth["variants"]}  # the simulator states each trace's cap
    assert dict(zip(section.table["variant"], section.table["step_cap"], strict=True)) == caps
    assert "step cap unknown" not in section.finding and section.table["censored"].sum() > 0
    stopped = pd.DataFrame({"iterations": [5, 9], "success": [False, False],
                            "metadata": ['{"termination_reason":"max_steps","step_cap":200}', '{}']})
    assert loops.loop_caps(stopped)["censored"].tolist() == [True, False]


def test_budget_is_per_variant(demo):
    ctx = open_context(demo)
    section = loops.budget(ctx)
    assert len(section.table) == ctx.facts["variant"].nunique() == 4
    assert section.table["knee_cap"].nunique() > 1  # variants with different caps are not pooled


def test_cost_investigation_finds_the_planted_jump_per_variant(demo):
    ctx = open_context(demo, since="2025-06-09", with_spans=False)
    section = investigate.versus_baseline(ctx, store=str(demo), baseline_since="2025-06-02",
                                          baseline_until="2025-06-09")
    assert "strong output_tokens_per_call +" in section.finding  # output tokens x1.6 on strong
    assert "all variants" in set(section.table["variant"]) or section.data["tests"] > 6


def test_sections_that_cannot_apply_say_why(demo, tmp_path):
    week = open_context(demo, since="2025-06-13", with_spans=False)
    drift = analysis.drift(week)
    assert drift.status in ("finding", "why not") and "not computed" not in drift.finding
    if drift.table is not None:
        assert drift.table["p_value"].notna().all()  # no rows of "too few traces" under p-values
    tau2 = aiscale.load(sorted((REAL / "tau2-bench-results").glob("*trials.json")), store=tmp_path / "t")
    forecast = analysis.forecast(open_context(tau2.root, with_spans=False), traffic_per_day=None,
                                 horizon_days=30, budget_usd=None)
    assert forecast.status == "why not" and "traffic_per_day" in forecast.finding
    assert "not steady traffic" in forecast.finding


def test_compare_picks_the_two_best_and_says_why(tmp_path):
    store = aiscale.load([REAL / "swebench-bash-only-leaderboard" / "leaderboards.json"], store=tmp_path / "s")
    ctx = open_context(store.root, with_spans=False)
    section = investigate.comparison(ctx)
    rates = ctx.facts.groupby("variant")["success"].mean().sort_values(ascending=False)
    assert {section.data["a"], section.data["b"]} == set(rates.index[:2])
    assert "two best on success" in section.note and "<aiscale." not in section.note
    assert list(section.table.columns) == ["quantity", "value"]
    apart = Context(facts=pd.DataFrame({"variant": ["x"] * 12 + ["y"] * 12, "success": [True, False] * 12,
                                        "task_id": [f"a{i}" for i in range(12)] + [f"b{i}" for i in range(12)]}),
                    spans=None, store=None)
    lonely = investigate.comparison(apart)
    assert lonely.status == "why not" and "no task in common" in lonely.finding


def test_numbers_have_one_format():
    assert [_fmt(v) for v in (865_100.0, 25_597_231.0, 0.01234, float("nan"), 0.0)] == [
        "865,100", "25,597,231", "0.01234", "unknown", "0"]


def test_forecast_on_a_batch_says_why_and_never_at_zero_traffic():
    started = pd.Timestamp("2025-05-12 20:00", tz="UTC") + pd.to_timedelta(range(30), unit="min")
    facts = pd.DataFrame({"trace_id": [f"t{i}" for i in range(30)], "variant": "v", "started_at": started,
                          "cost_usd": [0.01 * (1 + i % 7) for i in range(30)], "n_llm_calls": 1})
    ctx = Context(facts=facts, spans=None, store=None)
    batch = analysis.forecast(ctx, traffic_per_day=None, horizon_days=30, budget_usd=None)
    assert batch.status == "why not" and "30 traces on 1 days" in batch.finding
    for zero in (0, 0.0, -5):
        section = analysis.forecast(ctx, traffic_per_day=zero, horizon_days=30, budget_usd=None)
        assert section.status == "why not" and "must be above 0" in section.finding, zero
    slow = analysis.forecast(ctx, traffic_per_day=0.04, horizon_days=30, budget_usd=None)
    assert slow.finding.startswith("At 0.04 traces a day, 30 days cost $")


def test_tables_show_missing_nullable_values_as_unknown():
    from aiscale.report.context import table_html

    table = pd.DataFrame({"success": pd.array([True, None], dtype="boolean"),
                          "tokens": pd.array([1_234_567, None], dtype="Int64"),
                          "model": pd.array(["m", None], dtype="string"), "cost": [1.5, None]})
    page = table_html(table)
    assert "NA&gt;" not in page and "<NA>" not in page and "None" not in page
    assert page.count(">unknown<") == 4 and ">1,234,567<" in page and ">True<" in page


def test_spend_breakdown_counts_unpriced_calls_as_unknown_and_reconciles_with_the_facts():
    from aiscale.report.sections_breakdown import spend_breakdowns

    spans = pd.DataFrame({"trace_id": ["a", "b", "b"], "span_id": ["1", "1", "2"], "kind": "llm",
                          "provider": "openai", "model": ["gpt-4o-2024-08-06", "gpt-4o-2024-08-06", "my-llama"],
                          "start_time": pd.to_datetime(["2025-01-01 10:00", "2025-01-02 10:00",
                                                        "2025-01-02 11:00"], utc=True),
                          "input_tokens": [1_000_000, 2_000_000, 5], "output_tokens": [0, 0, 5]})
    # trace b mixes a priced and an unpriced call: its cost (and the facts' total) is unknown
    facts = pd.DataFrame({"trace_id": ["a", "b"], "variant": "v", "cost_usd": [2.5, None]})
    model, project, day = spend_breakdowns(Context(facts=facts, spans=spans, store=None))
    groups = model.data["groups"]  # unknown stays unknown (NaN; None once shown), never 0
    assert groups["gpt-4o-2024-08-06"] == pytest.approx(7.5) and pd.isna(groups["my-llama"])
    assert model.data["total_usd"] == pytest.approx(7.5) and model.data["facts_total_usd"] == 2.5
    assert "$5.00 of it is in traces that also have unpriced calls" in model.finding
    assert "1 call has no price (my-llama): its cost is unknown, not $0." in model.finding
    assert project.status == "why not" and "record no project" in project.finding
    assert day.data["groups"] == {"2025-01-01": pytest.approx(2.5), "2025-01-02": pytest.approx(5.0)}
    assert "the costliest day was 2025-01-02 ($5.00, 67%)" in day.finding


def test_iteration_fit_names_variants_whose_traces_all_take_the_same_number():
    # Inspect's one-generate() tasks: every trace 1 iteration; a count fit has nothing to fit
    # (statsmodels' negative binomial did not return on such data)
    facts = pd.DataFrame({"trace_id": [f"t{i}" for i in range(24)], "variant": ["a"] * 12 + ["b"] * 12,
                          "iterations": [1] * 12 + [2] * 12, "success": True})
    section = loops.iteration_fit(Context(facts=facts, spans=None, store=None))
    assert section.status == "why not" and "a: 1; b: 2" in section.finding
