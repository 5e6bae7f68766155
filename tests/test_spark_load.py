"""A store loaded on Spark equals the local load: spans, quarantine and facts, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from test_loader_otlp import BAD_LINES, COLLECTOR, SDK, _line, _span

import aiscale
from aiscale.sim.otlp import write_otlp
from aiscale.store.spark_load import load_on_spark
from aiscale.store.trace_store import TraceStore
from aiscale.store.verify import verify_store

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "otlp-traces.jsonl"
KEY = ["trace_id", "span_id"]


def both_loads(tmp_path: Path, source: Path) -> tuple[TraceStore, TraceStore]:
    local = aiscale.load([source], store=tmp_path / "local")
    spark = TraceStore(tmp_path / "spark")
    load_on_spark(spark, [source])
    return local, spark


def assert_same_store(local: TraceStore, spark: TraceStore, tmp_path: Path) -> None:
    a, b = local.last_load, spark.last_load
    assert (b.rows_read, b.rows_loaded, b.rows_quarantined) == (a.rows_read, a.rows_loaded,
                                                                 a.rows_quarantined)
    assert b.rows_read == b.rows_loaded + b.rows_quarantined
    pd.testing.assert_frame_equal(local.spans().sort_values(KEY).reset_index(drop=True),
                                  spark.spans().sort_values(KEY).reset_index(drop=True),
                                  check_exact=True)
    order = ["source_file", "source_row", "reason"]
    pd.testing.assert_frame_equal(local.quarantine().sort_values(order).reset_index(drop=True),
                                  spark.quarantine().sort_values(order).reset_index(drop=True),
                                  check_exact=True)
    for suffix in ("csv", "parquet"):
        out_a = local.export_facts(tmp_path / f"local.{suffix}")
        out_b = spark.export_facts(tmp_path / f"spark.{suffix}")
        assert out_a.read_bytes() == out_b.read_bytes(), suffix
    assert not any(f["problems"] or f["unchecked"] for f in verify_store(spark.root).files)
    days = {p.parent.name for p in (spark.root / "spans").rglob("*.parquet")}
    assert days == {p.parent.name for p in (local.root / "spans").rglob("*.parquet")}


def test_spark_load_equals_local_load_on_the_demo(tmp_path):
    local, spark = both_loads(tmp_path, DEMO)
    assert local.last_load.rows_loaded > 4000
    assert_same_store(local, spark, tmp_path)
    # the Spark facts engine on the Spark-loaded store: the same facts again
    pd.testing.assert_frame_equal(local.facts(), spark.facts(engine="spark"), check_exact=True)
    load_on_spark(spark, [DEMO])  # loading the same bytes again adds nothing
    assert [f.status for f in spark.last_load.files] == ["already loaded"]


def _tolerance_lines() -> list[bytes]:
    """Base64 ids and enum names (SDK), hex ids and enum numbers (Collector), intValue written
    as a JSON number, an all-zero parent id, an array value, and the loader tests' bad lines."""
    zero_parent = _span("00000000000000c1", {"gen_ai.operation.name": "chat",
                                             "gen_ai.usage.input_tokens": 12,  # a JSON number
                                             "gen_ai.usage.output_tokens": 3},
                        parentSpanId="0000000000000000", status={"code": "STATUS_CODE_ERROR"})
    zero_parent["attributes"].append({"key": "gen_ai.response.finish_reasons", "value": {
        "arrayValue": {"values": [{"stringValue": "stop"}, {"intValue": 7}]}}})
    lines = [*SDK.read_bytes().splitlines(), *COLLECTOR.read_bytes().splitlines(),
             _line(zero_parent).encode()]
    first = lines[0]
    for number in sorted(BAD_LINES):
        text = BAD_LINES[number][0]
        text = first[:300] if text is None else text
        lines.append(text if isinstance(text, bytes) else text.encode())
    return [line for line in lines if line.strip()]


def test_spark_load_keeps_every_tolerance_rule_of_the_local_load(tmp_path):
    path = tmp_path / "tolerance.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(_tolerance_lines()) + b"\n\n")
    local, spark = both_loads(tmp_path, path)
    reasons = local.quarantine()["reason"]
    assert len(reasons) > len(BAD_LINES)  # the bad lines, and the Collector's copies of the SDK's spans
    assert reasons.str.contains("duplicate span_id").sum() > 1
    assert_same_store(local, spark, tmp_path)
    spans = spark.spans().set_index("span_id")
    zero = spans.loc["00000000000000c1"]
    assert pd.isna(zero["parent_id"]) and zero["status"] == "error" and zero["input_tokens"] == 12
    assert json.loads(zero["attributes"])["gen_ai.response.finish_reasons"] == ["stop", 7]
    hex_ids = spans.index.str.fullmatch(r"[0-9a-f]{16}")
    assert hex_ids.all()  # base64 ids decoded to hex, as locally


def test_spark_load_equals_local_load_on_100k_simulated_spans(tmp_path):
    sim = aiscale.simulate(6000, seed=20)
    assert len(sim.spans) >= 100_000
    path = write_otlp(sim.spans, sim.traces, tmp_path / "sim.jsonl")
    local, spark = both_loads(tmp_path, path)
    assert_same_store(local, spark, tmp_path)


def test_spark_load_refuses_what_it_cannot_read(tmp_path):
    other = tmp_path / "runs.csv"
    other.write_text("trace_id,cost\nt,1\n")
    with pytest.raises(ValueError, match="not OTLP JSON"):
        load_on_spark(TraceStore(tmp_path / "s"), [other])
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(json.loads(_line(_span("00000000000000d1"))), indent=2))
    with pytest.raises(ValueError, match="pretty-printed"):
        load_on_spark(TraceStore(tmp_path / "s"), [pretty])


def test_aiscale_load_engine_spark_on_the_command_line(tmp_path, capsys):
    from aiscale.cli.main import main

    path = tmp_path / "one.jsonl"
    path.write_bytes(SDK.read_bytes().rstrip(b"\n") + b"\nthis is not json\n")
    store = tmp_path / "s"
    code = main(["load", str(path), "--store", str(store), "--engine", "spark"])
    out = capsys.readouterr().out
    assert code == 1  # the bad line is quarantined: a partial load
    assert "loaded: 15  quarantined: 1" in out
    local = aiscale.load([path], store=tmp_path / "local")
    pd.testing.assert_frame_equal(local.facts(), TraceStore(store).facts(), check_exact=True)
    assert main(["load", str(path), "--store", str(store), "--engine", "spark", "--format", "langsmith"]) == 2
