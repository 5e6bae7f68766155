"""Report sections on money over time: each finding states what the data says, and says why
when the data cannot support it (never a $0 for an unknown)."""

from __future__ import annotations

import pandas as pd
import pytest

from aiscale.report import sections_spend as money
from aiscale.report import shared_calls
from aiscale.report.context import Context


def _ctx(reported: list[float]) -> Context:
    t = pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-03"], utc=True)
    spans = pd.DataFrame({"trace_id": ["a", "b", "c"], "span_id": ["1", "2", "3"], "kind": "llm",
                          "start_time": t, "end_time": t + pd.Timedelta(seconds=4),
                          "provider": ["openai", "openai", "anthropic"],
                          "model": ["gpt-4o-2024-08-06", "gpt-4o-2024-08-06", "claude-sonnet-4-20250514"],
                          "input_tokens": 1_000_000, "output_tokens": 1000, "cache_read_tokens": 0,
                          "cache_write_tokens": 0, "reasoning_tokens": 0,
                          "reported_cost_usd": reported})
    facts = pd.DataFrame({"trace_id": ["a", "b", "c"], "variant": ["x", "x", "y"], "started_at": t,
                          "cost_usd": [2.51, 2.51, 3.015]})
    return Context(facts=facts, spans=spans, store=None)


def test_reported_vs_computed_shows_only_gaps_above_the_threshold():
    # gpt-4o: 1M input at 2.50 + 1,000 output at 10.00 = 2.51; sonnet 4: 3.00 + 0.015 = 3.015
    quiet = money.reported_vs_computed(_ctx([2.51, 2.51, 3.02]), threshold=0.01)
    assert quiet.finding.startswith("Reported and computed cost agree within 1% for every model")
    loud = money.reported_vs_computed(_ctx([2.51, 2.51, 3.9]), threshold=0.01)
    assert loud.finding.startswith("1 model(s) differ by more than 1%: claude-sonnet-4-20250514 "
                                   "reported $3.90 against $3.02 computed (+29.4%)")
    assert loud.table["model"].tolist() == ["claude-sonnet-4-20250514"]


def test_spend_whatif_and_latency_findings_on_hand_calls():
    ctx = _ctx([None, None, None])
    assert money.spend_over_time(ctx).finding.startswith("$8.04 over 3 day(s)")
    assert money.reported_vs_computed(ctx).finding == ("The source reports no cost of its own: "
                                                       "nothing to reconcile.")
    whatif = money.whatif(ctx)  # re-priced as the other model used
    assert "priced as claude-sonnet-4-20250514 they would cost $9.04" in whatif.finding
    latency = money.call_latency(ctx)  # 1 and 2 calls per model: too few to name the slowest
    assert latency.finding == "No model has 10 or more timed calls: no headline; the table shows each."
    assert latency.table["tokens_per_s_p50"].tolist() == [250.0, 250.0]  # 1,000 tokens in 4 s each
    # the last day against the day before: one x trace became one y trace (another model)
    assert money.why_spend_changed(ctx).finding.startswith(
        "Spend went from $2.51 to $3.02 (+0.51 USD); largest terms: mix +0.51")
    assert money.why_spend_changed(_ctx([None] * 3).__class__(
        facts=ctx.facts.iloc[:2], spans=ctx.spans.iloc[:2], store=None)).finding.startswith(
        "Why spend changed needs at least two days")
    assert money.cache(ctx).finding.startswith("No call in this window read or wrote a prompt cache")


@pytest.mark.parametrize("section", [money.cache, money.whatif, money.why_spend_changed])
def test_per_trace_rows_say_why_not(section):
    ctx = Context(facts=pd.DataFrame({"trace_id": ["a"], "variant": ["v"]}), spans=None, store=None)
    assert "per-trace rows only" in section(ctx).finding


def test_cache_writes_a_source_does_not_record_are_unknown_not_free():
    ctx = _ctx([None, None, None])
    ctx.spans["cache_read_tokens"] = 500_000
    ctx.spans["cache_write_tokens"] = pd.array([None, None, None], dtype="Int64")
    section = money.cache(ctx)
    assert "records no cache writes" in section.finding and "unknown" in section.finding
    assert "paid for writes" not in section.finding
    assert section.table["write_premium_usd"].isna().all() and section.table["net_savings_usd"].isna().all()
    assert (section.table["read_savings_usd"] > 0).all()


def test_calls_are_read_once_per_report_and_equal_a_fresh_read(tmp_path):
    """Every spend section shares one read of the priced calls; without cost terms it is the
    same frame a fresh read gives, and a context narrowed to other traces reads afresh."""
    from pathlib import Path

    import aiscale
    from aiscale.report.context import open_context
    from aiscale.report.sections_investigate import narrow

    demo = Path(__file__).resolve().parents[1] / "data" / "demo" / "otlp-traces.jsonl"
    store = aiscale.load([demo], store=tmp_path / "demo.store")
    ctx = open_context(store.root, with_spans=False)
    for parts in (True, False):
        pd.testing.assert_frame_equal(money.calls_of(ctx, parts=parts),
                                      shared_calls._read_calls(ctx, prices=None, parts=parts))
    ids = ctx.facts["trace_id"].tolist()[:3]
    few = money.calls_of(narrow(ctx, trace_ids=ids))
    assert sorted(few["trace_id"].unique()) == sorted(ids)
    shared = money.calls_of(ctx)
    ctx.store = None  # nothing left to read from: the shared calls are still there
    pd.testing.assert_frame_equal(money.calls_of(ctx), shared)
    assert money.calls_of(ctx, prices="other-sheet.yaml") is None  # another price sheet is another read


def test_cache_reads_of_a_model_without_a_cache_read_price_are_unknown_not_zero():
    """genai-prices lists no cache-read price for gemini-3-pro-image-preview (Gemini CLI's
    sessions read its cache): the section says the saving is unknown, never "saved $0.00"."""
    ctx = _ctx([None, None, None])
    ctx.spans["provider"] = "google"
    ctx.spans["model"] = "gemini-3-pro-image-preview"
    ctx.spans["cache_read_tokens"] = [400_000, 0, 300_000]
    ctx.spans["cache_write_tokens"] = pd.array([None, None, None], dtype="Int64")
    section = money.cache(ctx)
    assert "$0.00" not in section.finding
    assert "2 of the 3 priced calls read or wrote the cache at a model with no listed cache price, " \
           "so what caching saved is unknown" in section.finding
    assert section.table["read_savings_usd"].isna().all()
    assert section.table["unknown_rate_calls"].tolist() == [2]
    assert section.figure is None  # nothing known to draw (no "net savings $0" line)
    # with one listed model beside it, the finding gives what the listed calls saved, apart
    spans = ctx.spans.copy()
    spans.loc[0, ["provider", "model"]] = ["anthropic", "claude-sonnet-4-20250514"]
    mixed = money.cache(Context(facts=ctx.facts, spans=spans, store=None))
    assert "1 of the 3 priced calls" in mixed.finding
    assert "the calls whose rates are listed saved $1.08 on reads" in mixed.finding  # 400k x (3 - 0.3)
    assert mixed.figure is not None


def test_whatif_re_prices_as_another_used_model_only_when_that_model_has_a_price():
    """Gemini CLI's sessions used gemini-3-pro-image-preview and a `gemini-3-pro` genai-prices
    does not list: re-pricing every call as the unlisted one is unknown, so it is no default."""
    ctx = _ctx([None, None, None])
    ctx.spans["model"] = ["gpt-4o-2024-08-06", "gpt-4o-2024-08-06", "no-such-model-anywhere"]
    section = money.whatif(ctx)
    assert section.finding == ("The other models this window used (no-such-model-anywhere) have no "
                               "price, so the window cannot be re-priced as them; set `whatif_models` "
                               "to re-price it on another model.")
    # a listed model beside it is the default target; an unlisted one asked for is shown unknown
    spans = ctx.spans.copy()
    spans["model"] = ["gpt-4o-2024-08-06", "gpt-4o-2024-08-06", "claude-sonnet-4-20250514"]
    spans.loc[2, "provider"] = "anthropic"
    listed = money.whatif(Context(facts=ctx.facts, spans=spans, store=None))
    assert "priced as claude-sonnet-4-20250514 they would cost" in listed.finding
    asked = money.whatif(Context(facts=ctx.facts, spans=spans, store=None), models=["no-such-model-anywhere"])
    assert "they would cost unknown" in asked.finding and "$0.00" not in asked.finding


def test_whatif_prices_a_used_model_as_the_window_priced_it():
    """A target the window used through one provider is re-priced through that provider (as its
    own calls were: Bedrock's Claude is AWS's entry in genai-prices, not Anthropic's); a model
    used through two providers, or none, names no provider."""
    calls = pd.DataFrame({"model": ["a", "a", "b", "b", "c", "d"],
                          "provider": ["bedrock", "bedrock", "openai", "azure", None, "x"]})
    assert money._as_used(calls, ["a", "b", "c", "e"]) == {
        "as a": {"as": "a", "provider": "bedrock"}, "as b": {"as": "b"}, "as c": {"as": "c"},
        "as e": {"as": "e"}}
    ctx = _ctx([None, None, None])
    ctx.spans["provider"] = ["openai", "openai", "bedrock"]
    ctx.spans["model"] = ["gpt-4o-2024-08-06", "gpt-4o-2024-08-06", "claude-3-5-sonnet-20241022"]
    section = money.whatif(ctx)
    import aiscale

    calls = money.calls_of(ctx, parts=True)
    expected = aiscale.whatif(calls, {"as claude-3-5-sonnet-20241022": {
        "as": "claude-3-5-sonnet-20241022", "provider": "bedrock"}}, n_boot=400,
        already_priced=True).summary()
    pd.testing.assert_frame_equal(section.table.reset_index(drop=True),
                                  expected[section.table.columns].round(4).reset_index(drop=True))
    row = section.table.set_index("scenario").loc["as claude-3-5-sonnet-20241022"]
    assert row["total_usd"] == pytest.approx(3 * 3.015, abs=1e-4)  # its own call's price, thrice


def test_spend_over_time_says_which_costs_are_upper_bounds():
    """Reads at a model with no listed cache-read price are billed at the input price: spend
    says how many calls that is and that their cost is an upper bound; none, it says nothing."""
    ctx = _ctx([None, None, None])
    ctx.spans["provider"] = "google"
    ctx.spans["model"] = ["gemini-3-pro-image-preview", "gemini-3-pro-image-preview", "gpt-4o-2024-08-06"]
    ctx.spans.loc[2, "provider"] = "openai"
    ctx.spans["cache_read_tokens"] = [400_000, 0, 300_000]  # gpt-4o lists a cache-read price
    section = money.spend_over_time(ctx)
    assert ("1 calls (gemini-3-pro-image-preview) read the cache at a model with no listed cache-read "
            "price: their reads are billed at the input price, so their cost is an upper bound.") in section.note
    assert "upper bound" not in money.spend_over_time(_ctx([None, None, None])).note


def _timed_calls(output_tokens: list[int], seconds: float = 4.0) -> Context:
    """One gpt-4o call per trace, each ``seconds`` long, with these output token counts."""
    n = len(output_tokens)
    t = pd.date_range("2025-01-01", periods=n, freq="h", tz="UTC")
    spans = pd.DataFrame({"trace_id": [f"t{i}" for i in range(n)], "span_id": [str(i) for i in range(n)],
                          "kind": "llm", "start_time": t, "end_time": t + pd.Timedelta(seconds=seconds),
                          "provider": "openai", "model": "gpt-4o-2024-08-06", "input_tokens": 1000,
                          "output_tokens": output_tokens, "cache_read_tokens": 0, "cache_write_tokens": 0,
                          "reasoning_tokens": 0, "reported_cost_usd": None})
    facts = pd.DataFrame({"trace_id": spans["trace_id"], "variant": "x", "started_at": t})
    return Context(facts=facts, spans=spans, store=None)


def test_latency_names_the_slowest_model_of_enough_calls_and_doubts_a_rate_below_one_token_a_second():
    fast = money.call_latency(_timed_calls([1000] * 12))
    assert fast.finding == ("gpt-4o-2024-08-06 is the slowest model: 250 output tokens/s at the median "
                            "(end to end).")
    # Claude Code sessions logged the count at a streamed response's start (1-3 tokens for a
    # whole tool call): a rate no model streams at is named as such, with its digits
    slow = money.call_latency(_timed_calls([1, 2, 1, 3, 1, 2, 1, 1, 2, 1, 1, 2]))
    assert slow.finding.startswith("gpt-4o-2024-08-06 is the slowest model: 0.25 output tokens/s at the "
                                   "median (end to end); below 1 token/s, this source's output token "
                                   "counts look incomplete")
    assert "$0" not in slow.finding and " 0 output" not in slow.finding
