"""The vectorised platform loaders give what the previous ones gave, row for row.

The previous loaders (LangSmith, Langfuse, Phoenix and their helpers, which mapped each batch
partly in pandas and Python) are taken from the repository's history at :data:`PREVIOUS` and
imported beside the current ones. Both read the same file through the store's own staging
(validation, Parquet parts, quarantine file); the spans, trace rows, quarantine and counts
must be equal. The files: the platform fixtures (made by the real Phoenix and LangSmith
libraries and from Langfuse's API models; there is no real platform export in
``shared/data/real``) and a generated 10 k-row JSONL file per platform with awkward values
(``tests/awkward_platform.py``).

Two differences are intended and allowed: the attributes of an LLM span that wraps another are
written by DuckDB (keys as exported, then the wrapped usage) instead of Python's sorted
re-serialisation, and must be equal as JSON; and the parser's words after "invalid JSON:" in a
quarantine reason now come from the record's own text (before, the newline ending the line was
parsed too: a record cut short was "Invalid control character" or "at column 1" of the next
line). Langfuse rows are compared in file order (the previous query joined without one).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from awkward_platform import write_awkward
from previous_code import import_previous

from aiscale.loaders import langfuse, langsmith, phoenix
from aiscale.store.ingest import stage_chunks

REPO = Path(__file__).resolve().parents[1]
FIX = REPO / "tests" / "fixtures" / "platforms"
PREVIOUS = "20784df8b7d07eea33b6733db27be9b3cab4e97e"  # main before the loaders were vectorised
MODULES = ("_platform", "_platform_sql", "_openinference", "_records", "langsmith", "langfuse", "phoenix")
CURRENT = {"langsmith": langsmith, "langfuse": langfuse, "phoenix": phoenix}


@pytest.fixture(scope="module")
def previous(tmp_path_factory) -> dict:
    """The previous loader modules, as a package ``previous_platform`` importing each other."""
    sources = {name: f"aiscale/loaders/{name}.py" for name in MODULES}
    return import_previous(tmp_path_factory.mktemp("previous"), "previous_platform", PREVIOUS, sources,
                           tuple(CURRENT))


def staged(module, path: Path, folder: Path) -> dict:
    """One file read by ``module`` through the store's staging: counts, spans, traces, quarantine."""
    record = stage_chunks(path, "0" * 64, module.read(path), folder)
    tables = {}
    for table in ("spans", "traces"):
        parts = [pq.read_table(folder / table / part).to_pandas() for part in record["parts"][table]]
        tables[table] = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    quarantine = folder / "quarantine.jsonl"
    tables["quarantine"] = pd.read_json(quarantine, lines=True, dtype=False) if quarantine.exists() \
        else pd.DataFrame()
    return {**tables, "counts": (record["rows_read"], record["rows_loaded"], record["rows_quarantined"])}


def assert_same(path: Path, format: str, previous_module, tmp_path: Path) -> dict:
    before = staged(previous_module, path, tmp_path / "before")
    after = staged(CURRENT[format], path, tmp_path / "after")
    assert after["counts"] == before["counts"]
    assert after["counts"][0] == after["counts"][1] + after["counts"][2]
    # the previous Langfuse query joined without an order: rows are compared in file order
    old, new = (frame["spans"].sort_values("source_row", kind="stable", ignore_index=True) if len(frame["spans"])
                else frame["spans"] for frame in (before, after))
    assert len(new) == len(old)
    wrapped = old["attributes"].str.contains('"aiscale.wrapped_llm_usage"', regex=False) if len(old) \
        else pd.Series(dtype=bool)
    pd.testing.assert_frame_equal(new.drop(columns="attributes", errors="ignore"),
                                  old.drop(columns="attributes", errors="ignore"))
    if len(old):
        pd.testing.assert_series_equal(new["attributes"][~wrapped], old["attributes"][~wrapped])
        assert [json.loads(a) for a in new["attributes"][wrapped]] == [
            json.loads(a) for a in old["attributes"][wrapped]]
    old_t, new_t = (frame["traces"].sort_values("trace_id", kind="stable", ignore_index=True)
                    if len(frame["traces"]) and format == "langfuse" else frame["traces"] for frame in (before, after))
    pd.testing.assert_frame_equal(new_t, old_t)
    old_q, new_q = before["quarantine"], after["quarantine"]
    if len(old_q):
        parser = re.compile(r"^invalid JSON: .*$")  # the parser's own words: see the module docstring
        old_q["reason"] = old_q["reason"].str.replace(parser, "invalid JSON", regex=True)
        new_q["reason"] = new_q["reason"].str.replace(parser, "invalid JSON", regex=True)
        old_q, new_q = (q.sort_values(["source_row", "reason"], kind="stable", ignore_index=True)
                        for q in (old_q, new_q))
    pd.testing.assert_frame_equal(new_q, old_q)
    return {"spans": len(new), "wrapped": int(wrapped.sum()), "quarantined": len(new_q)}


@pytest.mark.parametrize("name, format", [
    ("langsmith_sdk_runs.jsonl", "langsmith"), ("langsmith_export.parquet", "langsmith"),
    ("phoenix_spans.jsonl", "phoenix"), ("phoenix_spans.parquet", "phoenix"),
    ("langfuse_observations.csv", "langfuse"), ("langfuse_observations_api.json", "langfuse"),
    ("langfuse_traces.jsonl", "langfuse"), ("langfuse_scores.csv", "langfuse"),
])
def test_fixtures_load_as_before(previous, tmp_path, name, format):
    found = assert_same(FIX / name, format, previous[format], tmp_path)
    assert found["quarantined"] == 0


@pytest.mark.parametrize("format", ["langsmith", "langfuse", "phoenix"])
def test_ten_thousand_awkward_rows_load_as_before(previous, tmp_path, format):
    path = write_awkward(format, tmp_path / f"{format}.jsonl", rows=10_000, seed=20)
    found = assert_same(path, format, previous[format], tmp_path)
    # the file exercises what it claims: spans kept, wrappers demoted, bad records quarantined
    assert found["spans"] > 5_000 and found["quarantined"] > 100
    assert found["wrapped"] > 0 or format == "langfuse"
