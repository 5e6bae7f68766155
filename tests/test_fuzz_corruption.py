"""Corrupted real files: truncated at random offsets, lines dropped or duplicated, fields swapped.

Every file is copied into tmp_path first (the shared data is never touched). Every load must
finish without an exception and keep rows read = loaded + quarantined. Where the intact
part can be computed independently (records that end before the cut, lines before the
cut), the store must hold exactly those, and the damage must be quarantined and reported.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from fuzzkit import untagged
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fuzz_roundtrip import check_accounting

import aiscale

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TAU = REAL / "tau-bench-historical" / "gpt-4o-airline.json"
TAU2 = REAL / "tau2-bench-results" / "gpt-4.1_airline_default_gpt-4.1_1trials.json"
BOARD = REAL / "swebench-bash-only-leaderboard" / "leaderboards.json"
MINI = REAL / "mini-swe-agent-gemini3-verified" / "trajs" / "psf__requests-2931" / "psf__requests-2931.traj.json"
SWEAGENT = next((REAL / "swe-agent-v0-traj").rglob("pydicom__pydicom-1458.traj"))
LINE_FILES = {"otlp": FIXTURES / "otel_sdk_genai.jsonl",
              "phoenix": FIXTURES / "platforms" / "phoenix_spans.jsonl",
              "langsmith": FIXTURES / "platforms" / "langsmith_sdk_runs.jsonl"}
DOCUMENTS = {"tau-bench": TAU, "tau2-bench": TAU2, "swebench-leaderboard": BOARD,
             "mini-swe-agent": MINI, "swe-agent-v0": SWEAGENT}
EXAMPLES = max(2, settings().max_examples // 100)


def element_ends(text: str, start: int) -> list[int]:
    """End offsets of the elements of the JSON array whose ``[`` is at ``start`` (test-side parser)."""
    decoder, ends, pos = json.JSONDecoder(), [], start + 1
    while True:
        pos = re.compile(r"[\s,]*").match(text, pos).end()
        if text[pos] == "]":
            return ends
        _, pos = decoder.raw_decode(text, pos)
        ends.append(pos)


def load_copy(data: bytes, name: str, fmt: str, folder: Path) -> aiscale.TraceStore:
    path = folder / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    store = aiscale.load([path], store=folder / "store", format=fmt)
    check_accounting(store)
    return store


def trace_ids(store: aiscale.TraceStore) -> set[str]:
    rows = store.sql("SELECT DISTINCT trace_id FROM spans UNION SELECT trace_id FROM facts_raw")
    return set(rows["trace_id"].map(untagged))


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict[str, aiscale.TraceStore]:
    """One clean load per real file, the reference for the damaged ones."""
    stores = {}
    for fmt, path in {**DOCUMENTS, **LINE_FILES}.items():
        folder = tmp_path_factory.mktemp(fmt)
        stores[fmt] = load_copy(path.read_bytes(), path.name, fmt, folder)
        assert stores[fmt].last_load.rows_quarantined == 0, fmt
    return stores


def span_counts(store: aiscale.TraceStore) -> dict[str, int]:
    rows = store.sql("SELECT trace_id, count(*) AS n FROM spans GROUP BY trace_id")
    return dict(zip(rows["trace_id"].map(untagged), rows["n"], strict=True))


@pytest.mark.parametrize("fmt, start_marker", [("tau-bench", "["), ("tau2-bench", '"simulations": [')])
def test_fuzz_truncated_list_keeps_every_complete_record(clean, fmt, start_marker):
    """Records that end before the cut load with all their spans; the cut is quarantined."""
    data = DOCUMENTS[fmt].read_bytes()
    text = data.decode()
    ends = element_ends(text, text.index(start_marker) + len(start_marker) - 1)
    reference = span_counts(clean[fmt])
    ordered = list(dict.fromkeys(clean[fmt].sql("SELECT trace_id FROM spans ORDER BY source_row")["trace_id"].map(untagged)))

    @settings(max_examples=EXAMPLES)
    @given(cut=st.integers(1, len(data) - 2))
    def check(cut):
        with tempfile.TemporaryDirectory() as tmp:
            store = load_copy(data[:cut], DOCUMENTS[fmt].name, fmt, Path(tmp))
            complete = sum(end <= cut for end in ends)  # ASCII file: byte and character offsets agree
            assert span_counts(store) == {t: reference[t] for t in ordered[:complete]}
            assert store.last_load.rows_quarantined >= 1
            assert "truncated" in " ".join(store.quarantine()["reason"]) or complete == 0

    assert text.isascii()
    check()


@pytest.mark.parametrize("fmt", sorted(DOCUMENTS))
@pytest.mark.parametrize("damage", ["truncate", "drop_line", "duplicate_line", "swap_fields"])
def test_fuzz_damaged_documents_never_raise_and_account_for_every_row(clean, fmt, damage):
    data = DOCUMENTS[fmt].read_bytes()
    lines = data.splitlines(keepends=True)
    reference_ids = trace_ids(clean[fmt])

    @settings(max_examples=EXAMPLES)
    @given(where=st.integers(0, 10**9), other=st.integers(0, 10**9))
    def check(where, other):
        damaged = damage_bytes(data, lines, damage, where, other)
        with tempfile.TemporaryDirectory() as tmp:
            store = load_copy(damaged, DOCUMENTS[fmt].name, fmt, Path(tmp))
            if not valid_json(damaged):
                assert store.last_load.rows_quarantined >= 1
                assert str(Path(tmp) / "in") in store.quarantine()["source_file"].iloc[0]
            if damage in ("truncate", "drop_line"):
                assert trace_ids(store) <= reference_ids

    check()


def valid_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def damage_bytes(data: bytes, lines: list[bytes], damage: str, where: int, other: int) -> bytes:
    if damage == "truncate":
        return data[: 1 + where % (len(data) - 1)]
    i = where % len(lines)
    if damage == "drop_line":
        return b"".join(lines[:i] + lines[i + 1:])
    if damage == "duplicate_line":
        return b"".join(lines[: i + 1] + lines[i:])
    return swap_two_fields(data, where, other)


def swap_two_fields(data: bytes, where: int, other: int) -> bytes:
    """Swap the values of two keys of one object somewhere in the document."""
    document = json.loads(data)
    objects = []

    def walk(value, depth=0):
        if isinstance(value, dict) and len(value) >= 2:
            objects.append(value)
        if depth < 6:
            for child in value.values() if isinstance(value, dict) else value if isinstance(value, list) else []:
                walk(child, depth + 1)
    walk(document)
    target = objects[where % len(objects)]
    keys = sorted(target)
    a, b = keys[where % len(keys)], keys[other % len(keys)]
    target[a], target[b] = target[b], target[a]
    return json.dumps(document, indent=2).encode()


@pytest.mark.parametrize("fmt", sorted(LINE_FILES))
@pytest.mark.parametrize("damage", ["truncate", "drop_line", "duplicate_line", "swap_fields"])
def test_fuzz_damaged_json_lines_keep_the_intact_lines(clean, fmt, damage):
    data = LINE_FILES[fmt].read_bytes()
    lines = data.splitlines(keepends=True)
    clean_rows = clean[fmt].last_load.rows_read

    @settings(max_examples=EXAMPLES)
    @given(where=st.integers(0, 10**9), other=st.integers(0, 10**9))
    def check(where, other):
        i = where % len(lines)
        if damage == "swap_fields":
            record = json.loads(lines[i])
            keys = sorted(record)
            a, b = keys[where % len(keys)], keys[other % len(keys)]
            record[a], record[b] = record[b], record[a]
            damaged = b"".join(lines[:i] + [json.dumps(record).encode() + b"\n"] + lines[i + 1:])
        else:
            damaged = damage_bytes(data, lines, damage, where, other)
        with tempfile.TemporaryDirectory() as tmp:
            store = load_copy(damaged, LINE_FILES[fmt].name, fmt, Path(tmp))
            summary = store.last_load
            if damage == "truncate":
                cut = 1 + where % (len(data) - 1)
                partial = data[data.rfind(b"\n", 0, cut) + 1: cut]
                assert summary.rows_quarantined == (0 if not partial.strip() or valid_json(partial) else 1)
            elif damage == "drop_line" and fmt != "otlp":  # one record a line
                assert (summary.rows_read, summary.rows_quarantined) == (clean_rows - 1, 0)
            elif damage == "duplicate_line" and fmt != "otlp":
                assert (summary.rows_read, summary.rows_quarantined) == (clean_rows + 1, 1)
                assert "duplicate" in store.quarantine()["reason"].iloc[0]
            elif damage == "duplicate_line":  # a request line: each of its spans is a duplicate
                assert summary.rows_quarantined == summary.rows_read - clean_rows > 0

    check()


def test_fuzz_real_folder_with_damaged_copies_loads_the_rest(tmp_path):
    """A folder mixing intact and damaged real files: intact ones load in full, both reported."""
    folder = tmp_path / "exports"
    shutil.copytree(REAL / "mini-swe-agent-gemini3-verified", folder / "mini")
    victim = sorted((folder / "mini" / "trajs").rglob("*.traj.json"))[0]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    store = aiscale.load([folder], store=tmp_path / "store")
    summary = store.last_load
    check_accounting(store)
    damaged = [f for f in summary.files if f.path == str(victim)]
    assert damaged[0].rows_quarantined == 1 and damaged[0].rows_loaded == 0
    intact = [f for f in summary.files if f.path != str(victim) and f.path.endswith(".traj.json")]
    assert len(intact) >= 10 and all(f.rows_quarantined == 0 and f.rows_loaded > 0 for f in intact)
    assert f"{victim}: invalid JSON" in str(summary)
