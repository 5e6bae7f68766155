"""Store checks at load time: orphan spans, repeated spans and colliding traces, kept current
from a trace index so that a load reads only its new parts (and old parts of traces it touches)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from spanbuilder import agent_trace, daily_traces, span

import aiscale
from aiscale import schema
from aiscale.store import loading
from aiscale.store.checks import count_orphans
from aiscale.store.load_summary import LoadSummary
from aiscale.store.verify import drop_damaged


def write_spans(path, frame):
    pq.write_table(schema.conform(frame, "spans"), path)
    return path


def truth(frames: list[pd.DataFrame]) -> tuple[int, bool]:
    """Orphans and whether any span came twice, from the frames written (not from the store)."""
    spans = pd.concat(frames, ignore_index=True)
    repeats = spans.duplicated(["trace_id", "span_id"]).any()
    distinct = spans.drop_duplicates(["trace_id", "span_id"])
    known = set(zip(distinct.trace_id, distinct.span_id, strict=True))
    has_parent = distinct.parent_id.notna()
    orphans = sum((t, p) not in known for t, p in zip(distinct.trace_id[has_parent],
                                                       distinct.parent_id[has_parent], strict=True))
    return orphans, bool(repeats)


def random_files(rng, n_traces=40, n_files=4):
    """Spans of random trees spread over files; some spans in two files, some parents never loaded."""
    files = [[] for _ in range(n_files)]
    for t in range(n_traces):
        n = int(rng.integers(1, 7))
        for s in range(n):
            parent = None if s == 0 else (f"s{rng.integers(0, s)}" if rng.random() > 0.1 else "gone")
            row = span(f"t{t}", f"s{s}", parent, "tool", s, s + 1, tool_name="x")
            homes = rng.choice(n_files, size=2 if rng.random() < 0.1 else 1, replace=False)
            for home in homes:
                files[home].append(row)
    return [pd.DataFrame(rows) for rows in files if rows]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_counts_equal_the_full_reread_load_after_load(tmp_path, seed):
    rng = np.random.default_rng(seed)
    frames = random_files(rng)
    store = aiscale.TraceStore(tmp_path / "s")
    for number, frame in enumerate(frames):
        store.load(write_spans(tmp_path / f"f{number}.parquet", frame))
        orphans, repeats = truth(frames[:number + 1])
        assert store.last_load.orphan_spans == orphans == count_orphans(store.root, store.manifest())
        assert store.spans_may_repeat == repeats


def test_parent_arriving_in_a_later_load_ends_the_orphan(tmp_path):
    child = pd.DataFrame([span("t1", "c", "p", "tool", 1, 2, tool_name="x"),
                          span("t2", "c", "p", "tool", 1, 2, tool_name="x")])
    parent = pd.DataFrame([span("t1", "p", None, "agent", 0, 3)])
    store = aiscale.load(write_spans(tmp_path / "child.parquet", child), store=tmp_path / "s")
    assert store.last_load.orphan_spans == 2
    store.load(write_spans(tmp_path / "parent.parquet", parent))
    assert store.last_load.orphan_spans == 1  # t2's parent is still missing
    assert "spans whose parent is not in the store: 1" in str(store.last_load)


def test_the_same_spans_again_flag_repeats_and_count_once(tmp_path):
    frame = pd.DataFrame([span("t1", "c", "p", "tool", 1, 2, tool_name="x")])
    store = aiscale.load(write_spans(tmp_path / "a.parquet", frame), store=tmp_path / "s")
    store.load(write_spans(tmp_path / "b.parquet", frame.assign(name="renamed")))
    assert store.spans_may_repeat and store.last_load.orphan_spans == 1


def checked_load(store, path):
    """What ``store.load`` does for one file up to its checks (plan, stage, commit with the
    checks), without the load summary's count of the store's contents, which reads every span."""
    jobs = loading.plan(store.root, [path], {path}, LoadSummary(files=[]))
    with loading.open_checks(store.root) as checks:
        for _, record, _ in loading.stage_all(jobs, format=None):
            record.pop("examples"), record.pop("added")  # the summary's counts: not the manifest's
            loading.commit(store.root, record.pop("staging"), record.pop("digest"), record, checks)
        return store.manifest()["orphan_spans"], checks.colliding()


def test_a_load_of_new_traces_reads_no_old_span_part(tmp_path):
    store = aiscale.load(write_spans(tmp_path / "a.parquet", daily_traces(3, "a")), store=tmp_path / "s")
    old = store.parts("spans")
    for part in old:  # any read of an old span part would now fail
        open(part, "wb").write(b"not parquet")
    new = pd.concat([daily_traces(2, "b"), pd.DataFrame([span("b9", "x", "nowhere", "tool", 0, 1)])])
    assert checked_load(store, write_spans(tmp_path / "b.parquet", new)) == (1, [])
    assert sum(e["rows_loaded"] for e in store.manifest()["files"].values()) == 27 + 19


def test_the_whole_load_with_its_summary_reads_no_old_span_part(tmp_path):
    store = aiscale.load(write_spans(tmp_path / "a.parquet", daily_traces(3, "a")), store=tmp_path / "s")
    for part in store.parts("spans"):  # any read of an old span part would now fail
        open(part, "wb").write(b"not parquet")
    summary = store.load(write_spans(tmp_path / "b.parquet", daily_traces(2, "b")))
    added = pd.read_parquet(tmp_path / "b.parquet")
    assert summary.contents.traces == added["trace_id"].nunique() == 2  # what this load added
    assert summary.contents.llm_calls == int((added["kind"] == "llm").sum())


def test_a_load_touching_an_old_trace_reads_only_the_part_holding_it(tmp_path):
    store = aiscale.load(write_spans(tmp_path / "a.parquet", daily_traces(3, "a")), store=tmp_path / "s")
    old = store.parts("spans")
    assert len(old) == 3  # one part a day
    holding = [p for p in old if pq.read_table(p, columns=["trace_id"]).column(0)[0].as_py() == "a1"]
    for part in set(old) - set(holding):
        open(part, "wb").write(b"not parquet")
    late = pd.DataFrame([span("a1", "late", "root", "tool", 30, 31, tool_name="x"),
                         span("a1", "late2", "missing", "tool", 30, 31, tool_name="x")])
    assert checked_load(store, write_spans(tmp_path / "b.parquet", late)) == (1, [])


def test_a_store_without_the_index_gets_it_at_its_next_load(tmp_path):
    child = pd.DataFrame([span("t1", "c", "p", "tool", 1, 2, tool_name="x")])
    store = aiscale.load(write_spans(tmp_path / "a.parquet", child), store=tmp_path / "s")
    manifest = store.manifest()  # as an older aiscale wrote it: no index, no stored count
    manifest.pop("orphan_spans")
    for entry in manifest["files"].values():
        entry.pop("index")
    store.write_manifest(manifest)
    for index in (store.root / "index").glob("*.parquet"):
        index.unlink()
    store.load(write_spans(tmp_path / "b.parquet", pd.DataFrame([span("t1", "p", None, "agent", 0, 3)])))
    assert store.last_load.orphan_spans == 0
    assert all((store.root / e["index"]).is_file() for e in store.manifest()["files"].values())


def test_a_file_entered_without_an_index_is_indexed_and_counted(tmp_path):
    parent = pd.DataFrame([span("t1", "p", None, "agent", 0, 3)])
    store = aiscale.load(write_spans(tmp_path / "p.parquet", parent), store=tmp_path / "s")
    other = aiscale.load(write_spans(tmp_path / "c.parquet", pd.DataFrame(
        [span("t1", "c", "gone", "tool", 1, 2, tool_name="x")])), store=tmp_path / "other")
    manifest = store.manifest()  # another writer adds a file (its parts, an entry without index)
    for digest, entry in other.manifest()["files"].items():
        for name in entry["parts"]["spans"]:
            (store.root / "spans" / name).parent.mkdir(parents=True, exist_ok=True)
            (other.root / "spans" / name).rename(store.root / "spans" / name)
        manifest["files"][digest] = {k: v for k, v in entry.items() if k != "index"}
    store.write_manifest(manifest)
    assert store.manifest()["orphan_spans"] == 0  # the count does not know the new file yet
    store.load([])
    assert store.last_load.orphan_spans == 1


def test_dropping_a_damaged_file_counts_orphans_again(tmp_path):
    parent = pd.DataFrame([span("t1", "p", None, "agent", 0, 3)])
    child = pd.DataFrame([span("t1", "c", "p", "tool", 1, 2, tool_name="x")])
    store = aiscale.load(write_spans(tmp_path / "p.parquet", parent), store=tmp_path / "s")
    store.load(write_spans(tmp_path / "c.parquet", child))
    assert store.last_load.orphan_spans == 0
    parent_entry = next(e for e in store.manifest()["files"].values() if e["path"].endswith("p.parquet"))
    (store.root / "spans" / parent_entry["parts"]["spans"][0]).write_bytes(b"damaged")
    assert drop_damaged(store.root) == [str(tmp_path / "p.parquet")]
    store.load([])
    assert store.last_load.orphan_spans == 1  # the child lost its parent
    assert json.loads((store.root / "manifest.json").read_text())["orphan_spans"] == 1


def test_a_trace_claimed_by_two_sources_collides_in_later_loads_too(tmp_path):
    trace = "0af7651916cd43dd8448eb211c80319c"
    store = aiscale.load(write_spans(tmp_path / "a.parquet", agent_trace(trace)), store=tmp_path / "s")
    assert store.last_load.colliding_traces == []
    otlp = {"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": trace, "spanId": "b7ad6b7169203331", "name": "call",
         "startTimeUnixNano": "1735689600000000000", "endTimeUnixNano": "1735689601000000000"}]}]}]}
    (tmp_path / "b.jsonl").write_text(json.dumps(otlp) + "\n")
    store.load([tmp_path / "b.jsonl", write_spans(tmp_path / "c.parquet", agent_trace("t8"))])
    assert store.last_load.colliding_traces == [trace]
    store.load(write_spans(tmp_path / "d.parquet", agent_trace("t9")))
    assert store.last_load.colliding_traces == [trace]  # still named: the store still holds both


def test_a_missing_part_of_a_touched_trace_is_named_with_the_fix(tmp_path):
    store = aiscale.load(write_spans(tmp_path / "a.parquet", daily_traces(2, "a")), store=tmp_path / "s")
    for part in store.parts("spans"):
        Path(part).unlink()
    late = pd.DataFrame([span("a1", "late", "root", "tool", 30, 31, tool_name="x")])
    with pytest.raises(FileNotFoundError, match=r"part\(s\) named by the manifest are missing.*aiscale verify"):
        store.load(write_spans(tmp_path / "b.parquet", late))


def test_the_load_summary_counts_the_fact_rows_a_load_added(tmp_path):
    runs = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "swe-agent-v0-traj"
    store = aiscale.load(runs, store=tmp_path / "s")  # two instances, per-instance rows only
    assert store.last_load.contents.fact_rows == 2 and store.last_load.contents.traces == 0
