"""Inspect AI loader: the inspect-logs SOURCE.md counts, per-variant success equal to each log's own
accuracy, pass^k for k = 1..5 against the samples' own scores, provider token conventions, bad input."""

from __future__ import annotations

import ast
import json
import re
import zipfile
from math import comb
from pathlib import Path

import nbformat
import pandas as pd
import pytest

import aiscale
from aiscale.loaders import detect, inspect_log
from aiscale.loaders._inspect_events import canonical_usage
from aiscale.report.render import report

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "inspect-logs"
EPOCHS5 = REAL / "inspect_ai-log-sets-set2-epochs5"
_LINE = re.compile(r"^- `(?P<file>[^`]+\.(?:eval|json))`: (?P<body>.*)$", re.MULTILINE)


def _literal_after(body: str, label: str):
    text = body[body.index(label) + len(label):].lstrip()
    depth = 0
    for end, char in enumerate(text):
        depth += {"{": 1, "[": 1, "}": -1, "]": -1}.get(char, 0)
        if depth == 0:
            return ast.literal_eval(text[:end + 1])
    raise AssertionError(f"no literal after {label!r}")


def _measured() -> dict[Path, dict]:
    """SOURCE.md's measured logs: file -> status, task, model, epochs, samples, usage, accuracy."""
    out = {}
    for source in sorted(REAL.glob("*/SOURCE.md")):
        for match in _LINE.finditer(source.read_text()):
            body = match["body"]
            scores = _literal_after(body, "scores")
            out[source.parent / match["file"]] = {
                "status": re.search(r"status (\w+)", body)[1], "task": re.search(r"task (\w+)", body)[1],
                "model": re.search(r"model (\S+);", body)[1], "epochs": int(re.search(r"epochs=(\d+)", body)[1]),
                "samples": int(re.search(r"(\d+) sample records", body)[1]),
                "ids": int(re.search(r"= (\d+) ids", body)[1]),
                "usage": _literal_after(body, "stats.model_usage"), "accuracy": scores[0][1]["accuracy"],
            }
    return out


MEASURED = _measured()


def test_source_md_was_read():
    assert len(MEASURED) == 4 and all(path.is_file() for path in MEASURED)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return aiscale.load([REAL], store=tmp_path_factory.mktemp("inspect") / "s")


@pytest.fixture(scope="module")
def facts(store):
    facts = store.facts()
    files = store.spans(columns=["trace_id", "source_file"], priced=False).drop_duplicates("trace_id")
    return facts.merge(files, on="trace_id")


def test_every_log_loads(store):
    summary = store.last_load.summary()
    loaded = summary[summary["status"] == "loaded"]
    # the four measured logs, plus an older-format .eval in the same folder (step events)
    assert set(map(Path, loaded["path"])) >= set(MEASURED) and len(loaded) == 5
    assert set(loaded["format"]) == {"inspect"}
    assert store.last_load.rows_read == store.last_load.rows_loaded + store.last_load.rows_quarantined
    assert store.last_load.rows_quarantined == 0


@pytest.mark.parametrize("path", sorted(MEASURED), ids=lambda p: p.name[-30:])
def test_counts_and_tokens_equal_source_md(facts, path):
    truth, log = MEASURED[path], facts[facts["source_file"] == str(path)]
    assert len(log) == truth["samples"] == truth["ids"] * truth["epochs"]
    assert log["task_id"].nunique() == truth["ids"]
    assert sorted(log["trial"].unique()) == list(range(1, truth["epochs"] + 1))
    assert set(log["variant"]) == {f"{truth['model']} ({truth['task']})"}
    (usage,) = truth["usage"].values()
    assert log["input_tokens"].sum() == usage["input_tokens"]
    assert log["reasoning_tokens"].sum() == usage["reasoning_tokens"]
    # canonical output includes reasoning; input + output is the provider's own total
    assert log["input_tokens"].sum() + log["output_tokens"].sum() == usage["total_tokens"]
    if truth["model"].startswith("google/"):  # SOURCE.md: Gemini's output_tokens excludes reasoning
        assert log["output_tokens"].sum() == usage["output_tokens"] + usage["reasoning_tokens"]
    else:
        assert log["output_tokens"].sum() == usage["output_tokens"]
    assert (log["cost_usd"] > 0).all() and (log["unpriced_llm_calls"] == 0).all()
    assert {json.loads(m)["log_status"] for m in log["metadata"]} == {truth["status"]}


@pytest.mark.parametrize("path", sorted(MEASURED), ids=lambda p: p.name[-30:])
def test_success_rate_is_the_logs_own_accuracy(facts, path):
    log = facts[facts["source_file"] == str(path)]
    rate = log.groupby("variant")["success"].mean()
    assert len(rate) == 1 and rate.iloc[0] == pytest.approx(MEASURED[path]["accuracy"], abs=1e-12)
    assert set(log["score"]) <= {0.0, 1.0}


def test_older_eval_format_with_step_events(facts):
    # not in SOURCE.md: a 2025-02 .eval (inspect_ai 0.3.6x, `step` events, no `completed` times)
    path = REAL / "inspect_ai-tests-epochs1-json" / "2025-02-11T15-18-04-05-00_popularity_mj7khqpMM4GBCfVQozKgzB.eval"
    with zipfile.ZipFile(path) as archive:
        header = json.loads(archive.read("header.json"))
    log = facts[facts["source_file"] == str(path)]
    accuracy = header["results"]["scores"][0]["metrics"]["accuracy"]["value"]
    assert len(log) == header["results"]["total_samples"] == 10
    assert log["success"].mean() == pytest.approx(accuracy, abs=1e-12)
    usage = header["stats"]["model_usage"]["openai/gpt-4o-mini"]
    assert (log["input_tokens"].sum(), log["output_tokens"].sum()) == (usage["input_tokens"], usage["output_tokens"])
    assert (log["latency_s"] > 0).all()


def _sample_scores(path: Path) -> dict[str, list[bool]]:
    """Each sample id's C/I outcomes over its epochs, read straight from the zip."""
    outcomes: dict[str, list[bool]] = {}
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.startswith("samples/"):
                sample = json.loads(archive.read(name))
                outcomes.setdefault(str(sample["id"]), []).append(sample["scores"]["match"]["value"] == "C")
    return outcomes


@pytest.mark.parametrize("path", sorted(EPOCHS5.glob("*.eval")), ids=lambda p: p.name[-30:])
def test_pass_hat_k_for_k_1_to_5(facts, path):
    outcomes = _sample_scores(path)
    truth = [sum(comb(sum(o), k) / comb(len(o), k) for o in outcomes.values()) / len(outcomes)
             for k in range(1, 6)]
    result = aiscale.pass_hat_k(facts[facts["source_file"] == str(path)], k=5, n_boot=200)
    table = result.summary()
    assert table["k"].tolist() == [1, 2, 3, 4, 5]
    assert table["estimate"].tolist() == pytest.approx(truth, abs=1e-12)
    assert table["estimate"].iloc[0] == pytest.approx(MEASURED[path]["accuracy"], abs=1e-12)
    assert (table["lower"] <= table["estimate"]).all() and (table["estimate"] <= table["upper"]).all()


def test_compare_report_renders_on_the_epochs5_logs(tmp_path):
    store = aiscale.load([EPOCHS5], store=tmp_path / "s")
    a, b = "openai/gpt-5 (popularity)", "google/gemini-2.5-pro (popularity)"
    out = report(store, notebook="compare", out=tmp_path / "compare.html", parameters={"a": a, "b": b})
    executed = nbformat.read(out.with_suffix(".ipynb"), as_version=4)
    assert [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"] == []
    page = out.read_text()
    assert "on 10 shared tasks" in page and a in page and b in page
    # the logs' own accuracies (0.6 and 0.7) are the rates the report compares
    assert "10 pp" in page


def test_model_events_are_timed_llm_spans(store):
    spans = store.spans()
    llm = spans[spans["kind"] == "llm"]
    assert llm["start_time"].notna().all() and (llm["end_time"] > llm["start_time"]).all()
    assert set(llm["provider"]) == {"openai", "google"}
    gpt5 = llm[llm["model"] == "gpt-5"]
    assert len(gpt5) == 50 and (gpt5["reasoning_tokens"] <= gpt5["output_tokens"]).all()


def test_model_graded_scorer_calls_sit_under_an_evaluator(store, facts):
    path = REAL / "inspect_ai-tests-epochs1-json" / "2025-05-12T20-28-26-04-00_security-guide.json"
    spans = store.spans()
    spans = spans[spans["source_file"] == str(path)]
    llm = spans[spans["kind"] == "llm"]
    assert llm["parent_id"].value_counts().to_dict() == {"sample": 3, "scorer": 3}
    assert (spans.loc[spans["span_id"] == "scorer", "kind"] == "evaluator").all()
    log = facts[facts["source_file"] == str(path)]
    assert log["n_llm_calls"].tolist() == [2, 2, 2]  # sample model_usage counts the grader too
    # the grader's call is an LLM call (its tokens count: 959 in, 1,033 out in SOURCE.md) but
    # not an iteration of the solver's loop: one generate() per sample
    assert log["iterations"].tolist() == [1, 1, 1]
    assert (log["input_tokens"].sum(), log["output_tokens"].sum()) == (959, 1033)


def test_cancelled_log_keeps_its_samples(facts):
    path = REAL / "inspect_ai-tests-epochs1-json" / "2025-05-12T20-28-13-04-00_popularity.json"
    log = facts[facts["source_file"] == str(path)].sort_values("task_id")
    assert log["success"].tolist() == [True, True, False]


def test_provider_conventions():
    anthropic = {"input_tokens": 10, "input_tokens_cache_read": 1000, "input_tokens_cache_write": 200,
                 "output_tokens": 50, "total_tokens": 1260}
    assert canonical_usage("anthropic", anthropic)["input_tokens"] == 1210
    # an OpenAI-style call whose input already includes the cached part stays as it is
    openai = {"input_tokens": 1200, "input_tokens_cache_read": 1000, "output_tokens": 50, "total_tokens": 1250,
              "reasoning_tokens": 20}
    assert canonical_usage("openai", openai) == {
        "input_tokens": 1200, "output_tokens": 50, "cache_read_tokens": 1000, "cache_write_tokens": None,
        "reasoning_tokens": 20}
    # without a total to decide, the provider's usual reading holds
    assert canonical_usage("google", {"input_tokens": 5, "output_tokens": 1, "reasoning_tokens": 9})[
        "output_tokens"] == 10


def _eval_copy(tmp_path: Path, edit) -> Path:
    source = sorted(EPOCHS5.glob("*.eval"))[0]
    out = tmp_path / source.name
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = edit(name, src.read(name))
            if data is not None:
                dst.writestr(name, data)
    return out


def test_limit_error_and_tool_events(tmp_path):
    def edit(name, data):
        if name == "samples/1_epoch_1.json":
            sample = json.loads(data)
            sample["limit"] = {"type": "message", "limit": 10}
            sample["events"].append({"event": "tool", "function": "bash", "arguments": {"cmd": "ls"},
                                     "timestamp": "2025-09-15T15:04:50-04:00", "working_time": 2.5,
                                     "error": {"type": "timeout", "message": "timed out"}, "id": "t1"})
            return json.dumps(sample)
        if name == "samples/2_epoch_1.json":
            sample = json.loads(data)
            sample["error"] = {"message": "RuntimeError: boom\ntraceback", "traceback": ""}
            return json.dumps(sample)
        return data

    store = aiscale.load([_eval_copy(tmp_path, edit)], store=tmp_path / "s")
    spans = store.spans()
    roots = spans[spans["span_id"] == "sample"].set_index("trace_id")
    limited, failed = roots.loc[roots.index.str.endswith("/1/1")].iloc[0], roots.loc[
        roots.index.str.endswith("/2/1")].iloc[0]
    assert (limited["status"], limited["error_type"]) == ("error", "limit:message")
    assert (failed["status"], failed["error_type"]) == ("error", "RuntimeError: boom")
    tool = spans[spans["kind"] == "tool"].iloc[0]
    assert (tool["tool_name"], tool["tool_arguments"], tool["status"], tool["error_type"]) == (
        "bash", '{"cmd":"ls"}', "error", "timeout")
    assert (tool["end_time"] - tool["start_time"]).total_seconds() == 2.5
    assert len(store.facts()) == 50


def test_sample_without_model_events_uses_its_model_usage(tmp_path):
    def edit(name, data):
        if name.startswith("samples/"):
            sample = json.loads(data)
            sample["events"] = []
            return json.dumps(sample)
        return data

    store = aiscale.load([_eval_copy(tmp_path, edit)], store=tmp_path / "s")
    facts = store.facts()
    truth = next(v for p, v in MEASURED.items() if p.name == sorted(EPOCHS5.glob("*.eval"))[0].name)
    (usage,) = truth["usage"].values()
    assert (facts["n_llm_calls"] == 1).all()
    assert facts["input_tokens"].sum() + facts["output_tokens"].sum() == usage["total_tokens"]


def test_unreadable_sample_is_quarantined_and_the_rest_load(tmp_path):
    path = _eval_copy(tmp_path, lambda name, data: data[:100] if name == "samples/3_epoch_2.json" else data)
    store = aiscale.load([path], store=tmp_path / "s")
    bad = store.quarantine()
    assert len(bad) == 1 and "samples/3_epoch_2.json" in bad["reason"].iloc[0]
    assert bad["source_file"].iloc[0] == str(path)
    assert len(store.facts()) == 49
    summary = store.last_load
    assert summary.rows_read == summary.rows_loaded + summary.rows_quarantined


def test_broken_zip_is_one_quarantined_row(tmp_path):
    path = tmp_path / "cut.eval"
    path.write_bytes(sorted(EPOCHS5.glob("*.eval"))[0].read_bytes()[:5000])
    store = aiscale.load([path], store=tmp_path / "s")
    assert (store.last_load.rows_read, store.last_load.rows_quarantined) == (1, 1)
    assert "zip" in store.quarantine()["reason"].iloc[0]


def test_sniffing():
    for path in MEASURED:
        assert detect(path) is inspect_log
    assert not inspect_log.sniff(Path("x.eval"), b"{}")
    pd.testing.assert_series_equal(pd.Series([inspect_log.score_value(v) for v in ("C", "I", "P", True, "0.25", "x")]),
                                   pd.Series([1.0, 0.0, 0.5, 1.0, 0.25, None]))
