"""Property: generated valid records in every format round-trip to the facts counted by hand.

Each example writes a few generated traces in one format, loads them into a fresh store and
checks every fact the format carries against the counts taken from the generated run itself
(fuzzkit.expected), plus the accounting: rows read = loaded + quarantined, nothing quarantined,
and rows loaded = the rows actually in the store.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fuzzkit import CHECKED, WRITERS, expected, runs, untagged
from hypothesis import given, settings

import aiscale


def stored_rows(store: aiscale.TraceStore) -> int:
    """Span rows plus span-less fact rows the store holds (before cross-file de-duplication)."""
    return int(store.sql("SELECT (SELECT count(*) FROM spans_all) + (SELECT count(*) FROM facts_raw_all)")
               .iloc[0, 0])


def check_accounting(store: aiscale.TraceStore, *, quarantined: int | None = None) -> None:
    summary = store.last_load
    assert summary.rows_read == summary.rows_loaded + summary.rows_quarantined
    if quarantined is not None:
        assert summary.rows_quarantined == quarantined, str(summary)
    assert len(store.quarantine()) == summary.rows_quarantined


def compare(facts: pd.DataFrame, want: pd.DataFrame, ids: dict[str, str], columns: list[str]) -> None:
    facts = facts.assign(trace_id=facts["trace_id"].map(untagged)).set_index("trace_id")
    assert sorted(facts.index) == sorted(ids.values())
    for model_id, trace_id in ids.items():
        got, exp = facts.loc[trace_id], want.loc[model_id]
        for column in columns:
            if column == "reported_cost_usd":
                assert got[column] == pytest.approx(exp[column], rel=1e-9, abs=1e-12), column
            elif column == "success":
                assert bool(got[column]) is bool(exp[column]), column
            else:
                assert int(got[column]) == int(exp[column]), (column, trace_id)


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_fuzz_valid_records_round_trip(fmt):
    @settings(max_examples=max(3, settings().max_examples // 40))
    @given(run=runs)
    def check(run):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            written = WRITERS[fmt](run, folder)
            store = aiscale.load(written.files, store=folder / "store")
            assert {f.format for f in store.last_load.files} == {fmt}
            check_accounting(store, quarantined=0)
            assert stored_rows(store) == store.last_load.rows_loaded
            one_tool = fmt in ("mini-swe-agent", "swe-agent-v0")
            compare(store.facts(), expected(run, one_tool=one_tool), written.ids, CHECKED[fmt])

    check()


def test_fuzz_expected_counts_are_independent_of_aiscale():
    """The hand count itself: two calls of one tool with the same arguments are one repeat."""
    from fuzzkit import Call, Trace

    call = Call(10, 2, 0.5, "search", '{"q": "a"}')
    want = expected([Trace("t", True, (call, call, Call(1, 1, 0.0, None, "x")))])
    assert want.loc["t"].tolist() == [3, 2, 21, 5, 1.0, 1, True]
    assert np.isclose(want.loc["t", "reported_cost_usd"], 1.0)
