"""Compressed exports and inputs that are not regular files.

A gzip-compressed export (``.jsonl.gz``, ``.json.gz``) is detected and loaded as it is, giving
the same facts as the uncompressed file; a ``.zip`` no loader reads is refused with a message
that says it is compressed and what to do; a FIFO or a device is named as what it is.
"""

from __future__ import annotations

import gzip
import os
import re
import zipfile
import zlib
from pathlib import Path

import pandas as pd
import pytest

import aiscale
from aiscale.cli.main import main as cli_main
from aiscale.loaders import UnknownFormatError, detect

FIX = Path(__file__).resolve().parent / "fixtures" / "platforms"
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
GZIPPED = {  # file -> format
    FIX / "langsmith_sdk_runs.jsonl": "langsmith",
    FIX / "phoenix_spans.jsonl": "phoenix",
    FIX / "langfuse_traces.jsonl": "langfuse",
    FIX / "langfuse_observations_api.json": "langfuse",
    FIX / "langfuse_scores.csv": "langfuse",
    REAL / "tau2-bench-results" / "gpt-4.1_airline_default_gpt-4.1_1trials.json": "tau2-bench",
    REAL / "tau-bench-historical" / "gpt-4o-airline.json": "tau-bench",
}


def gzipped(path: Path, folder: Path) -> Path:
    out = folder / (path.name + ".gz")
    out.write_bytes(gzip.compress(path.read_bytes()))
    return out


@pytest.mark.parametrize("source", sorted(GZIPPED), ids=lambda p: p.name)
def test_gzip_exports_load_as_they_are(tmp_path, source):
    packed = gzipped(source, tmp_path)
    assert detect(packed).NAME == GZIPPED[source]
    plain = aiscale.load([source], store=tmp_path / "plain")
    zipped = aiscale.load([packed], store=tmp_path / "packed")
    assert zipped.last_load.rows_read == plain.last_load.rows_read > 0
    assert zipped.last_load.rows_loaded == plain.last_load.rows_loaded
    columns = [c for c in plain.spans().columns if c not in ("source_file", "attributes")]
    key = ["trace_id", "span_id"]
    pd.testing.assert_frame_equal(zipped.spans()[columns].sort_values(key, ignore_index=True),
                                  plain.spans()[columns].sort_values(key, ignore_index=True))


CLAUDE = REAL / "claude-code-sessions"
IN_PLACE = {  # a source copied with its layout, then gzipped in place: same ids, same facts
    "otlp": [Path(__file__).resolve().parent / "fixtures" / "otel_sdk_genai.jsonl"],
    "mini-swe-agent": sorted((REAL / "mini-swe-agent-gemini3-verified" / "trajs").glob("*/*.traj.json"))[:3],
    "swe-agent": sorted((REAL / "swe-agent-v0-traj").glob("*/*.traj"))[:2],
    "codex": sorted((REAL / "codex-sessions" / "codemie-code-2026-05").glob("rollout-*.jsonl"))[:2],
    "gemini-cli": sorted((REAL / "gemini-cli-sessions").glob("*/session-*.json"))[:2],
    "swebench-leaderboard": [REAL / "swebench-bash-only-leaderboard" / "leaderboards.json"],
}


@pytest.mark.parametrize("name", sorted(IN_PLACE))
def test_a_gzipped_export_gives_the_facts_of_the_plain_one(tmp_path, name):
    sources = IN_PLACE[name]
    assert sources, f"no {name} files found"
    root = Path(os.path.commonpath([s.parent for s in sources])).parent
    copies = []
    for source in sources:
        copy = tmp_path / "data" / source.relative_to(root)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(source.read_bytes())
        copies.append(copy)
    plain = aiscale.load(copies, store=tmp_path / "plain")
    packed = [gzipped(copy, copy.parent) for copy in copies]
    for copy in copies:
        copy.unlink()
    zipped = aiscale.load(packed, store=tmp_path / "packed")
    assert zipped.last_load.rows_read == plain.last_load.rows_read > 0
    assert zipped.last_load.rows_quarantined == plain.last_load.rows_quarantined
    facts = [f.drop(columns=[c for c in ("source_file",) if c in f]).sort_values("trace_id", ignore_index=True)
             for f in (plain.facts(), zipped.facts())]
    pd.testing.assert_frame_equal(facts[1], facts[0], check_exact=True)


def test_a_cut_gzip_otlp_export_loads_the_lines_before_the_cut_and_says_so(tmp_path):
    lines = (Path(__file__).resolve().parent / "fixtures" / "otel_sdk_genai.jsonl").read_bytes().splitlines(True)
    data = gzip.compress(b"".join(lines[:2]), compresslevel=0) + gzip.compress(b"".join(lines[2:]))
    path = tmp_path / "spans.jsonl.gz"
    path.write_bytes(data[: len(data) - 40])
    store = aiscale.load([path], store=tmp_path / "store")
    reasons = store.quarantine().reason.tolist()
    assert any(r.startswith("compressed stream is damaged") for r in reasons), reasons
    assert store.last_load.rows_loaded > 0
    summary = store.last_load
    assert summary.rows_read == summary.rows_loaded + summary.rows_quarantined


def test_a_gzip_file_for_a_loader_that_reads_only_plain_files_is_refused_clearly(tmp_path):
    session = next((CLAUDE).rglob("*.jsonl"))
    packed = gzipped(session, tmp_path)
    with pytest.raises(UnknownFormatError, match=r"gzip-compressed, and the claude-code loader reads only "
                                                 rf"uncompressed files.*gunzip -k {re.escape(packed.name)}"):
        aiscale.load([packed], store=tmp_path / "store")


def test_a_damaged_gzip_stream_keeps_the_lines_before_the_damage(tmp_path):
    lines = (FIX / "langsmith_sdk_runs.jsonl").read_bytes().splitlines(keepends=True)
    data = gzip.compress(b"".join(lines[:4]), compresslevel=0) + gzip.compress(b"".join(lines[4:]))
    path = tmp_path / "runs.jsonl.gz"
    path.write_bytes(data[: len(data) - 200])  # the second member cut short
    first = zlib.decompressobj(wbits=31)
    readable = first.decompress(data[: len(data) - 200])
    readable += zlib.decompressobj(wbits=31).decompress(first.unused_data)  # the cut member, up to the cut
    complete = readable.count(b"\n")
    assert 4 <= complete < len(lines)
    store = aiscale.load([path], store=tmp_path / "store")
    summary = store.last_load
    assert (summary.rows_read, summary.rows_loaded, summary.rows_quarantined) == (complete + 1, complete, 1)
    quarantined = store.quarantine().iloc[0]
    assert quarantined.reason.startswith("compressed stream is damaged")
    assert quarantined.source_row == complete + 1


def test_a_zip_no_loader_reads_is_refused_as_compressed(tmp_path, capsys):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.write(FIX / "langsmith_sdk_runs.jsonl", "runs.jsonl")
    with pytest.raises(UnknownFormatError, match=r"compressed \.zip archive.*unzip export\.zip"):
        aiscale.load([archive], store=tmp_path / "store")
    assert cli_main(["load", str(archive), "--store", str(tmp_path / "store")]) == 2
    assert "compressed" in capsys.readouterr().err


def test_a_fifo_or_a_device_is_named_as_what_it_is(tmp_path, capsys):
    fifo = tmp_path / "export.jsonl"
    os.mkfifo(fifo)
    for path, what in ((fifo, "a named pipe (FIFO)"), (Path("/dev/zero"), "a character device")):
        with pytest.raises(ValueError, match=re.escape(f"{path}: {what}, not a regular file")):
            aiscale.load([path], store=tmp_path / "store")
        assert cli_main(["load", str(path), "--store", str(tmp_path / "store")]) == 2
        err = capsys.readouterr().err
        assert what in err and "no such file" not in err
