"""Spend analyses told that the calls they are handed are already priced (``already_priced=True``)
give exactly what pricing them again gives, on real sessions with cache writes (Claude Code) and
real reported costs (tau2), with a price sheet and a window; an edited frame is priced again by
default (no hidden marker on the frame), and a frame without prices is refused."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import aiscale
from aiscale.analysis.spend.calls import llm_calls
from aiscale.report import sections_spend
from aiscale.report.context import open_context

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
SOURCES = [REAL / "claude-code-sessions" / "packmind-context-evaluator-entire",
           REAL / "tau2-bench-results" / "gpt-4.1_airline_default_gpt-4.1_1trials.json"]
# haiku 30% off its listed price; every other model at genai-prices' price
SHEET = pd.DataFrame({"model": ["claude-haiku*"], "discount": [0.3]})


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return aiscale.load(SOURCES, store=tmp_path_factory.mktemp("priced") / "s.store")


@pytest.fixture(scope="module")
def calls(store):
    return llm_calls(store, prices=SHEET, parts=True)


def _results(calls: pd.DataFrame, **kwargs) -> dict[str, pd.DataFrame]:
    window = {"since": kwargs.pop("since", None)}
    return {
        "spend": aiscale.spend(calls, by="day", prices=SHEET, **window, **kwargs).summary(),
        "cache": aiscale.cache_savings(calls, by="model", prices=SHEET, **window, **kwargs).frame(),
        "whatif": aiscale.whatif(calls, "gpt-4o-2024-08-06", prices=SHEET, n_boot=50, **window,
                                 **kwargs).summary(),
        "reconcile": aiscale.reconcile(calls, prices=SHEET, **kwargs).summary(),
    }


@pytest.mark.parametrize("since", [None, "middle"])
def test_already_priced_calls_give_what_pricing_again_gives(calls, since):
    assert calls["model"].str.startswith("claude-haiku").any() and calls["reported_cost_usd"].notna().any()
    assert (calls["cache_write_1h_tokens"].fillna(0) > 0).any()  # 1-hour writes priced by the cache terms
    when = calls["start_time"].sort_values().iloc[len(calls) // 2] if since else None
    again = _results(calls, since=when)
    told = _results(calls, since=when, already_priced=True)
    for name in again:
        pd.testing.assert_frame_equal(told[name], again[name], obj=name)
    assert again["spend"]["cost_usd"].sum() > 0 and again["reconcile"]["reported_usd"].sum() > 0


def test_the_sheet_the_calls_were_priced_with_is_the_one_counted(store, calls):
    facts_total = store.facts(prices=SHEET)["cost_usd"].sum()
    told = aiscale.spend(calls, prices=SHEET, already_priced=True).summary()["cost_usd"].sum()
    assert told == pytest.approx(facts_total, rel=1e-9)
    listed = aiscale.spend(calls).summary()["cost_usd"].sum()  # priced again, without the discount
    assert listed > told * 1.01


def test_an_edited_frame_is_priced_again_unless_told(calls):
    edited = calls.assign(output_tokens=calls["output_tokens"] * 2)
    base = aiscale.spend(calls, prices=SHEET, already_priced=True).summary()["cost_usd"].sum()
    again = aiscale.spend(edited, prices=SHEET).summary()["cost_usd"].sum()
    assert again > base * 1.01  # the doubled output tokens are priced: nothing on the frame says "priced"
    kept = aiscale.spend(edited, prices=SHEET, already_priced=True).summary()["cost_usd"].sum()
    assert kept == pytest.approx(base, rel=1e-12)  # told: the caller's costs are used as they are


def test_calls_without_prices_or_a_store_are_refused(store, calls):
    with pytest.raises(ValueError, match=r"lacks columns \['cost_usd'\]"):
        aiscale.spend(calls.drop(columns=["cost_usd"]), already_priced=True)
    with pytest.raises(ValueError, match="cache_read_usd"):
        aiscale.cache_savings(calls.drop(columns=["cache_read_usd"]), already_priced=True)
    with pytest.raises(TypeError, match="already_priced=True"):
        aiscale.spend(store, already_priced=True)


def test_spend_over_time_in_the_report_counts_the_report_sheet(store):
    ctx = open_context(store.root, prices=SHEET, with_spans=False)
    section = sections_spend.spend_over_time(ctx, prices=SHEET)
    qualifier, _, figure = section.finding.split(" over ")[0].partition("$")
    assert qualifier == "At least "  # the Claude Code sessions log some output counts short of their content
    assert float(figure.replace(",", "")) == pytest.approx(ctx.facts["cost_usd"].sum(), abs=0.006)
