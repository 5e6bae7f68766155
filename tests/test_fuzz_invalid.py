"""Property: invalid records in every format are quarantined with a reason; nothing is lost.

For each format and each kind of corruption (wrong types, missing ids, negative or absurd
token counts, end before start, unknown enum values, deeply nested or 1 MB attributes,
non-UTF-8 bytes, duplicate ids, parent cycles), hypothesis picks the generated traces and
the record to corrupt. Every load must finish without an exception, keep
rows read = loaded + quarantined, store exactly the rows it says it loaded, and, for the
corruptions the format must reject, quarantine at least one row naming the file and a rule.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import pytest
from fuzzbad import COUNTED_TWICE, KINDS, MUST_QUARANTINE, corrupt
from fuzzkit import WRITERS, runs
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fuzz_roundtrip import check_accounting, stored_rows

import aiscale

SPAN_FORMATS = ("canonical", "phoenix", "langsmith", "langfuse", "otlp")


def load_corrupted(fmt: str, run, kind: str, index: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        written = WRITERS[fmt](run, folder)
        files = corrupt(fmt, written, kind, index)
        store = aiscale.load(files, store=folder / "store", format=None if fmt == "canonical" else fmt)
        check_accounting(store)
        summary = store.last_load
        if fmt in SPAN_FORMATS:
            assert stored_rows(store) == summary.rows_loaded, str(summary)
        if kind in MUST_QUARANTINE[fmt]:
            quarantine = store.quarantine()
            assert summary.rows_quarantined >= 1, f"{fmt}/{kind} was not quarantined:\n{summary}"
            assert quarantine["reason"].str.len().gt(0).all()
            assert quarantine["source_file"].isin([str(f) for f in files]).all()
        if kind == "duplicate_id" and fmt in COUNTED_TWICE:
            assert len(store.facts()) == 2 * len(run) and store.facts()["trace_id"].is_unique


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_fuzz_invalid_records_are_quarantined_never_raised(fmt, kind):
    @settings(max_examples=max(1, settings().max_examples // 200))
    @given(run=runs, index=st.integers(0, 50))
    def check(run, index):
        load_corrupted(fmt, run, kind, index)

    check()


CELL = st.one_of(st.integers(-5, 10**12).map(str), st.sampled_from(["", "x", "1.5", "-0", "nan", "true",
                                                                    "<b>", "1e400", " 7 "]))


@settings(max_examples=max(5, settings().max_examples // 10))
@given(rows=st.lists(st.tuples(st.one_of(st.just(""), st.text("abc", min_size=1, max_size=3)),
                               CELL, CELL, st.sampled_from(["true", "false", "yes", "maybe", ""])),
                     min_size=1, max_size=12))
def test_fuzz_load_facts_accounts_for_every_row(rows):
    """Per-trace tables (``aiscale.load_facts``): bad cells quarantine their row, never raise."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "runs.csv"
        frame = pd.DataFrame(rows, columns=["id", "calls", "tokens", "ok"])
        frame.to_csv(path, index=False)
        facts = aiscale.load_facts(path, columns={"id": "trace_id", "calls": "iterations",
                                                  "tokens": "input_tokens", "ok": "success"})
        summary = facts.attrs["load_summary"]
        assert summary["rows_read"] == len(rows) == summary["rows_loaded"] + summary["rows_quarantined"]
        assert len(facts) == summary["rows_loaded"] and facts["trace_id"].is_unique
        assert all(q["reason"] and q["source_row"] >= 2 for q in facts.attrs["quarantined"])
        assert (facts["iterations"].dropna() >= 0).all() and (facts["input_tokens"].dropna() >= 0).all()
