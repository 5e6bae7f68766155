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


def test_a_gzip_file_for_a_loader_that_reads_only_plain_files_is_refused_clearly(tmp_path):
    packed = gzipped(Path(__file__).resolve().parent / "fixtures" / "otel_sdk_genai.jsonl", tmp_path)
    with pytest.raises(UnknownFormatError, match=r"gzip-compressed, and the otlp loader reads only "
                                                 r"uncompressed files.*gunzip -k otel_sdk_genai\.jsonl\.gz"):
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
