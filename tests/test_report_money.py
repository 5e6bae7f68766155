"""Money in the reports: unknown cost is never $0, one price sheet for facts and spans, spans priced.

Each test here failed before the fix it guards (issue 15, items 1-4).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import aiscale
from aiscale.analysis._result import trace_cost
from aiscale.report import sections_analysis as analysis
from aiscale.report import sections_core as core
from aiscale.report import sections_investigate as investigate
from aiscale.report import sections_loops as loops
from aiscale.report import sections_money as money
from aiscale.report.context import cost_of, open_context

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real"
TAU2 = REAL / "tau2-bench-results"
PER_CALL = 0.01


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    return aiscale.load([REPO / "data" / "demo"], store=tmp_path_factory.mktemp("demo") / "store")


@pytest.fixture(scope="module")
def flat_sheet(tmp_path_factory):
    """Every model at a flat price per call: the true cost of a trace is PER_CALL x its billed calls."""
    path = tmp_path_factory.mktemp("sheet") / "prices.yaml"
    path.write_text(f"- model: '*'\n  per_call_usd: {PER_CALL}\n")
    return path


def _newer_tau2(path: Path, out: Path) -> Path:
    """The real gpt-4.1 airline file as tau2's newer schema writes it: usage, raw_data, cost all null."""
    document = json.loads(path.read_text())
    for simulation in document["simulations"]:
        for message in simulation["messages"]:
            if message["role"] == "assistant":
                message.update(usage=None, raw_data=None, cost=None)
        simulation["agent_cost"] = None
    out.write_text(json.dumps(document))
    return out


def _agent_turns(path: Path, *, with_errors: bool = True) -> pd.Series:
    """Assistant messages after the first user message (the LLM calls), per simulation id.

    ``with_errors=False`` leaves out turns flagged with ``errors``: failed attempts, not iterations.
    """
    document = json.loads(path.read_text())
    counts = {}
    for simulation in document["simulations"]:
        roles = [m["role"] for m in simulation["messages"]]
        first_user = roles.index("user") if "user" in roles else len(roles)
        counts[f"{path.stem}/{simulation['id']}"] = sum(
            m["role"] == "assistant" and (with_errors or not m.get("errors"))
            for m in simulation["messages"][first_user:])
    return pd.Series(counts)


def test_tau2_assistant_turns_without_usage_are_llm_calls_of_unknown_cost(tmp_path):
    newer = _newer_tau2(TAU2 / "gpt-4.1_airline_default_gpt-4.1_1trials.json", tmp_path / "newer.json")
    store = aiscale.load([newer], store=tmp_path / "s")
    facts = store.facts().set_index("trace_id")
    turns = _agent_turns(newer).reindex(facts.index)
    assert (turns > 0).all() and len(facts) == 20
    ok_turns = _agent_turns(newer, with_errors=False).reindex(facts.index)
    assert (facts["n_llm_calls"] == turns).all() and (facts["iterations"] == ok_turns).all()
    assert (facts["unpriced_llm_calls"] == ok_turns).all()
    assert facts["cost_usd"].isna().all() and facts["reported_cost_usd"].isna().all()
    spans = store.spans(columns=["trace_id", "kind", "attributes"])
    llm = spans.loc[spans["kind"] == "llm"]
    assert llm["attributes"].str.contains('"usage_missing":true').all()
    assert llm["cost_usd"].isna().sum() == ok_turns.sum()  # failed attempts without usage are billed 0
    section = core.spend(open_context(store.root))
    assert section.status == "why not" and "Cost is unknown" in section.finding and "not zero" in section.finding


def test_tau2_greeting_is_still_not_a_call_and_priced_turns_are_unchanged(tmp_path):
    path = TAU2 / "gpt-4.1_airline_default_gpt-4.1_1trials.json"
    facts = aiscale.load([path], store=tmp_path / "s").facts().set_index("trace_id")
    assert (facts["n_llm_calls"] == _agent_turns(path).reindex(facts.index)).all()
    document = json.loads(path.read_text())
    reported = sum(s["agent_cost"] for s in document["simulations"])
    assert facts["reported_cost_usd"].sum() == pytest.approx(reported)


def test_a_reported_cost_of_zero_for_calls_that_used_tokens_is_unknown_not_free(tmp_path):
    facts = pd.DataFrame({"cost_usd": [None, None, 2.0], "reported_cost_usd": [0.0, 0.0, None],
                          "output_tokens": [100, 0, 5], "n_llm_calls": [3, 0, 1]})
    values, source = trace_cost(facts)
    assert np.isnan(values[0]) and values[1] == 0.0 and values[2] == 2.0  # no call at all: truly 0
    store = aiscale.load([TAU2 / "qwen2.5_7b_airline_default_gpt-4.1-2025-04-14_1trials.json",
                          TAU2 / "gpt-4.1_airline_default_gpt-4.1_1trials.json"], store=tmp_path / "s")
    ctx = open_context(store.root)
    local = ctx.facts["variant"] == "ollama_chat/qwen2.5:7b"
    assert local.sum() == 50 and (ctx.facts.loc[local, "reported_cost_usd"] == 0).all()
    assert cost_of(ctx.facts)[0][local].isna().all()
    section = analysis.frontier(ctx)
    assert section.data["unpriced_variants"] == ["ollama_chat/qwen2.5:7b"]
    assert pd.isna(section.data["mean_cost"]["ollama_chat/qwen2.5:7b"])
    assert "ollama_chat/qwen2.5:7b" in section.finding.split("off the cost axis")[1]
    spend = core.spend(ctx)
    assert pd.isna(spend.data["variant_totals"]["ollama_chat/qwen2.5:7b"])
    assert spend.data["unknown"] == 50


def test_spans_are_priced_as_the_facts_with_and_without_a_price_sheet(demo_store, flat_sheet):
    for prices in (None, flat_sheet):
        facts = demo_store.facts(prices=prices).set_index("trace_id")
        spans = demo_store.spans(columns=["trace_id", "span_id", "kind"], prices=prices)
        per_trace = spans.loc[spans["kind"] == "llm"].groupby("trace_id")["cost_usd"].sum()
        assert np.allclose(per_trace.reindex(facts.index).fillna(0), facts["cost_usd"], rtol=1e-12)
        assert spans.loc[spans["kind"] != "llm", "cost_usd"].isna().all()
    billed = spans.loc[spans["kind"] == "llm", "cost_usd"]
    assert set(billed.round(12)) <= {PER_CALL, 0.0}  # a failed attempt without usage is billed 0
    by_model = aiscale.cost_attribution(demo_store.spans(), by="model").summary()
    assert by_model["cost_usd"].sum() == pytest.approx(demo_store.facts()["cost_usd"].sum())


def test_span_sections_use_the_price_sheet(demo_store, flat_sheet):
    ctx = open_context(demo_store.root, prices=str(flat_sheet))
    facts = ctx.facts
    truth = PER_CALL * facts["n_llm_calls"].astype(float)
    failed_free = (truth - facts["cost_usd"]).round(12) / PER_CALL  # failed attempts billed 0
    assert (failed_free >= 0).all() and np.allclose(failed_free, failed_free.round())
    section = money.attribution(ctx)
    assert section.data["cost_total"] == pytest.approx(facts["cost_usd"].sum())
    assert section.data["attribution_total"] == pytest.approx(section.data["cost_total"])
    per_model = section.table.set_index("model")
    llm = ctx.spans.loc[ctx.spans["kind"] == "llm"]
    expected = llm.groupby("model")["cost_usd"].sum()
    assert np.allclose(per_model.loc[expected.index, "cost_usd"], expected)
    assert (expected <= PER_CALL * llm.groupby("model").size() + 1e-9).all()
    top = investigate.expensive_traces(ctx, top=3)
    listed = pd.Series(top.data["listed"])
    assert np.allclose(listed, facts.set_index("trace_id").loc[listed.index, "cost_usd"])


def test_stuck_loop_spend_is_the_priced_calls_after_the_loop_began(demo_store):
    truth = json.loads((REPO / "data" / "demo" / "truth.json").read_text())
    ctx = open_context(demo_store.root)
    section = loops.pathologies(ctx)
    after = section.data["wasted"]["after stuck loops began"]
    total = ctx.facts["cost_usd"].sum()
    assert 0.05 * total < after < 0.2 * total  # about $2.58 of $25.31 on the demo, not $0
    stuck = aiscale.stuck_loops(ctx.spans, facts=ctx.facts)
    found = stuck.table.loc[stuck.table["stuck"]]
    assert set(found["trace_id"]) == set(truth["stuck_trace_ids"])
    llm = ctx.spans.loc[(ctx.spans["kind"] == "llm") & ctx.spans["trace_id"].isin(found["trace_id"])]
    since = found.set_index("trace_id")["stuck_since"]
    later = llm.loc[llm["start_time"] > since.reindex(llm["trace_id"]).to_numpy()]
    assert after == pytest.approx(later["cost_usd"].sum())


def test_model_attribution_splits_aiscale_priced_traces_and_lists_the_others():
    from aiscale.report.sections_money import model_attribution

    facts = pd.DataFrame({"trace_id": ["a", "b", "c", "d"], "cost_usd": [3.0, np.nan, np.nan, 0.5],
                          "reported_cost_usd": [np.nan, 5.0, np.nan, np.nan], "n_llm_calls": [2, 1, 1, 1]})
    calls = pd.DataFrame({"trace_id": ["a", "a", "b", "c", "d", "z"], "span_id": list("123456"),
                          "model": ["m1", "m2", "m1", "m2", "m1", "m1"],
                          "cost_usd": [1.0, 2.0, np.nan, np.nan, 0.5, 7.0]})  # z: no such trace
    table = model_attribution(facts, calls)
    assert table["model"].tolist() == ["(the source's reported cost, not split by model)", "m2", "m1", "m2"]
    assert table["calls"].tolist() == [1, 1, 2, 1]
    np.testing.assert_array_equal(table["cost_usd"], [5.0, 2.0, 1.5, np.nan])
    assert table["priced_by"].tolist() == ["source", "aiscale", "aiscale", "unknown (trace not counted)"]
    np.testing.assert_allclose(table["cost_share"], [5 / 8.5, 2 / 8.5, 1.5 / 8.5, np.nan])
    # every trace priced by aiscale: the calls are split as they are (z still left out)
    table = model_attribution(facts.iloc[[0, 3]], calls)
    assert table[["model", "calls", "cost_usd", "priced_by"]].values.tolist() == [
        ["m2", 1, 2.0, "aiscale"], ["m1", 2, 1.5, "aiscale"]]


def test_a_what_if_on_a_model_without_a_price_is_unknown_with_no_interval(tmp_path):
    from aiscale.report import sections_spend as spend

    # Gemini CLI sessions: one model has a price, gemini-3-pro has none in genai-prices
    store = aiscale.load([REAL / "gemini-cli-sessions"], store=tmp_path / "s")
    section = spend.whatif(open_context(store.root), models=["gemini-3-pro"])
    table = section.table.set_index("scenario").loc["as gemini-3-pro"]
    assert table["unpriced_calls"] == len(store.calls()) and pd.isna(table["total_usd"])
    assert pd.isna(table["total_lower"]) and pd.isna(table["total_upper"])
    assert "would cost unknown, with token counts" in section.finding and "$0.00" not in section.finding


def test_gemini_cli_sessions_cache_savings_are_unknown_and_no_unlisted_what_if_target(tmp_path):
    """Real Gemini CLI sessions: gemini-3-pro-image-preview's calls read the cache, and
    genai-prices lists no cache-read price for it (the bill counts the reads at the input price),
    so what caching saved is unknown, never "$0.00"; the other model used, gemini-3-pro, has no
    price at all, so it is no default what-if target."""
    from aiscale.report import sections_spend as spend

    store = aiscale.load([REAL / "gemini-cli-sessions"], store=tmp_path / "s")
    calls = store.calls().to_pandas()
    reading = calls.loc[calls["priced"] & (calls["cache_read_tokens"].fillna(0) > 0)]
    assert len(reading) and reading["cache_read_usd_per_token"].isna().all()
    ctx = open_context(store.root)
    section = spend.cache(ctx)
    assert "$0.00" not in section.finding
    assert (f"{len(reading)} of the {int(calls['priced'].sum())} priced calls read or wrote the cache "
            "at a model with no listed cache price, so what caching saved is unknown") in section.finding
    assert section.table["read_savings_usd"].isna().all() and section.figure is None
    result = aiscale.cache_savings(store, by="model")
    assert result.summary()["unknown_rate_calls"].sum() == len(reading)
    assert spend.whatif(ctx).finding.startswith("The other models this window used (gemini-3-pro) have no price")


def test_claude_code_output_counts_short_of_their_content_are_named_and_kept_out_of_rates(tmp_path):
    """Claude Code sessions that log the count of a streamed response's start (marked by the
    loader): spend says their output and cost are lower bounds, and tokens per second leaves
    them out, so no model is "0 output tokens/s"."""
    import json

    from aiscale.report import sections_spend as spend

    store = aiscale.load([REAL / "claude-code-sessions"], store=tmp_path / "s")
    spans = store.spans()
    llm = spans[spans.kind == "llm"]
    marked = llm.attributes.map(lambda a: json.loads(a)["output_tokens_lower_bound"])
    calls = store.calls().to_pandas()
    assert calls["output_lower_bound"].sum() == marked.sum() > 100
    ctx = open_context(store.root)
    note = spend.spend_over_time(ctx).note
    assert (f"{int(marked.sum())} of {len(llm)} calls logged an output token count short of their content"
            in note and "are lower bounds" in note)
    latency = spend.call_latency(ctx)
    assert latency.table["calls"].sum() == len(llm) - marked.sum()
    assert f"{int(marked.sum())} calls whose logged output token counts are lower bounds" in latency.note
    assert "below 1 token/s" not in latency.finding
    kept = aiscale.call_latency(calls.loc[~calls["output_lower_bound"]], n_boot=300).summary()
    pd.testing.assert_frame_equal(latency.table.reset_index(drop=True), kept.round(3).reset_index(drop=True))


def test_claude_code_trace_costs_are_lower_bounds_in_every_money_section_and_the_cli(tmp_path, capsys):
    """The traces whose calls logged output counts short of their content cost at least their
    figure: Spend and Spend over time say "at least", the sections that show trace costs name
    how many traces and calls (counted here from the raw attributes), and `aiscale spend` prints
    the same note as the report."""
    from aiscale.cli.main import main
    from aiscale.report import sections_breakdown as breakdown
    from aiscale.report import sections_spend as spend

    store = aiscale.load([REAL / "claude-code-sessions"], store=tmp_path / "s")
    spans = store.spans()
    llm = spans[spans.kind == "llm"]
    marked = llm.loc[llm.attributes.map(lambda a: json.loads(a)["output_tokens_lower_bound"])]
    facts = store.facts()
    priced = set(facts.loc[facts["cost_usd"].notna(), "trace_id"])
    bounded = set(marked["trace_id"]) & priced
    assert 0 < len(bounded) < len(priced)
    ctx = open_context(store.root)
    total = core.spend(ctx)
    assert f"traces cost at least ${facts['cost_usd'].sum():,.2f}" in total.finding
    sentence = (f"The cost of {len(bounded)} of the {len(priced)} traces priced by aiscale is a lower bound: "
                f"{marked['trace_id'].isin(bounded).sum()} of their calls")
    assert total.data["cost_bounds"] == {"lower_bound_traces": len(bounded), "upper_bound_traces": 0,
                                         "bounded_both_ways_traces": 0}
    for section in [total, money.cost_distribution(ctx), money.attribution(ctx), spend.whatif(ctx),
                    *breakdown.spend_breakdowns(ctx)]:
        assert sentence in section.note, section.finding
    assert spend.spend_over_time(ctx).finding.startswith("At least $")
    assert main(["spend", "--store", str(store.root), "--by", "month"]) == 0
    assert (f"note: {len(marked)} of {len(llm)} calls logged an output token count short of their content"
            in capsys.readouterr().out)


def test_gemini_cli_trace_costs_with_cache_reads_at_an_unlisted_price_are_upper_bounds(tmp_path, capsys):
    """Reads billed at the input price for want of a cache-read price make a trace's cost an upper
    bound: Spend says "at most" and names the traces and calls (counted from the calls' rates)."""
    from aiscale.cli.main import main
    from aiscale.report import sections_spend as spend

    store = aiscale.load([REAL / "gemini-cli-sessions"], store=tmp_path / "s")
    calls = store.calls().to_pandas()
    reading = calls.loc[calls["priced"] & (calls["cache_read_tokens"].fillna(0) > 0)
                        & calls["cache_read_usd_per_token"].isna()]
    facts = store.facts()
    priced = facts.loc[facts["cost_usd"].notna(), "trace_id"]
    bounded = set(reading["trace_id"]) & set(priced)
    assert len(bounded) == 1 == len(priced)  # so the note names "the one trace"
    ctx = open_context(store.root)
    total = core.spend(ctx)
    assert "traces cost at most $" in total.finding
    assert (f"The cost of the one trace priced by aiscale is an upper bound: {len(reading)} of its calls "
            "(gemini-3-pro-image-preview) read the cache at a model with no listed cache-read price") in total.note
    assert total.data["cost_bounds"]["upper_bound_traces"] == 1
    over_time = spend.spend_over_time(ctx)
    assert over_time.finding.startswith("At most $")
    sentence = (f"{len(reading)} calls (gemini-3-pro-image-preview) read the cache at a model with no listed "
                "cache-read price: their reads are billed at the input price, so their cost is an upper bound.")
    assert sentence in over_time.note and sentence in aiscale.spend(store).notes  # the library says it too
    assert main(["spend", "--store", str(store.root)]) == 0
    assert f"note: {sentence}" in capsys.readouterr().out


def test_a_total_over_traces_bounded_both_ways_takes_no_qualifier_and_says_why():
    from aiscale.report.cost_bounds import CostBounds

    mixed = CostBounds(lower=2, upper=1, both=1, priced=9, lower_calls=4, upper_calls=3,
                       lower_models="a", upper_models="b")
    assert mixed.qualifier() == ""
    note = mixed.note()
    assert ("The cost of 3 of the 9 traces priced by aiscale is a lower bound" in note
            and "The cost of 2 of the 9 traces priced by aiscale is an upper bound" in note
            and "One of them has calls of both kinds: its cost is neither bound." in note)
    assert CostBounds(0, 0, 0, 9, 0, 0, "", "").note() == "" and CostBounds(0, 0, 0, 9, 0, 0, "", "").qualifier() == ""
    assert CostBounds(0, 2, 0, 9, 0, 3, "", "b").qualifier() == "at most "
