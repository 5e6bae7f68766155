"""The OTLP load through Arrow gives what the pandas path gave, row for row.

The previous OTLP loader and staging (each chunk turned into pandas, validated by
``validate_spans``, cast back to Arrow by ``schema.conform``) are taken from the repository's
history at :data:`PREVIOUS` and imported beside the current ones. Both stage the same file
(validation, Parquet parts by day, quarantine file); the spans, trace rows, quarantine and
counts must be equal, and a store loaded each way must give the same facts to the last bit.

Files: the demo, a simulated file, the OpenTelemetry SDK and Collector fixtures (made by the
real OpenTelemetry SDK; ``shared/data/real`` holds no OTLP export), and an awkward file with
every tolerance and quarantine rule (base64 and hex ids, ``intValue`` as a number and beyond
int64, status as code and name, arrays and kvlists, a NaN cost, blank and Unicode-blank ids,
repeats within and across chunks, parent cycles, trace fields on child spans only).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from previous_code import import_previous
from test_loader_otlp import BAD_LINES, COLLECTOR, SDK, _line, _span

import aiscale
from aiscale.loaders import otlp
from aiscale.sim.simulate import simulate_to
from aiscale.store import loading
from aiscale.store.ingest import stage_chunks

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo" / "otlp-traces.jsonl"
PREVIOUS = "3086acbe07647bd68ebb2939532904e87963f110"  # main before the OTLP load went through Arrow
LOADERS = ("otlp", "_otlp_attrs", "_otlp_flatten", "_otlp_quarantine", "_otlp_seen", "_otlp_sql", "validate")


@pytest.fixture(scope="module")
def previous(tmp_path_factory) -> dict:
    """The previous OTLP loader, validation and staging, as a package ``previous_otlp``."""
    sources = {name: f"aiscale/loaders/{name}.py" for name in LOADERS} | {"ingest": "aiscale/store/ingest.py"}
    return import_previous(tmp_path_factory.mktemp("previous"), "previous_otlp", PREVIOUS, sources,
                           ("otlp", "ingest"))


def staged(read, stage, path: Path, folder: Path) -> dict:
    """One file read by ``read`` and staged by ``stage``: counts, spans, traces, quarantine."""
    record = stage(path, "0" * 64, read(path), folder)
    tables = {}
    for table in ("spans", "traces"):  # Arrow, not pandas: a NaN and a null differ there
        # by day, then by the chunk a part starts at (one span part per day and file, or one per chunk)
        parts = [pq.read_table(folder / table / part) for part in sorted(record["parts"][table])]
        tables[table] = pa.concat_tables(parts) if parts else None
    quarantine = folder / "quarantine.jsonl"
    tables["quarantine"] = pd.read_json(quarantine, lines=True, dtype=False) if quarantine.exists() else None
    return {**tables, "parts": record["parts"],
            "counts": (record["rows_read"], record["rows_loaded"], record["rows_quarantined"])}


def assert_same(previous: dict, path: Path, tmp_path: Path) -> dict:
    before = staged(previous["otlp"].read, previous["ingest"].stage_chunks, path, tmp_path / "before")
    after = staged(otlp.read, stage_chunks, path, tmp_path / "after")
    assert after["counts"] == before["counts"]
    assert after["counts"][0] == after["counts"][1] + after["counts"][2]
    assert _days(after["parts"]["spans"]) == _days(before["parts"]["spans"])  # the same days
    assert after["parts"]["traces"] == before["parts"]["traces"]
    for table in ("spans", "traces"):
        if before[table] is None:
            assert after[table] is None, table
            continue
        assert after[table].schema == before[table].schema
        if not after[table].equals(before[table]):  # show where
            pd.testing.assert_frame_equal(after[table].to_pandas(), before[table].to_pandas())
            raise AssertionError(f"{table}: the same values in pandas, but not in Arrow (NaN or null?)")
    if before["quarantine"] is None:
        assert after["quarantine"] is None
    else:
        pd.testing.assert_frame_equal(after["quarantine"], before["quarantine"], check_exact=True)
    return {"spans": 0 if after["spans"] is None else after["spans"].num_rows,
            "quarantined": after["counts"][2]}


def _days(parts: list[str]) -> list[str]:
    return sorted({part.split("/")[0] for part in parts})


def _awkward_lines() -> list[bytes]:
    """Every rule at once: the loader tests' bad lines, plus values the pandas path cast."""
    def span(span_id: str, attrs: dict | None = None, **fields) -> dict:
        return _span(span_id, attrs or {"gen_ai.operation.name": "chat"}, **fields)

    def raw(record: dict, key: str, value: dict) -> dict:  # an AnyValue written as given
        record["attributes"].append({"key": key, "value": value})
        return record

    trace = "0af7651916cd43dd8448eb211c8031aa"
    chat = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5}
    nan_cost = span("00000000000000d1", {**chat, "llm.cost.total": "NaN", "aiscale.task.id": "root-task"},
                    traceId=trace)
    raw(nan_cost, "meta", {"kvlistValue": {"values": [{"key": "a", "value": {"intValue": "3"}}, {
        "key": "b", "value": {"arrayValue": {"values": [{"boolValue": True}, {"doubleValue": 1.5}]}}}]}})
    child_fields = span("00000000000000d2", {"aiscale.task.id": "task-from-child", "session.id": "s1",
                                             "aiscale.trial": "2"},
                        traceId=trace, parentSpanId="00000000000000d1")
    lines = [child_fields, nan_cost,  # the child first: the root's fields still win
             raw(span("00000000000000d3", chat, traceId=trace), "gen_ai.usage.reasoning_tokens", {"doubleValue": 2.5}),
             raw(span("00000000000000d4", traceId=trace), "big", {"intValue": "9223372036854775808"}),
             span("00000000000000d5", {**chat, "gen_ai.usage.output_tokens": -3}, traceId=trace),
             span("00000000000000d6", {**chat, "gen_ai.usage.input_tokens": 10**9}, traceId=trace),
             span("00000000000000d7", {**chat, "llm.cost.total": "-1"}, traceId=trace),
             span("00000000000000d8", {**chat, "llm.cost.total": "Infinity"}, traceId=trace),
             span("00000000000000d9", parentSpanId="00000000000000d9", traceId=trace),
             span("00000000000000e1", parentSpanId="00000000000000e2", traceId=trace),
             span("00000000000000e2", parentSpanId="00000000000000e1", traceId=trace),
             span("00000000000000e3", parentSpanId="00000000000000e1", traceId=trace),
             span("\u00a0", traceId=trace), span("  ", traceId=trace), span("x" * 600, traceId=trace),
             span("00000000000000e4", traceId=""), span("00000000000000e5", traceId="   "),
             span("00000000000000e6", status={"code": "STATUS_CODE_OK"}, traceId=trace),
             span("00000000000000e7", status={"code": 2}, traceId=trace,
                  endTimeUnixNano="0", parentSpanId="0000000000000000"),
             *(span(f"00000000000000f{i}", traceId=trace, startTimeUnixNano=t) for i, t in enumerate(
                 ["1750000000", "99999999999999999999", "-5", "abc", "0", 1.75e18])),
             span("00000000000000f9", traceId=trace, endTimeUnixNano="12"),
             span("00000000000000d1", traceId=trace),  # a repeat, a later line
             span("00000000000000e8", {"openinference.span.kind": "TOOL", "tool.name": "search",
                                       "input.value": '{"q": 1}'}, traceId=trace)]
    first = SDK.read_bytes().splitlines()[0]
    bad = [first[:300] if text is None else text for text, _ in (BAD_LINES[n] for n in sorted(BAD_LINES))]
    encoded = [_line(line).encode() for line in lines] + [b if isinstance(b, bytes) else b.encode() for b in bad]
    both = [*SDK.read_bytes().splitlines(), *COLLECTOR.read_bytes().splitlines()]
    return [line for line in [*both, *encoded, *both[:2]] if line.strip()]


def test_the_fixtures_stage_as_before(previous, tmp_path):
    for name, path in (("sdk", SDK), ("collector", COLLECTOR)):
        found = assert_same(previous, path, tmp_path / name)
        assert found["spans"] > 0


@pytest.mark.parametrize("chunk_rows", [otlp.CHUNK_ROWS, 3])  # one chunk, or repeats across chunks
def test_an_awkward_file_stages_as_before(previous, tmp_path, monkeypatch, chunk_rows):
    path = tmp_path / "awkward.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(_awkward_lines()) + b"\n")
    monkeypatch.setattr(otlp, "CHUNK_ROWS", chunk_rows)
    monkeypatch.setattr(previous["otlp"], "CHUNK_ROWS", chunk_rows)
    found = assert_same(previous, path, tmp_path)
    assert found["spans"] > 20 and found["quarantined"] > 20


def test_the_demo_and_a_simulated_file_give_the_same_store_and_facts(previous, tmp_path, monkeypatch):
    simulate_to(tmp_path / "sim", 200, seed=5, format="otlp")
    for path in (DEMO, tmp_path / "sim" / "otlp-traces.jsonl"):
        assert_same(previous, path, tmp_path / path.parent.name)
        after = aiscale.load([path], store=tmp_path / f"after-{path.parent.name}")

        def stage_previous(path, digest, format, named, staging, on_chunk=None):
            staging.mkdir(parents=True)
            record = previous["ingest"].stage_chunks(path, digest, previous["otlp"].read(path), staging)
            return {**record, "status": "loaded", "format": "otlp"}

        with monkeypatch.context() as patch:
            patch.setattr(loading, "stage_file", stage_previous)
            before = aiscale.load([path], store=tmp_path / f"before-{path.parent.name}")
        assert json.dumps(vars(after.last_load.contents), default=str) == json.dumps(
            vars(before.last_load.contents), default=str)
        pd.testing.assert_frame_equal(after.facts(), before.facts(), check_exact=True)
