"""The trace store: loading, idempotence, quarantine accounting, atomicity, errors."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest
from spanbuilder import agent_trace, daily_traces, shifted, span

import aiscale
from aiscale import schema
from aiscale.cli.main import main as cli_main
from aiscale.loaders import UnknownFormatError
from aiscale.store import loading


def write_spans(path, frame):
    pq.write_table(schema.conform(frame, "spans"), path)
    return path


@pytest.fixture
def spans_file(tmp_path):
    return write_spans(tmp_path / "spans.parquet", agent_trace())


def test_load_then_facts_and_reload_adds_nothing(tmp_path, spans_file):
    store = aiscale.load([spans_file], store=tmp_path / "store")
    assert store.last_load.rows_read == 9 == store.last_load.rows_loaded
    first = store.facts()
    assert len(first) == 1 and first.iterations.iloc[0] == 3
    copy = write_spans(tmp_path / "copy.parquet", agent_trace())  # same bytes, other name
    again = store.load([spans_file, copy])
    assert [f.status for f in again.files] == ["already loaded", "already loaded"]
    pd.testing.assert_frame_equal(store.facts(), first)
    assert len(store.spans()) == 9


def test_same_spans_in_two_files_are_counted_once(tmp_path):
    frame = agent_trace()
    a = write_spans(tmp_path / "a.parquet", frame)
    b = write_spans(tmp_path / "b.parquet", frame.assign(name="renamed"))  # other bytes, same ids
    store = aiscale.load([a], store=tmp_path / "s")
    assert not store.spans_may_repeat  # one file: queries need not look for repeated spans
    store.load([b])
    assert store.spans_may_repeat
    assert sum(f["rows_loaded"] for f in store.manifest()["files"].values()) == 18
    assert len(store.spans()) == 9
    assert store.facts().input_tokens.iloc[0] == 650


def test_bad_rows_are_quarantined_with_file_row_and_rule(tmp_path):
    rows = agent_trace().to_dict("records")
    rows += [
        span("t1", None, "root", "llm", 1, 2, row=20),
        span("t1", "late", "root", "llm", 5, 4, row=21),
        span("t1", "neg", "root", "llm", 1, 2, input_tokens=-5, row=22),
        span("t1", "l1", "root", "llm", 1, 2, row=23),  # duplicate span id
        span("t1", "weird", "root", "banana", 1, 2, row=24),
    ]
    path = write_spans(tmp_path / "bad.parquet", pd.DataFrame(rows))
    store = aiscale.load([path], store=tmp_path / "s")
    summary = store.last_load
    assert summary.rows_read == 14
    assert summary.rows_loaded == 9 and summary.rows_quarantined == 5
    assert summary.rows_read == summary.rows_loaded + summary.rows_quarantined
    quarantine = store.quarantine().set_index("source_row")  # rows 10-14 of the file
    assert quarantine.loc[10, "reason"] == "missing span_id"
    assert quarantine.loc[11, "reason"] == "end_time before start_time"
    assert quarantine.loc[12, "reason"] == "input_tokens is negative"
    assert "duplicate span_id" in quarantine.loc[13, "reason"]
    assert quarantine.loc[14, "reason"].startswith("kind is not one of")
    assert (quarantine.source_file == str(path)).all()
    assert "bad.parquet:10: missing span_id (quarantined)" in str(summary)


def test_orphan_spans_are_kept_and_reported(tmp_path):
    frame = pd.DataFrame([span("t9", "x", "missing-parent", "llm", 0, 1, input_tokens=3)])
    store = aiscale.load([write_spans(tmp_path / "o.parquet", frame)], store=tmp_path / "s")
    assert store.last_load.orphan_spans == 1
    assert store.facts().input_tokens.iloc[0] == 3


def test_unknown_and_empty_files_get_clear_errors(tmp_path):
    unknown = tmp_path / "notes.txt"
    unknown.write_text("hello\n")
    with pytest.raises(UnknownFormatError, match=r"notes.txt: no loader recognises this file. Formats tried: .*canonical"):
        aiscale.load([unknown], store=tmp_path / "s")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(UnknownFormatError, match="empty.jsonl: the file is empty"):
        aiscale.load([empty], store=tmp_path / "s")


def test_folder_skips_unrecognised_files_and_lists_them(tmp_path, spans_file):
    (tmp_path / "README.md").write_text("# notes\n")
    store = aiscale.load([tmp_path], store=tmp_path / ".store")
    statuses = {f.path.split("/")[-1]: f.status for f in store.last_load.files}
    assert statuses == {"README.md": "skipped", "spans.parquet": "loaded"}


def test_interrupted_load_leaves_store_as_it_was(tmp_path, spans_file):
    store = aiscale.load([spans_file], store=tmp_path / "s")
    before = store.facts()
    # what a load killed mid-way leaves: a staging folder and a part the manifest does not name
    (store.root / ".load-deadbeef").mkdir()
    write_spans(store.root / ".load-deadbeef" / "x.parquet", agent_trace("t-partial"))
    write_spans(store.root / "spans" / "ffffffffffffffff-00000.parquet", agent_trace("t-partial"))
    pd.testing.assert_frame_equal(store.facts(), before)
    store.load([])
    assert not (store.root / ".load-deadbeef").exists()


def test_cli_load_and_facts_exit_codes(tmp_path, spans_file, capsys):
    store_dir = tmp_path / "s"
    assert cli_main(["load", str(spans_file), "--store", str(store_dir)]) == 0
    out = capsys.readouterr().out
    assert "rows read: 9  loaded: 9  quarantined: 0" in out and "gpt-4o (3 calls)" in out
    assert cli_main(["facts", "--store", str(store_dir), "-o", str(tmp_path / "f.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "f.csv")) == 1
    assert cli_main(["facts", "--store", str(tmp_path / "nowhere"), "-o", str(tmp_path / "f.csv")]) == 2
    assert "no trace store here" in capsys.readouterr().err
    bad = write_spans(tmp_path / "bad.parquet", pd.DataFrame([span("t", None, None, "llm", 0, 1)]))
    assert cli_main(["load", str(bad), "--store", str(store_dir)]) == 1
    assert cli_main(["load", str(tmp_path / "missing.jsonl"), "--store", str(store_dir)]) == 2
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["load"])
    assert exit_info.value.code == 2


def test_spans_are_partitioned_by_day(tmp_path):
    frame = agent_trace("early")
    late = shifted(agent_trace("late"), days=3)
    path = write_spans(tmp_path / "two-days.parquet", pd.concat([frame, late]))
    store = aiscale.load([path], store=tmp_path / "s")
    days = sorted(p.parent.name for p in (store.root / "spans").rglob("*.parquet"))
    assert days == ["day=2025-03-01", "day=2025-03-04"]
    assert sorted(store.facts().trace_id) == ["early", "late"]


def test_parallel_load_gives_the_same_store_as_sequential(tmp_path, monkeypatch):
    paths = [write_spans(tmp_path / f"f{i}.parquet", agent_trace(f"t{i}")) for i in range(3)]
    sequential = aiscale.load(paths, store=tmp_path / "seq").facts()
    monkeypatch.setattr(loading, "PARALLEL_BYTES", 0)
    parallel_store = aiscale.load(paths, store=tmp_path / "par")
    assert [f.status for f in parallel_store.last_load.files] == ["loaded"] * 3
    pd.testing.assert_frame_equal(parallel_store.facts(), sequential)


def test_a_window_reads_only_its_days(tmp_path):
    store = aiscale.load([write_spans(tmp_path / "ten.parquet", daily_traces(10))], store=tmp_path / "s")
    parts = store.parts("spans", days=("2025-03-04", "2025-03-06"))
    assert [p.split("/")[-2] for p in parts] == ["day=2025-03-04", "day=2025-03-05", "day=2025-03-06"]
    week = store.facts(since="2025-03-05", until="2025-03-07")
    assert sorted(week.trace_id) == ["d4", "d5"]
    pd.testing.assert_frame_equal(week, store.facts().loc[lambda f: f.trace_id.isin(["d4", "d5"])]
                                  .reset_index(drop=True))


def test_spans_can_be_read_narrow_and_for_some_traces(tmp_path):
    frames = pd.concat([agent_trace("a"), agent_trace("b")])
    store = aiscale.load([write_spans(tmp_path / "ab.parquet", frames)], store=tmp_path / "s")
    narrow = store.spans(columns=["trace_id", "span_id", "kind"], trace_ids=["b"], priced=False)
    assert list(narrow.columns) == ["trace_id", "span_id", "kind"] and set(narrow.trace_id) == {"b"}
    assert len(narrow) == 9
    priced = store.spans(columns=["trace_id", "span_id", "kind"], trace_ids=["b"])
    assert list(priced.columns) == ["trace_id", "span_id", "kind", "cost_usd", "priced"]
    with pytest.raises(ValueError, match=r"canonical span columns .* but \['prompt'\] was passed"):
        store.spans(columns=["prompt"])


def test_progress_reports_rows_as_they_are_read(tmp_path, monkeypatch):
    paths = [write_spans(tmp_path / f"p{i}.parquet", agent_trace(f"t{i}")) for i in range(2)]
    seen: list[tuple[str, int]] = []
    store = aiscale.TraceStore(tmp_path / "s")
    store.load(paths, progress=lambda path, rows: seen.append((path, rows)))
    assert sum(rows for _, rows in seen) == store.last_load.rows_read == 18
    assert {p for p, _ in seen} == {str(p) for p in paths}
    monkeypatch.setattr(loading, "PARALLEL_BYTES", 0)  # two workers: one call per file
    seen.clear()
    more = [write_spans(tmp_path / f"q{i}.parquet", agent_trace(f"u{i}")) for i in range(2)]
    store.load(more, progress=lambda path, rows: seen.append((path, rows)))
    assert sorted(seen) == sorted((str(p), 9) for p in more)
