"""Idempotence, atomicity and determinism of the store, checked against one clean load.

- loading the same files twice leaves the store exactly as one load (hypothesis picks the runs);
- an ``aiscale load`` process really killed (SIGKILL) mid-way, then re-run, leaves the store
  exactly as one clean load: same facts, same spans table, same quarantine, same manifest;
- the same inputs give byte-identical facts exports (Parquet and CSV), from one store twice and
  from two stores built separately.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from fuzzkit import WRITERS, runs
from hypothesis import given, settings
from hypothesis import strategies as st

import aiscale

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
TAU2 = REAL / "tau2-bench-results" / "gpt-4.1_airline_default_gpt-4.1_1trials.json"


def snapshot(store: aiscale.TraceStore) -> dict:
    """Everything a reader sees: facts, spans, trace rows, quarantine, manifest (minus load times)."""
    manifest = {digest: {k: v for k, v in entry.items() if k not in ("loaded_at",)}
                for digest, entry in store.manifest()["files"].items()}
    quarantine = store.quarantine()
    return {"facts": store.facts(),
            "spans": store.spans().sort_values(["trace_id", "span_id"]).reset_index(drop=True),
            "traces": store.traces(),
            "quarantine": quarantine.sort_values(list(quarantine.columns)).reset_index(drop=True),
            "manifest": manifest}


def assert_same(a: dict, b: dict) -> None:
    for key in ("facts", "spans", "traces", "quarantine"):
        pd.testing.assert_frame_equal(a[key], b[key], check_dtype=True, obj=key)
    assert a["manifest"] == b["manifest"]


@settings(max_examples=max(2, settings().max_examples // 30))
@given(run=runs, fmt=st.sampled_from(sorted(WRITERS)))
def test_fuzz_loading_twice_is_loading_once(run, fmt):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = WRITERS[fmt](run, folder).files
        store = aiscale.load(files, store=folder / "store")
        once = snapshot(store)
        again = store.load(files)
        assert {f.status for f in again.files} == {"already loaded"} and again.rows_read == 0
        assert_same(snapshot(store), once)


def make_inputs(folder: Path, copies: int) -> list[Path]:
    """``copies`` real tau2 files, each with other bytes (a trailing newline run) and name."""
    folder.mkdir(parents=True, exist_ok=True)
    data = TAU2.read_bytes()
    paths = []
    for n in range(copies):
        path = folder / f"gpt-4.1_copy{n:03d}.json"
        path.write_bytes(data + b"\n" * (n + 1))
        paths.append(path)
    return paths


def run_load(inputs: Path, store: Path, *, kill_after_files: int | None = None) -> int | None:
    """Run ``aiscale load`` in a subprocess; with ``kill_after_files``, SIGKILL it mid-way."""
    command = [sys.executable, "-m", "aiscale.cli", "load", str(inputs), "--store", str(store)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    if kill_after_files is None:
        return process.wait(timeout=600)
    manifest = store / "manifest.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if manifest.exists() and len(json.loads(manifest.read_text() or "{}").get("files", {})) >= kill_after_files:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the load finished before it could be killed: use more input"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    return None


def test_fuzz_killed_load_then_rerun_equals_one_clean_load(tmp_path):
    inputs = tmp_path / "inputs"
    make_inputs(inputs, 24)
    clean = tmp_path / "clean"
    assert run_load(inputs, clean) == 0
    killed = tmp_path / "killed"
    run_load(inputs, killed, kill_after_files=3)
    partial = aiscale.TraceStore(killed)
    committed = len(partial.manifest()["files"])
    assert 3 <= committed < 24  # really killed mid-way
    # what a reader sees of the interrupted store is exactly the committed files
    assert partial.sql("SELECT count(DISTINCT source_file) AS n FROM spans").n.item() == committed
    assert run_load(inputs, killed) == 0
    assert not list(killed.glob(".load-*"))  # staging folders of the killed run are cleaned
    assert_same(snapshot(aiscale.TraceStore(killed)), snapshot(aiscale.TraceStore(clean)))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fuzz_same_inputs_give_byte_identical_facts(tmp_path):
    inputs = make_inputs(tmp_path / "inputs", 2) + [REAL / "tau-bench-historical" / "gpt-4o-airline.json",
                                                   REAL / "swebench-bash-only-leaderboard" / "leaderboards.json"]
    first = aiscale.load(inputs, store=tmp_path / "a")
    second = aiscale.load(list(reversed(inputs)), store=tmp_path / "b")  # other order, other store
    digests = set()
    for store, tag in ((first, "a1"), (first, "a2"), (second, "b")):
        for suffix in (".parquet", ".csv"):
            out = store.export_facts(tmp_path / f"facts-{tag}{suffix}")
            digests.add((suffix, sha(out)))
    assert len(digests) == 2, digests  # one digest per file type
    facts = pd.read_parquet(tmp_path / "facts-a1.parquet")
    assert len(facts) > 1000 and facts["trace_id"].is_unique
