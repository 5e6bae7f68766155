"""Pricing: genai-prices rates per (provider, model, day), price sheets, joins, reconciliation."""

from __future__ import annotations

import datetime as dt
import glob
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from genai_prices import Usage, calc_price

import aiscale
from aiscale.analysis.spend.reconcile import reconcile
from aiscale.pricing import rates as pricing

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
MINISWE = REAL / "mini-swe-agent-gemini3-verified"


def _spans(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {"start_time": pd.to_datetime(["2025-11-19"] * n, utc=True), "provider": [None] * n}
    return pd.DataFrame({**base, **columns})


CASES = [  # (provider, model, genai provider_id, genai model, day)
    ("openai", "gpt-4o-2024-08-06", "openai", "gpt-4o-2024-08-06", "2025-01-10"),  # cache reads
    ("anthropic", "claude-3-5-sonnet-20241022", "anthropic", "claude-3-5-sonnet", "2025-01-10"),
    ("openrouter", "google/gemini-3-pro-preview", "google", "gemini-3-pro-preview", "2025-11-19"),
    ("anthropic", "claude-sonnet-4-6", "anthropic", "claude-sonnet-4-6", "2026-02-01"),  # tiers
    ("anthropic", "claude-sonnet-4-6", "anthropic", "claude-sonnet-4-6", "2026-04-01"),  # no tiers
    ("perplexity", "sonar-deep-research", "perplexity", "sonar-deep-research", "2025-06-01"),
    ("perplexity", "sonar-pro", "perplexity", "sonar-pro", "2025-06-01"),  # per request
]


def test_costs_equal_genai_prices_own_calculation(rng):
    rows = []
    for provider, model, gp_provider, gp_model, day in CASES:
        for _ in range(40):
            inp = int(rng.integers(1, 400_000))
            cache_read, cache_write = (int(x) for x in rng.integers(0, inp // 3 + 1, 2))
            out = int(rng.integers(0, 20_000))
            reasoning = int(rng.integers(0, out + 1))
            when = dt.datetime.fromisoformat(day).replace(hour=12, tzinfo=dt.timezone.utc)
            truth = calc_price(Usage(input_tokens=inp, cache_read_tokens=cache_read,
                                     cache_write_tokens=cache_write, output_tokens=out,
                                     output_reasoning_tokens=reasoning), gp_model,
                               provider_id=gp_provider, genai_request_timestamp=when)
            rows.append(dict(start_time=pd.Timestamp(when), provider=provider, model=model,
                             input_tokens=inp, cache_read_tokens=cache_read,
                             cache_write_tokens=cache_write, output_tokens=out,
                             reasoning_tokens=reasoning, truth=float(truth.total_price)))
    priced = pricing.price_frame(pd.DataFrame(rows))
    assert priced["priced"].all()
    np.testing.assert_allclose(priced["cost_usd"], priced["truth"], rtol=1e-9, atol=1e-12)


def test_tiers_and_price_changes_are_separate_rate_rows():
    keys = pd.DataFrame({"provider": ["anthropic", "anthropic"], "model": ["claude-sonnet-4-6"] * 2,
                         "day": [dt.date(2026, 2, 1), dt.date(2026, 4, 1)]})
    rates = pricing.rate_table(keys).sort_values(["day", "min_input_tokens"], na_position="first")
    # before 2026-03-13 long prompts (> 200k) cost double; afterwards one flat rate
    assert rates["day"].tolist() == [dt.date(2026, 2, 1)] * 2 + [dt.date(2026, 4, 1)]
    assert (rates["input_usd_per_token"] * 1e6).round(6).tolist() == [3.0, 6.0, 3.0]


@pytest.mark.parametrize("provider, model, expected", [
    ("openrouter", "google/gemini-3-pro-preview", "gemini-3-pro-preview"),
    (None, "openrouter/google/gemini-3-pro-preview", "gemini-3-pro-preview"),
    ("litellm", "openai/gpt-4o", "gpt-4o"),
    (None, "gpt-4o-2024-08-06", "gpt-4o"),
    ("anthropic", "claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
    ("azure", "gpt-4o", "gpt-4o"),
])
def test_model_names_as_sources_write_them_resolve(provider, model, expected):
    keys = pd.DataFrame({"provider": [provider], "model": [model], "day": [dt.date(2025, 12, 1)]})
    assert pricing.rate_table(keys)["matched_model"].unique().tolist() == [expected]


def test_unknown_model_and_unknown_tokens_are_unpriced_never_zero():
    spans = _spans(model=["gpt-4o", "my-private-model", "gpt-4o"], provider=["openai"] * 3,
                   input_tokens=[100, 100, None], output_tokens=[10, 10, None])
    out = pricing.price_frame(spans)
    assert out["priced"].tolist() == [True, False, False]
    assert out["cost_usd"].notna().tolist() == [True, False, False]
    assert out["cost_usd"].iloc[0] == pytest.approx(100 * 2.5e-6 + 10 * 10e-6)


def test_columns_pricing_does_not_read_ride_along_unchanged():
    spans = _spans(model=["gpt-4o", "my-private-model", "gpt-4o"], provider=["openai"] * 3,
                   input_tokens=[100, 100, None], output_tokens=[10, 10, None])
    extra = {"trace_id": pd.array(["a", None, "c"], dtype="string"), "span_id": ["1", "2", "3"],
             "score": [0.5, np.nan, 2.0], "end_time": pd.to_datetime(["2025-11-19 00:01", None, None], utc=True),
             "n": pd.array([1, None, 3], dtype="Int64")}
    wide = pd.concat([pd.DataFrame(extra), spans], axis=1).set_axis([7, 3, 5])  # not a default index
    out = pricing.price_frame(wide, parts=True)
    bare = pricing.price_frame(spans, parts=True)
    assert list(out.columns) == [*wide.columns, *[c for c in bare.columns if c not in spans.columns]]
    pd.testing.assert_frame_equal(out[bare.columns], bare)  # the extra columns change no price
    assert out["trace_id"].tolist()[::2] == ["a", "c"] and pd.isna(out["trace_id"].iloc[1])
    assert out["span_id"].tolist() == ["1", "2", "3"] and out["score"].tolist()[::2] == [0.5, 2.0]
    assert out["end_time"].iloc[0] == pd.Timestamp("2025-11-19 00:01", tz="UTC") and out["end_time"].isna()[1:].all()
    assert out["n"].tolist()[::2] == [1, 3] and pd.isna(out["n"].iloc[1])


def test_price_sheet_csv_wins_by_date_and_expresses_discounts_and_gpus(tmp_path):
    sheet = tmp_path / "prices.csv"
    sheet.write_text(
        "provider,model,from_date,input_per_mtok,output_per_mtok,per_call_usd,discount,price_as,"
        "gpu_hour_usd,gpus\n"
        "openai,gpt-4o,2025-06-01,1,4,,,,,\n"         # negotiated from June
        "azure,prod-deploy-*,,,,,0.5,gpt-4o,,\n"      # Azure deployment, batch half price
        ",llama-local,,,,,,,2.0,4\n"                  # 4 GPUs at $2/h, spread over the day's calls
        "openai,gpt-4o-mini,,,,0.002,,,,\n"           # flat per call
    )
    spans = pd.DataFrame({
        "start_time": pd.to_datetime(["2025-05-31", "2025-06-02", "2025-06-02", "2025-06-02",
                                      "2025-06-02", "2025-06-02"], utc=True),
        "provider": ["openai", "openai", "azure", "local", "local", "openai"],
        "model": ["gpt-4o", "gpt-4o", "prod-deploy-eu", "llama-local", "llama-local", "gpt-4o-mini"],
        "input_tokens": [1_000_000] * 6, "output_tokens": [1_000_000] * 6})
    cost = pricing.price_frame(spans, prices=sheet)["cost_usd"].tolist()
    assert cost == pytest.approx([12.5, 5.0, 6.25, 96.0, 96.0, 0.002])


def test_price_calls_gives_what_price_frame_gives_in_the_order_given(tmp_path, rng):
    """The what-if pricer (keys counted in DuckDB, rows put back in order by Arrow) equals
    price_frame bit for bit: sheet rows by date, GPU-hours spread over each day's calls, unknown
    and missing models and providers unpriced, rows in any order."""
    from aiscale.facts.priced import price_calls

    sheet = tmp_path / "prices.csv"
    sheet.write_text("provider,model,from_date,input_per_mtok,output_per_mtok,gpu_hour_usd,gpus\n"
                     "openai,gpt-4o,2025-06-01,1,4,,\n,llama-local,,,,2.0,4\n")
    n = 3_000
    models = np.array(["gpt-4o", "gpt-4o-mini", "llama-local", "no-such-model", None], dtype=object)
    providers = np.array(["openai", "openai", "local", "acme", None], dtype=object)
    pick = rng.integers(0, 5, n)
    calls = pd.DataFrame({
        "start_time": pd.Timestamp("2025-05-29", tz="UTC") + pd.to_timedelta(rng.integers(0, 6 * 86_400, n), unit="s"),
        "provider": pd.Series(providers[rng.permutation(pick)], dtype="string"),
        "model": pd.Series(models[pick], dtype="string"),
        "input_tokens": pd.array(rng.integers(0, 50_000, n), dtype="Int64"),
        "output_tokens": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(0, 5_000, n)), dtype="Int64"),
        "cache_read_tokens": pd.array(rng.integers(0, 1_000, n), dtype="Int64")})
    for prices in (None, sheet):
        expected = pricing.price_frame(calls, prices=prices, parts=True)
        got = price_calls(calls, prices=prices, parts=True)
        assert got["priced"].any() and (~got["priced"]).any()
        assert got["price_source"].str.contains("price sheet").any() == (prices is not None)
        pd.testing.assert_frame_equal(got, expected[got.columns], check_dtype=False)


def test_price_sheet_yaml_and_discount_only_row(tmp_path):
    sheet = tmp_path / "prices.yaml"
    sheet.write_text("prices:\n  - {provider: openai, model: '*', discount: 0.2}\n")
    spans = _spans(provider=["openai"], model=["gpt-4o"], input_tokens=[1_000_000],
                   output_tokens=[0])
    assert pricing.price_frame(spans, prices=sheet)["cost_usd"].item() == pytest.approx(2.0)


def test_price_sheet_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match=r"columns must be among .* \['input_price'\]"):
        pricing.rate_table(pd.DataFrame({"provider": [], "model": [], "day": []}),
                           prices=pd.DataFrame({"model": ["x"], "input_price": [1]}))
    with pytest.raises(ValueError, match="must be a .csv, .yaml or .yml"):
        pricing.rate_table(pd.DataFrame({"provider": [], "model": [], "day": []}),
                           prices=tmp_path / "prices.txt")
    with pytest.raises(ValueError, match=r"lacks columns \['day'\]"):
        pricing.rate_table(pd.DataFrame({"provider": [], "model": []}))


def _miniswe_calls() -> pd.DataFrame:
    rows = []
    for path in sorted(glob.glob(str(MINISWE / "trajs" / "*" / "*.traj.json"))):
        doc = json.loads(Path(path).read_text())
        for message in (m for m in doc["messages"] if m["role"] == "assistant"):
            extra = message.get("extra", {})
            response = extra.get("response", {})
            usage = response["usage"]
            rows.append(dict(
                kind="llm", trace_id=doc["instance_id"], provider="openrouter",
                model=response["model"], start_time=pd.Timestamp(response["created"], unit="s", tz="UTC"),
                input_tokens=usage["prompt_tokens"], output_tokens=usage["completion_tokens"],
                cache_read_tokens=(usage.get("prompt_tokens_details") or {}).get("cached_tokens"),
                reasoning_tokens=(usage.get("completion_tokens_details") or {}).get("reasoning_tokens"),
                reported_cost_usd=usage.get("cost", extra.get("cost"))))
    return pd.DataFrame(rows)


def test_miniswe_openrouter_costs_reconcile_with_genai_prices():
    calls = _miniswe_calls()
    assert len(calls) == 1307  # api_calls sum in SOURCE.md
    result = reconcile(calls)
    summary = result.summary().set_index("model")
    row = summary.loc["google/gemini-3-pro-preview"]
    assert row["calls"] == 1307 and row["both"] == 1307
    assert row["reported_usd"] == pytest.approx(14.620113, abs=1e-6)  # instance_cost sum, SOURCE.md
    assert abs(row["gap_usd"]) < 1e-6 and row["share_within_1%"] == 1.0
    assert "Reconciliation" in repr(result) and "<table" in result._repr_html_()
    assert result.plot().get_xscale() == "log"


def test_reconcile_shows_a_gap_when_the_platform_bills_differently():
    calls = _miniswe_calls()
    cached = calls["cache_read_tokens"].fillna(0) > 0
    # a platform that bills cache reads as fresh input overstates exactly these calls
    billed = calls.assign(reported_cost_usd=calls["reported_cost_usd"]
                          + cached * calls["cache_read_tokens"].fillna(0) * (2.0 - 0.2) / 1e6)
    row = reconcile(billed).summary().iloc[0]
    expected = (calls["cache_read_tokens"].fillna(0) * 1.8e-6).sum()
    assert row["gap_usd"] == pytest.approx(expected, rel=1e-9)
    assert row["share_within_1%"] < 1.0


def test_facts_without_tokens_report_cost_unknown_not_zero():
    facts = pd.DataFrame({"variant": ["gpt-4o"] * 3, "cost_usd": [np.nan] * 3,
                          "reported_cost_usd": [np.nan] * 3})
    row = reconcile(facts).summary().iloc[0]
    assert row["priced"] == 0 and pd.isna(row["aiscale_usd"]) and pd.isna(row["gap_usd"])


def test_reconcile_reads_a_store(tmp_path):
    assert hasattr(aiscale, "__name__")
    with pytest.raises(TypeError, match="must be a TraceStore or a DataFrame"):
        reconcile([1, 2])
