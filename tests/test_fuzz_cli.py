"""Clear errors: every CLI error names the file, the line or field, the rule and a fix; exit codes.

Exit codes (README): 0 ok, 1 partial load (some rows quarantined, the rest loaded), 2 usage
error or unreadable input. The CLI is run as a user runs it (a subprocess of ``python -m
aiscale.cli``), so a bare traceback would show up in stderr and fail the check.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fuzzkit import Call, Trace, write_canonical, write_phoenix

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
TAU = REAL / "tau-bench-historical" / "gpt-4o-airline.json"


def aiscale_cli(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "aiscale.cli", *map(str, args)],
                            capture_output=True, text=True, timeout=300)
    assert "Traceback (most recent call last)" not in result.stderr, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli")
    run = [Trace("a", True, (Call(10, 2, 0.1, "search", '{"q": 1}'),)),
           Trace("b", False, (Call(5, 1, 0.0, None, None),))]
    good = write_canonical(run, folder).files[0]
    (folder / "p").mkdir()
    phoenix = write_phoenix(run, folder / "p")
    lines = phoenix.files[0].read_text().splitlines()
    lines.insert(2, '{"context.span_id": "x", "name": ')  # truncated line: line 3
    bad = json.loads(lines[1])
    bad["attributes.llm.token_count.prompt"] = -3  # negative tokens: line 2
    lines[1] = json.dumps(bad)
    partial = folder / "partial.jsonl"
    partial.write_text("\n".join(lines) + "\n")
    truncated = folder / "gpt-4o-airline.json"
    truncated.write_bytes(TAU.read_bytes()[:200_000])
    unknown = folder / "notes.txt"
    unknown.write_text("just some notes\n")
    empty = folder / "empty.jsonl"
    empty.write_text("")
    binary = folder / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 10)
    return {"good": good, "partial": partial, "truncated": truncated, "unknown": unknown,
            "empty": empty, "binary": binary, "folder": folder}


@pytest.fixture(scope="module")
def loaded_store(inputs) -> Path:
    store = inputs["folder"] / "store"
    result = aiscale_cli("load", inputs["good"], "--store", store)
    assert result.returncode == 0, result.stderr
    assert "quarantined: 0" in result.stdout
    return store


def test_fuzz_clean_load_exits_0(loaded_store):
    assert (loaded_store / "manifest.json").exists()


def test_fuzz_partial_load_exits_1_naming_file_line_and_rule(inputs, tmp_path):
    result = aiscale_cli("load", inputs["partial"], "--store", tmp_path / "s")
    assert result.returncode == 1
    assert f"{inputs['partial']}:2: input_tokens is negative (quarantined)" in result.stdout
    assert f"{inputs['partial']}:3: invalid JSON" in result.stdout
    assert "2 rows quarantined: see" in result.stderr and str(tmp_path / "s" / "quarantine") in result.stderr


def test_fuzz_truncated_document_exits_1_naming_line_and_column(inputs, tmp_path):
    result = aiscale_cli("load", inputs["truncated"], "--store", tmp_path / "s")
    assert result.returncode == 1
    assert f"{inputs['truncated']}: invalid JSON (truncated or edited?)" in result.stdout
    assert " at line " in result.stdout and " column " in result.stdout


@pytest.mark.parametrize("case, needles", [
    ("unknown", ["notes.txt", "no loader recognises this file", "Formats tried", "--format NAME"]),
    ("empty", ["empty.jsonl", "the file is empty"]),
    ("binary", ["blob.bin", "no loader recognises this file", "--format NAME"]),
    ("missing", ["missing.jsonl", "no such file or folder"]),
])
def test_fuzz_unreadable_input_exits_2_with_file_and_fix(inputs, tmp_path, case, needles):
    path = inputs["folder"] / "missing.jsonl" if case == "missing" else inputs[case]
    result = aiscale_cli("load", path, "--store", tmp_path / "s")
    assert result.returncode == 2
    assert result.stderr.startswith("aiscale: error: ")
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


@pytest.mark.parametrize("args, needles", [
    (["load", "{good}", "--store", "{tmp}/s", "--format", "otel"],
     ["`format` must be one of", "'otel' was passed", "otlp"]),
    (["facts", "--store", "{tmp}/nowhere", "-o", "{tmp}/f.csv"],
     ["nowhere: no trace store here", "aiscale load PATH --store"]),
    (["facts", "--store", "{store}", "-o", "{tmp}/facts.xlsx"],
     ["must end in .csv or .parquet", "'facts.xlsx' was passed"]),
    (["load", "{good}", "--store", "{good}"], ["spans.parquet: the store must be a folder"]),
    (["report", "--store", "{store}", "-p", "1x=3"], ["KEY=VALUE", "'1x=3' was passed"]),
    (["load"], ["the following arguments are required", "aiscale load --help"]),
    (["frobnicate"], ["invalid choice", "--help"]),
])
def test_fuzz_usage_errors_exit_2_and_say_what_to_do(inputs, loaded_store, tmp_path, args, needles):
    store = loaded_store
    filled = [a.format(good=inputs["good"], tmp=tmp_path, store=store) for a in args]
    result = aiscale_cli(*filled)
    assert result.returncode == 2
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


def test_fuzz_corrupt_store_manifest_is_named_with_a_fix(inputs, tmp_path):
    store = tmp_path / "s"
    assert aiscale_cli("load", inputs["good"], "--store", store).returncode == 0
    (store / "manifest.json").write_text('{"version": 1, "files": {')  # hand-edited, cut short
    result = aiscale_cli("facts", "--store", store, "-o", tmp_path / "f.csv")
    assert result.returncode == 2
    assert "manifest.json" in result.stderr and "not valid JSON" in result.stderr
    assert "load the files again" in result.stderr
