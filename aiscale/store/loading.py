"""Loading files into a store: plan (skip known bytes), stage (in-process or two workers), commit.

A load writes into a temporary folder and moves parts into place before the manifest names
them, so an interrupted load leaves the store as it was.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import duckdb

from aiscale.facts.on_duckdb import bound_memory, quiet_progress
from aiscale.store.ingest import stage_file
from aiscale.store.load_summary import FileLoad, LoadSummary
from aiscale.store.manifest import TABLES, file_digest, list_parts, read_manifest, write_manifest

PARALLEL_BYTES = 64 * 1024 * 1024  # below this a load runs in-process (no worker start-up)
LOAD_WORKERS = 2


def plan(root: Path, files: list[Path], named: set[Path], summary: LoadSummary) -> list[tuple]:
    """Files to read: those whose bytes the store has not seen (in this call either)."""
    known = read_manifest(root)["files"]
    jobs, seen = [], set()
    for path in files:
        digest = file_digest(path)
        if digest in known or digest in seen:
            previous = known.get(digest, {})
            summary.files.append(FileLoad(str(path), previous.get("format"), "already loaded"))
            continue
        seen.add(digest)
        staging = root / f".load-{digest[:16]}-{uuid.uuid4().hex[:8]}"
        jobs.append((path, digest, path in named, staging))
    return jobs


def stage_all(jobs: list[tuple], *, format: str | None, progress=None):
    """Stage each file, in two worker processes when the load is large enough to gain."""
    large = sum(path.stat().st_size for path, *_ in jobs) > PARALLEL_BYTES and len(jobs) > 1
    if not large:
        for path, digest, named, staging in jobs:
            started = time.perf_counter()
            on_chunk = (lambda rows, p=str(path): progress(p, rows)) if progress else None
            record = stage_file(path, digest, format, named, staging, on_chunk)
            yield path, {**record, "digest": digest, "staging": staging}, time.perf_counter() - started
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=LOAD_WORKERS, mp_context=context) as pool:
        started = time.perf_counter()
        futures = [(path, digest, staging, pool.submit(stage_file, path, digest, format, named, staging))
                   for path, digest, named, staging in jobs]
        for path, digest, staging, future in futures:
            record = future.result()
            if progress:
                progress(str(path), record.get("rows_read", 0))
            yield path, {**record, "digest": digest, "staging": staging}, time.perf_counter() - started


def clean_interrupted(root: Path) -> None:
    """Remove staging folders left by interrupted loads."""
    for leftover in root.glob(".load-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def repeats_spans(root: Path, staging: Path, record: dict) -> bool:
    """Whether the staged spans share a (trace_id, span_id) with spans already stored."""
    new = [str(staging / "spans" / name) for name in record["parts"]["spans"]]
    old = list_parts(root, read_manifest(root), "spans")
    if not new or not old:
        return False
    with duckdb.connect() as con:
        return con.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM read_parquet({new!r}) n JOIN read_parquet({old!r}) o "
            "ON n.trace_id = o.trace_id AND n.span_id = o.span_id LIMIT 1)").fetchone()[0] > 0

def commit(root: Path, staging: Path, digest: str, record: dict) -> None:
    """Move a staged file's parts into the store, then name them in the manifest."""
    try:
        repeats = repeats_spans(root, staging, record)
        for table in TABLES:
            for name in record["parts"][table]:
                target = root / table / name
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / table / name, target)
        if (staging / "quarantine.jsonl").exists():
            (root / "quarantine").mkdir(exist_ok=True)
            os.replace(staging / "quarantine.jsonl", root / "quarantine" / f"{digest[:16]}.jsonl")
            record["quarantine"] = f"quarantine/{digest[:16]}.jsonl"
        manifest = read_manifest(root)
        manifest["files"][digest] = record
        manifest["spans_may_repeat"] = manifest.get("spans_may_repeat", False) or repeats
        write_manifest(root, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

def count_orphans(root: Path) -> int:
    """Spans whose parent span is in no loaded file (each span counted once)."""
    manifest = read_manifest(root)
    spans = list_parts(root, manifest, "spans")
    if not spans:
        return 0
    distinct = ("SELECT trace_id, span_id, parent_id FROM (SELECT trace_id, span_id, parent_id, "
                "row_number() OVER (PARTITION BY trace_id, span_id ORDER BY source_file, "
                "source_row, filename) AS rn FROM spans_all) WHERE rn = 1"
                if manifest.get("spans_may_repeat", False)
                else "SELECT trace_id, span_id, parent_id FROM spans_all")
    with duckdb.connect() as con:
        quiet_progress(con)
        bound_memory(con)
        con.execute(f"CREATE VIEW spans_all AS SELECT * FROM read_parquet({spans!r}, filename = true)")
        return int(con.execute(  # the `spans` view's rows, computed once, 3 columns
            f"WITH d AS MATERIALIZED ({distinct}) "
            "SELECT count(*) FROM d c WHERE parent_id IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM d p WHERE p.trace_id = c.trace_id AND p.span_id = c.parent_id)"
        ).fetchone()[0])
