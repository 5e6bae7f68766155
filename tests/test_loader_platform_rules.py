"""Platform records whose values cannot be what they claim, or that are too big or too deep.

Each case starts from the bundled fixtures (tests/fixtures/platforms), changes one record and
checks that exactly that record is quarantined with its rule while every other record loads
(rows read = rows loaded + rows quarantined), and that times given as numbers take their unit
from their magnitude (seconds are not nanoseconds).
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

import aiscale
from aiscale.loaders.base import MAX_DEPTH, MAX_RECORD_BYTES

FIX = Path(__file__).resolve().parent / "fixtures" / "platforms"
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "tau2-bench-results"


def records(name: str) -> list[dict]:
    return [json.loads(line) for line in (FIX / name).read_text().splitlines() if line.strip()]


def write(path: Path, rows: list[dict | str]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def load_one(tmp_path: Path, path: Path) -> tuple[aiscale.TraceStore, dict[int, str]]:
    store = aiscale.load([path], store=tmp_path / "store")
    summary = store.last_load
    assert summary.rows_read == summary.rows_loaded + summary.rows_quarantined
    q = store.quarantine()
    return store, dict(zip(q.source_row.astype(int), q.reason, strict=True))


def _llm_index(rows: list[dict], key: str, value: str) -> int:
    return next(i for i, r in enumerate(rows) if r.get(key) == value)


LANGSMITH_CASES = [  # (field, value, rule the record breaks)
    ("start_time", "yesterday", "start_time is not a time"),
    ("start_time", "9999-01-01T00:00:00+00:00", "start_time is outside 1990–2099"),
    ("start_time", "2026-11-26T00:24:38.7+25:00", "start_time has a UTC offset beyond ±14:00"),
    ("end_time", 12345, "end_time is a number that is no time"),
    ("prompt_tokens", math.nan, "input_tokens is not finite"),
    ("prompt_tokens", "many", "input_tokens is not a number"),
    ("total_cost", math.inf, "total_cost is not finite"),
]


@pytest.mark.parametrize("field, value, rule", LANGSMITH_CASES)
def test_langsmith_values_that_cannot_be_what_they_claim_are_quarantined(tmp_path, field, value, rule):
    rows = records("langsmith_sdk_runs.jsonl")
    i = _llm_index(rows, "run_type", "llm")
    rows[i][field] = value
    store, found = load_one(tmp_path, write(tmp_path / "runs.jsonl", rows))
    assert found == {i + 1: found.get(i + 1)} and found[i + 1].startswith(rule), found
    assert store.last_load.rows_loaded == len(rows) - 1
    assert store.spans()["start_time"].notna().all()  # nothing became an unknown time silently


def test_langsmith_usage_that_is_no_object_is_unknown_and_a_repeated_key_counts_once(tmp_path):
    """usage_metadata in ``outputs`` wins over extra.metadata's, even when it holds no counts;
    of a key written twice the first counts (as every JSON path read here takes it)."""
    rows = records("langsmith_sdk_runs.jsonl")
    root = rows[0]
    start = root["start_time"]
    base = {"trace_id": root["trace_id"], "parent_run_id": root["id"], "run_type": "llm", "start_time": start}
    odd = [{**base, "id": "text", "outputs": {"usage_metadata": "120 tokens"}},
           {**base, "id": "list", "outputs": {"usage_metadata": [120]},
            "extra": {"metadata": {"usage_metadata": {"input_tokens": 5}}}},
           {**base, "id": "null", "outputs": {"usage_metadata": None},
            "extra": {"metadata": {"usage_metadata": {"input_tokens": 5, "output_tokens": 2}}}}]
    twice = json.dumps({**base, "id": "twice", "extra": {"metadata": {"usage_metadata": {"input_tokens": 7}}}})
    twice = twice.replace('"input_tokens": 7', '"input_tokens": 7, "output_tokens": 3, "input_tokens": 9')
    store, found = load_one(tmp_path, write(tmp_path / "runs.jsonl", [*rows, *odd, twice]))
    assert found == {}
    spans = store.spans().set_index("span_id")
    assert spans.loc[["text", "list"], "input_tokens"].isna().all()
    assert spans.loc[["text", "list"], "attributes"].map(lambda a: json.loads(a)["aiscale.usage_missing"]).all()
    assert spans.loc["null", ["input_tokens", "output_tokens"]].tolist() == [5, 2]
    assert spans.loc["twice", ["input_tokens", "output_tokens"]].tolist() == [7, 3]


@pytest.mark.parametrize("value, rule", [
    (math.nan, "llm.token_count.prompt is not finite"), ("lots", "llm.token_count.prompt is not a number")])
def test_phoenix_token_counts_that_are_no_numbers_are_quarantined(tmp_path, value, rule):
    rows = records("phoenix_spans.jsonl")
    i = next(n for n, r in enumerate(rows) if r["span_kind"] == "LLM" and r["attributes.llm.token_count.prompt"])
    rows[i]["attributes.llm.token_count.prompt"] = value
    store, found = load_one(tmp_path, write(tmp_path / "spans.jsonl", rows))
    assert found == {i + 1: rule}
    assert store.last_load.rows_loaded == len(rows) - 1


def test_langfuse_usage_that_is_not_whole_numbers_is_quarantined(tmp_path):
    rows = json.loads((FIX / "langfuse_observations_api.json").read_text())["data"]
    i = _llm_index(rows, "type", "GENERATION")
    rows[i]["usageDetails"]["output"] = math.inf
    rows[i + 1]["startTime"] = "2025-06-15T12:00:02+99:00"
    store, found = load_one(tmp_path, write(tmp_path / "observations.jsonl", rows))
    assert found == {i + 1: "usage_details is not whole numbers: output",
                     i + 2: "start_time has a UTC offset beyond ±14:00"}


def test_numeric_times_take_their_unit_from_their_magnitude(tmp_path):
    """The same runs with times as epoch seconds, milliseconds and ISO text give the same facts."""
    rows = records("langsmith_sdk_runs.jsonl")
    iso = aiscale.load([write(tmp_path / "iso.jsonl", rows)], store=tmp_path / "iso").facts()
    for unit, scale in (("s", 1), ("ms", 1e3), ("ns", 1e9)):
        numeric = [{**r, **{k: round(datetime.fromisoformat(r[k]).timestamp() * scale, 6 if unit == "s" else 0)
                            for k in ("start_time", "end_time")}} for r in rows]
        if unit == "ns":
            numeric = [{**r, "start_time": int(r["start_time"]), "end_time": int(r["end_time"])} for r in numeric]
        facts = aiscale.load([write(tmp_path / f"{unit}.jsonl", numeric)], store=tmp_path / unit).facts()
        assert (facts["started_at"] - iso["started_at"]).abs().max() < pd.Timedelta("1ms"), unit
        assert facts["latency_s"].tolist() == pytest.approx(iso["latency_s"].tolist(), abs=1e-3)
    assert iso["started_at"].dt.year.eq(2026).all()


# -- bounded records -------------------------------------------------------------------------
def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_a_deeply_nested_jsonl_record_is_quarantined_and_the_rest_loads(tmp_path):
    rows = records("langsmith_sdk_runs.jsonl")
    deep = json.dumps(rows[1])[:-1] + ', "extra_deep": ' + _deep(100_000) + "}"
    edge = {**rows[3], "nested": json.loads(_deep(MAX_DEPTH - 1))}  # at the bound: kept
    path = write(tmp_path / "runs.jsonl", [rows[0], deep, rows[2], edge, *rows[4:]])
    store, found = load_one(tmp_path, path)
    assert found == {2: f"record nested deeper than {MAX_DEPTH} levels"}
    assert store.last_load.rows_loaded == len(rows) - 1


def test_a_record_over_the_size_bound_is_quarantined_unread(tmp_path):
    rows = records("langsmith_sdk_runs.jsonl")
    big = {**rows[2], "outputs": {"output": "x" * (MAX_RECORD_BYTES + 10)}}
    store, found = load_one(tmp_path, write(tmp_path / "runs.jsonl", [*rows[:2], big, *rows[3:]]))
    assert found == {3: f"record larger than {MAX_RECORD_BYTES >> 20} MB"}
    assert store.last_load.rows_loaded == len(rows) - 1


def test_a_deeply_nested_tau2_simulation_is_quarantined_and_the_rest_loads(tmp_path):
    document = json.loads((REAL / "gpt-4.1_airline_default_gpt-4.1_1trials.json").read_text())
    n = len(document["simulations"])
    document["simulations"][3]["messages"][0]["content"] = "@DEEP@"
    path = tmp_path / "deep_results.json"
    path.write_text(json.dumps(document).replace('"@DEEP@"', _deep(100_000)))
    store, found = load_one(tmp_path, path)
    assert found == {4: f"simulation 4: record nested deeper than {MAX_DEPTH} levels"}
    assert len(store.facts()) == n - 1
