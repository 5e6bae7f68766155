"""CPU seconds per stage of the OTLP load of one file, in one thread (no prefetch), to see where
the load's time goes.

Usage (run it once per tree, interleaved, and compare)::

    PYTHONPATH=TREE .venv/bin/python benchmarks/otlp_stages.py FILE.jsonl

It stages the file as the store does (read, validate, Parquet parts by day, quarantine) into a
temporary folder and prints one line: the CPU seconds (``time.process_time``) of the unnest
(with the resource and scope columns), the span attribute look-ups, the fragments (or, where the
tree writes the attributes JSON in Arrow after the query, the ``intValue`` check and the
attributes JSON), the ids read in NumPy (where the tree has them), all of the block's work together (the parse and the mapping
query included), the chunk (repeats, quarantined spans, trace rows), validation and the
Parquet parts. It works on trees before and after the OTLP chunks became Arrow tables.
"""

from __future__ import annotations

import collections
import shutil
import sys
import tempfile
import time
from pathlib import Path

from aiscale.loaders import otlp
from aiscale.loaders._otlp_quarantine import bad_lines
from aiscale.store import ingest

SECONDS: collections.Counter = collections.Counter()


def _timed(name: str, owner: object, attribute: str) -> None:
    function = getattr(owner, attribute)

    def timed(*args, **kwargs):
        started = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            SECONDS[name] += time.process_time() - started

    setattr(owner, attribute, timed)


def _chunks(path: Path):
    arrow = hasattr(otlp, "arrow_chunk")
    seen, con = otlp._SeenSpans(), otlp._connect()
    for block in otlp._blocks(path):
        batches = otlp._query_block(con, *block)
        while True:
            started = time.process_time()
            batch = next(batches, None)
            SECONDS["block SQL + look-ups"] += time.process_time() - started
            if batch is None:
                break
            if "span_id" not in batch.schema.names:
                yield bad_lines(batch, path, *block)
            else:
                yield otlp.arrow_chunk(batch, str(path), seen) if arrow else otlp._chunk(batch, path, seen)


def main(path: Path) -> None:
    _timed("unnest", otlp, "flatten_requests")
    _timed("look-ups", otlp, "lookup_columns")
    if hasattr(otlp, "attributes_json"):  # trees that write the attributes JSON in Arrow
        _timed("int_bad", otlp, "int_bad")
        _timed("attributes", otlp, "attributes_json")
    else:
        _timed("fragments", otlp, "_fragments")
    if hasattr(otlp, "hex_ids"):  # trees where hex ids are read in NumPy
        _timed("ids", otlp, "hex_ids")
    _timed("chunk", otlp, "arrow_chunk" if hasattr(otlp, "arrow_chunk") else "_chunk")
    _timed("validate", ingest, "_validated")
    _timed("parquet", ingest, "_write")
    folder = Path(tempfile.mkdtemp())
    started = time.process_time()
    try:
        record = ingest.stage_chunks(path, "0" * 64, _chunks(path), folder / "staged")
    finally:
        shutil.rmtree(folder)
    SECONDS["total"] = time.process_time() - started
    print(f"{record['rows_read']:,} rows: " + " | ".join(f"{k} {v:.2f}" for k, v in SECONDS.items()))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
